"""Text that an API server chose, made safe to print, store and hand to an LMS.

Why one place: an error body (a Status ``message`` or ``reason``, or a raw body) is written by
whoever answers the request -- a proxy, a webhook, an aggregated API, a misconfigured or hostile
server. It reaches the student's terminal, stderr, ``results.json`` and JUnit files, so before
it does it is

* stripped of terminal escape sequences (CSI colours and cursor moves, OSC window titles and
  hyperlinks, DCS/APC strings), C0/C1 control characters and bidirectional overrides, which could
  rewrite or disguise what the console shows;
* cut to one line (newlines could forge extra report lines) of bounded length;
* redacted of credentials: ``Bearer <token>``, ``token: <value>``, ``"token": "<value>"``,
  JWT-shaped and OpenShift ``sha256~`` tokens, and every secret ``remember``-ed (the
  kubeconfig's own token), wherever it appears.

Redaction runs after the escapes are gone (an escape cannot split a token to hide it) and before
the cut (a cut cannot leave half a token that no pattern recognises).
"""
from __future__ import annotations

import re
import threading
from typing import Any

REDACTED = "[redacted]"
_MAX_INPUT = 8192   # characters looked at: a message longer than this is cut anyway

# String-type sequences (OSC, DCS, SOS, PM, APC) run to BEL or ST; unterminated ones to the end.
_STRING_SEQ = re.compile(r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?")
_CSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?")
_ESC = re.compile(r"\x1b[ -/]*[0-~]?")
# Bidirectional embeddings/overrides/isolates and invisible joiners: they reorder or hide text.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_TOKEN = r"[^\s\"',;)}\]]+"
_SECRETS = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+)" + _TOKEN), r"\1\2" + REDACTED),
    (re.compile(r"(?i)([\"']?\b[\w-]*(?:token|password|passwd|secret|api[_-]?key|authorization)[\"']?"
                r"\s*[:=]\s*)(\"[^\"]*\"?|'[^']*'?|" + _TOKEN + ")"),
     lambda m: m.group(1) + (m.group(2)[0] + REDACTED + m.group(2)[0] if m.group(2)[:1] in "\"'" else REDACTED)),
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), REDACTED),       # a JWT (service account tokens)
    (re.compile(r"\bsha256~[\w-]{16,}"), REDACTED),                     # an OpenShift OAuth token
)
# What any of them needs, under the same matching rules (the keywords in any case, as re's
# IGNORECASE reads case, K and ſ included; the last two as written): a class's report texts
# (thousands of ids, names and titles) mostly have none, and are spared the four searches. In
# ASCII text, where case is only A-Z, the keywords are looked for in the lower-cased text: a
# case-insensitive search costs several times more.
_MAYBE_SECRET = re.compile(r"(?i:bearer|basic|token|passw|secret|key|authorization)|eyJ|sha256~")
_MAYBE_SECRET_LOWER = re.compile(r"bearer|basic|token|passw|secret|key|authorization")


def _maybe_secret(text: str) -> bool:
    if not text.isascii():
        return _MAYBE_SECRET.search(text) is not None
    return "eyJ" in text or "sha256~" in text or _MAYBE_SECRET_LOWER.search(text.lower()) is not None


_known: set[str] = set()
_longest_first: tuple[str, ...] = ()   # _known, longest first (a secret inside another is replaced after it)
_lock = threading.Lock()


def remember(secret: str | None) -> None:
    """Redact this exact string from every cleaned text from now on (too short to be a
    credential, under 8 characters, it would only garble messages)."""
    if secret and len(secret) >= 8:
        global _longest_first
        with _lock:
            _known.add(secret)
            _longest_first = tuple(sorted(_known, key=len, reverse=True))


def remember_client(configuration: Any) -> None:
    """Remember the bearer token a ``kubernetes`` client ``Configuration`` sends."""
    for value in (getattr(configuration, "api_key", None) or {}).values():
        if isinstance(value, str):
            remember(value.split(None, 1)[1] if value.lower().startswith("bearer ") and " " in value else value)


def strip_escapes(text: str) -> str:
    """The text without escape sequences, controls or bidi overrides (newlines and tabs become
    spaces; nothing else is added)."""
    text = _STRING_SEQ.sub("", text)
    text = _CSI.sub("", text)
    text = _ESC.sub("", text)
    text = _INVISIBLE.sub("", text)
    return _CONTROL.sub(" ", text)


def redact(text: str) -> str:
    for secret in _longest_first:     # one tuple, replaced whole: read without the lock
        text = text.replace(secret, REDACTED)
    if _maybe_secret(text):
        for pattern, repl in _SECRETS:
            text = pattern.sub(repl, text)  # type: ignore[arg-type]
    return text


def clean(value: Any, limit: int = 160) -> str:
    """One line of at most ``limit`` characters, safe to show: see the module docstring."""
    text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
    text = text[:_MAX_INPUT]
    if not (text.isascii() and text.isprintable()):   # else there is no escape or control to strip
        text = strip_escapes(text)
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[:max(limit - 3, 0)] + "..."


_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def valid_namespace(name: Any) -> bool:
    """A name Kubernetes accepts for a namespace (a DNS-1123 label): safe in a URL path and as
    one part of a file path. ``fullmatch``: ``$`` would also accept a trailing newline."""
    return isinstance(name, str) and _NAMESPACE_NAME.fullmatch(name) is not None
