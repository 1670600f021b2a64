"""Checks on HTTP answers a probe got through the service proxy or the router: a 200 with the
expected text, or any answer from the application at all."""
from __future__ import annotations

from .base import fail
from ..errors import InfraError
from ..i18n import Text, t
from ..wire import HttpAnswer


# --- HTTP answers ----------------------------------------------------------------------------
def expect_http_ok(answer: HttpAnswer, what: Text, command: str, contains: str | None = None) -> None:
    if answer.error is not None or answer.status != 200:
        fail(t("{what} が HTTP 200 で応答しません (状態 {status}: {err})。",
               "{what} does not answer HTTP 200 (status {status}: {err}).",
               what=what, status=answer.status, err=answer.error or answer.text[:120]), command)
    if contains and contains not in answer.text:
        if answer.clipped:
            raise InfraError(t("{what} の応答が大きすぎ、採点側で全体を保持できませんでした ({want} を確認できません)。",
                               "the answer of {what} was too large for the grader to keep whole ({want} could not be checked).",
                               what=what, want=contains))
        message = t("{what} の応答に {want} が含まれていません (先頭: {got})。",
                    "the answer of {what} does not contain {want} (it begins {got}).",
                    what=what, want=contains, got=answer.text[:80])
        if answer.cut:      # the student's page is over the probe's cap: say so, it explains the miss
            message += t(" 応答が 1 MiB を超えたため、採点では先頭の 1 MiB だけを読みました。",
                         " The answer is over 1 MiB; the grader reads only its first MiB.")
        fail(message, command)


def expect_http_answer(answer: HttpAnswer, what: Text, command: str) -> None:
    """Something behind the service answered HTTP (any status the application chose, e.g. the
    httpd test page's 403), as opposed to the proxy failing to reach it (502/503/404 Status)."""
    if answer.error is not None or not 0 < answer.status < 500:
        fail(t("{what} に到達できません (状態 {status}: {err})。",
               "{what} cannot be reached (status {status}: {err}).",
               what=what, status=answer.status, err=answer.error or answer.text[:120]), command)
