"""API-server answers are not trusted blindly: paging that never ends is an error, and error messages are cleaned and redacted before any report shows them.

All through the independent API double (``tests/apidouble.py``) over real HTTP with the real client.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from grader.cli import main
from grader.grading import grade_on
from grader.errors import ApiError, CannotSee
from grader.junit import render_junit
from grader.kube import Api, RetryPolicy
from grader.reports import gradescope_json, render_console, to_json
from grader.results import Outcome
from grader.sanitize import clean
from grader.settings import Settings
from tests.apidouble import ApiDouble, status

SETTINGS = Settings(lang="en", wait=0.0, quiet=True)
TOKEN = "kubeconfig-own-secret-7f3a9c"      # the token the grader's kubeconfig sends
PODS = "/api/v1/namespaces/student/pods"


def _pod_list(cont: str | None, n: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": "1"}
    if cont is not None:
        meta["continue"] = cont
    return {"kind": "PodList", "apiVersion": "v1", "metadata": meta,
            "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{n}", "namespace": "student"}}]}


def _paging(next_token: Callable[[int], str]) -> tuple[Callable[[Any], None], list[int]]:
    """A list handler whose every page names a next one: ``next_token(page number)``."""
    served: list[int] = []

    def handler(h: Any) -> None:
        served.append(len(served))
        h.send_json(200, _pod_list(next_token(served[-1]), served[-1]))
    return handler, served


def _api(double: ApiDouble, tmp_path: Path, deadline: float = 3.0) -> Api:
    kc = double.write_kubeconfig(tmp_path / "kubeconfig", namespace="student")
    return Api(kubeconfig=str(kc), retry=RetryPolicy(deadline=deadline))


# --- paging --------------------------------------------------------------------------------------
def test_a_repeated_continue_token_is_an_error(tmp_path):
    handler, served = _paging(lambda n: "same-token")
    with ApiDouble(token=TOKEN) as double:
        double.route(PODS, handler)
        api = _api(double, tmp_path)
        with pytest.raises(ApiError) as e:
            api.list("Pod", "student")
        api.close()
    assert not isinstance(e.value, CannotSee)
    assert len(served) == 2                       # the first page, and the page that repeated its token
    assert "repeated a continue token" in e.value.message.en and "pods" in e.value.message.en
    assert "continue トークン" in e.value.message.ja


def test_paging_that_never_ends_stops_at_the_page_limit(tmp_path):
    assert inspect.signature(Api._pages).parameters["max_pages"].default == 10_000
    handler, served = _paging(lambda n: f"token-{n}")
    with ApiDouble(token=TOKEN) as double:
        double.route(PODS, handler)
        api = _api(double, tmp_path)
        with pytest.raises(ApiError) as e:
            list(api._pages("Pod", "student", None, 500, max_pages=25))
        api.close()
    assert len(served) == 25
    assert "passed 25 pages" in e.value.message.en and "25 ページ" in e.value.message.ja


def test_paging_that_ends_reads_every_page(tmp_path):
    handler, served = _paging(lambda n: f"token-{n}" if n < 4 else "")
    with ApiDouble(token=TOKEN) as double:
        double.route(PODS, handler)
        api = _api(double, tmp_path)
        names = [p["metadata"]["name"] for p in api.list("Pod", "student")]
        api.close()
    assert names == ["p0", "p1", "p2", "p3", "p4"]


def test_endless_paging_grades_as_an_error_not_a_failure(tmp_path):
    handler, _ = _paging(lambda n: "same-token")
    with ApiDouble(token=TOKEN) as double:
        double.route(PODS, handler)
        api = _api(double, tmp_path)
        run = grade_on(api, SETTINGS, [SETTINGS.exercise("ex1")], ["student"], student=True, wait=0)
        api.close()
    checks = run.results[0].checks
    assert checks and {c.outcome for c in checks} == {Outcome.ERROR}
    assert all("continue token" in c.message.en for c in checks)
    assert run.exit_code == 3


# --- hostile error messages ----------------------------------------------------------------------
HOSTILE = ("\x1b]0;evil\x07\x1b[31mpods is forbidden\x1b[0m: the webhook said\nFAKE: 10/10 points\r\n"
           "\u202e" + TOKEN + " Bearer abc.def.ghi token: s3cr3t-value {\"token\":\"json-secret\"} \x9b2J\x00end")
LEAKS = ("\x1b", "\x07", "\x9b", "\x00", "\u202e", "abc.def.ghi", "s3cr3t-value", "json-secret", TOKEN)


def _hostile(code: int) -> Callable[[Any], None]:
    reason = {401: "Unauthorized", 403: "Forbidden"}.get(code, "InternalError")
    return lambda h: h.send_json(code, status(code, reason, HOSTILE))


def _no_leak(text: str, where: str) -> None:
    found = [leak for leak in LEAKS if leak in text]
    assert not found, f"{where} shows {found!r}"


def test_clean_cuts_strips_and_redacts():
    out = clean(HOSTILE.replace(TOKEN, "ey" + "J0eXAiOiJKV1QifQ.eyJzdWIiOiJzdHVkZW50In0.c2lnbmF0dXJl"), 400)
    _no_leak(out, "clean()")
    assert "\n" not in out and "\r" not in out
    assert "pods is forbidden: the webhook said FAKE: 10/10 points" in out
    assert "Bearer [redacted]" in out and "token: [redacted]" in out and '"token":"[redacted]"' in out
    assert "J0eXAiOiJKV1QifQ" not in out                       # a JWT anywhere
    assert len(clean("x" * 5000)) == 160


@pytest.mark.parametrize("code", [403, 500])
def test_api_error_messages_reach_no_report_raw(tmp_path, code):
    with ApiDouble(token=TOKEN) as double:
        double.route(PODS, _hostile(code))
        double.route("/api/v1/namespaces/student/services", _hostile(code))
        api = _api(double, tmp_path, deadline=1.5)
        run = grade_on(api, SETTINGS, [SETTINGS.exercise("ex1"), SETTINGS.exercise("ex2")], ["student"],
                       student=True, wait=0)
        api.close()
    results = run.results
    errors = [c for r in results for c in r.checks if c.outcome is Outcome.ERROR]
    assert errors and all(c.message is not None for c in errors)
    assert any("pods is forbidden" in c.message.en for c in errors)      # cleaned, not dropped
    for lang in ("en", "ja"):
        console = render_console(results, lang, color=False)
        _no_leak(console, f"console ({lang})")
        assert any("pods is forbidden: the webhook said FAKE: 10/10 points" in line for line in console.splitlines())
        assert not any(line.startswith("FAKE") for line in console.splitlines())
        _no_leak(json.dumps(to_json(results, lang), ensure_ascii=False), f"--json ({lang})")
        _no_leak(json.dumps(gradescope_json(results, lang), ensure_ascii=False), f"results.json ({lang})")
        _no_leak(render_junit(results, lang).decode("utf-8"), f"JUnit ({lang})")


def test_a_401_message_reaches_stderr_clean(tmp_path, capsys):
    with ApiDouble([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "student"}}], token=TOKEN) as double:
        double.route(PODS, _hostile(401))
        kc = double.write_kubeconfig(tmp_path / "kubeconfig", namespace="student")
        code = main(["ex1", "--kubeconfig", str(kc), "-n", "student", "--wait", "0", "--lang", "en",
                     "--junit", str(tmp_path / "junit.xml")])
    out, err = capsys.readouterr()
    assert code == 3, err
    assert "refused the credentials" in err and "pods is forbidden" in err
    _no_leak(out, "stdout")
    _no_leak(err, "stderr")
    assert len([line for line in err.splitlines() if "FAKE" in line]) <= 1
    assert not any(line.startswith("FAKE") for line in err.splitlines())


def test_the_kubeconfig_token_is_redacted_from_the_first_request_on(tmp_path):
    """The -n existence check answers before any snapshot exists: its error is cleaned all the same."""
    with ApiDouble(token=TOKEN) as double:
        double.route("/api/v1/namespaces/student", lambda h: h.send_json(500, status(500, "InternalError",
                                                                                     f"etcd said {TOKEN}")))
        api = _api(double, tmp_path, deadline=0.5)
        with pytest.raises(ApiError) as e:
            api.get("Namespace", "student")
    assert TOKEN not in e.value.message.en and "[redacted]" in e.value.message.en
