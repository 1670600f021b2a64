"""clean()'s shortcuts for plain ASCII text (no escape stripping, secret patterns run only where
their keywords occur) give exactly what the full path gives, on hostile and ordinary texts."""
from __future__ import annotations

import itertools

import pytest

from grader import sanitize
from grader.sanitize import _MAX_INPUT, _SECRETS, clean, strip_escapes


def _full_path(value: str, limit: int = 160) -> str:
    """clean() as it was before the shortcuts: every step on every text."""
    text = " ".join(strip_escapes(value[:_MAX_INPUT]).split())
    for secret in sanitize._longest_first:
        text = text.replace(secret, sanitize.REDACTED)
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)  # type: ignore[arg-type]
    return text if len(text) <= limit else text[:max(limit - 3, 0)] + "..."


KEYWORDS = ["token", "TOKEN", "Password", "passwd", "client_secret", "api_key", "API-KEY", "apikey",
            "Authorization", "x-auth-token", "bearer", "Basic", "BEARER"]
SEPARATORS = [": ", "=", " = ", "\": \"", "':'", " "]
VALUES = ["s3cr3t-value", "\"quoted value\"", "'single'", "abc,def", ""]
SPECIAL = [
    "", " ", "plain words only", "[student-0042] route_exists: Route exists",
    "ex6@student-0042", "student-0042", "Route “hello” does not exist in namespace “student-0042”",
    "名前空間 student-0042 に Route hello がありません",
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdHVkZW50In0.c2ln", "xeyJhbGciOi.eyJzdWIi.x",
    "sha256~abcdefghijklmnopqrstu", "see sha256~short", "SHA256~abcdefghijklmnopqrstu",
    "to\u212aen: kelvin-sign-value", "pa\u017fsword=long-s-value", "\u212aey: x",     # re's (?i) reaches these
    "\x1b[31mtoken: red\x1b[0m", "\x1b]0;title\x07bearer abc", "tab\tseparated\ttoken=x",
    "line\nbreak password: y", "bidi \u202eevil\u202c token=z", "nul\x00byte secret=q",
    "\x9b31m c1 csi", "a" * 9000 + " token: past-the-input-cap", "apiVersion: v1 kind: Pod",
    "keyboard: qwerty", "monkey=banana", "the key is: open", "Authorization: Bearer abc.def",
]


def _corpus() -> list[str]:
    made = [f"{k}{s}{v}" for k, s, v in itertools.product(KEYWORDS, SEPARATORS, VALUES)]
    made += [f"msg ({k}{s}{v}) end" for k, s, v in itertools.product(KEYWORDS[:4], SEPARATORS[:2], VALUES[:2])]
    return SPECIAL + made


@pytest.mark.parametrize("limit", [160, 20, 400])
def test_the_shortcuts_change_nothing(limit):
    different = [(text, clean(text, limit), _full_path(text, limit)) for text in _corpus()
                 if clean(text, limit) != _full_path(text, limit)]
    assert different == []


def test_ascii_text_with_secrets_is_still_redacted():
    assert "abc.def" not in clean("Authorization: Bearer abc.def")
    assert clean("API-KEY=s3cr3t") == "API-KEY=[redacted]"
    assert clean("got sha256~abcdefghijklmnopqrstu back") == "got [redacted] back"
    assert "c2ln" not in clean("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdHVkZW50In0.c2ln")


def test_a_remembered_secret_is_redacted_on_the_short_path(monkeypatch):
    monkeypatch.setattr(sanitize, "_known", set())
    monkeypatch.setattr(sanitize, "_longest_first", ())
    sanitize.remember("student-0042-kubeconfig-token")
    assert clean("[student-0042-kubeconfig-token] ok") == "[[redacted]] ok"
