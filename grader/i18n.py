"""Bilingual text: every student-facing string exists in Japanese and English.

Student data (names, labels, page bodies) is untrusted: it enters a message only through
``quote``, which strips control characters and ANSI escapes and truncates.
"""
from __future__ import annotations

import locale
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

LANGS = ("ja", "en")

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
# Characters XML 1.0 forbids, C1 controls, bidi controls, and non-characters.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)


@dataclass(frozen=True)
class Text:
    """A message in both languages."""

    ja: str
    en: str

    def get(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en

    def __add__(self, other: "Text") -> "Text":
        return Text(self.ja + other.ja, self.en + other.en)

    def format(self, **values: Any) -> "Text":
        return Text(self.ja.format(**values), self.en.format(**values))

    @classmethod
    def same(cls, s: str) -> "Text":
        return cls(s, s)


def clean(s: str) -> str:
    """Remove ANSI escapes and characters that break terminals or XML 1.0. Printable ASCII (most
    names, ids and messages) has neither: an escape starts with ESC, which is not printable."""
    if s.isascii() and s.isprintable():
        return s
    return _UNSAFE.sub("", _ANSI.sub("", s))


def quote(value: Any, limit: int = 80) -> str:
    """Render an untrusted value for a message: cleaned, truncated, in quotes."""
    s = value if isinstance(value, str) else repr(value)
    s = clean(s).replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if len(s) > limit:
        s = s[:limit] + f"…(+{len(s) - limit})"
    return f"\u201c{s}\u201d" if isinstance(value, str) else s


def t(ja: str, en: str, **values: Any) -> Text:
    """Build a Text from two templates; values are quoted unless already ``Text``/int/float."""
    ja_vals: dict[str, Any] = {}
    en_vals: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, Text):
            ja_vals[k], en_vals[k] = v.ja, v.en
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            ja_vals[k] = en_vals[k] = v
        elif isinstance(v, Raw):
            ja_vals[k] = en_vals[k] = v.s
        else:
            ja_vals[k] = en_vals[k] = quote(v)
    return Text(ja.format(**ja_vals), en.format(**en_vals))


@dataclass(frozen=True)
class Raw:
    """A trusted string (from a spec or the grader itself) inserted into ``t`` without quotes."""

    s: str


def detect_lang(environ: Mapping[str, str] | None = None) -> str:
    """Japanese under a ``ja_*`` locale, English otherwise (LC_ALL > LC_MESSAGES > LANG)."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(var)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    if environ is None:
        try:
            loc = locale.getlocale()[0] or ""
        except ValueError:
            loc = ""
        if loc.lower().startswith("ja"):
            return "ja"
    return "en"
