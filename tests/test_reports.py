"""Console, --json, gradebook CSV and Gradescope renderers read the model's scores faithfully."""
from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest

from grader.i18n import Text
from grader.reports import (
    format_number,
    gradebook_csv,
    gradescope_json,
    render_console,
    to_json,
    write_atomic,
)
from grader.results import CheckResult, ExerciseResult, Outcome, Visibility


def check(cid: str, outcome: Outcome, points: float = 1, **kw) -> CheckResult:
    return CheckResult(cid, Text(f"{cid}の題", f"{cid} title"), points, outcome, **kw)


def alice() -> ExerciseResult:
    return ExerciseResult("ex3", Text("ハロー演習", "Hello exercise"), "alice", [
        check("deploy", Outcome.PASSED, 2),
        check("svc", Outcome.FAILED, 3,
              message=Text("セレクタが一致しません", "selector does not match"),
              hint=Text("ラベルを確認", "check the labels"), command="oc get svc hello -n alice"),
        check("route", Outcome.ERROR, 1, message=Text("403 禁止", "403 forbidden")),
        check("secret", Outcome.PASSED, 2.5, visibility=Visibility.HIDDEN),
        check("later", Outcome.PASSED, 1.5, visibility=Visibility.AFTER_DUE_DATE),
    ], duration=1.25)


def bob_ok() -> ExerciseResult:
    return ExerciseResult("ex3", Text("ハロー演習", "Hello exercise"), "bob", [
        check("deploy", Outcome.PASSED, 2), check("svc", Outcome.PASSED, 3)])


def carol_error() -> ExerciseResult:
    return ExerciseResult("ex3", Text("ハロー演習", "Hello exercise"), "carol", [
        check("deploy", Outcome.FAILED, 2)], error=Text("読めません", "cannot read namespace"))


def test_format_number() -> None:
    assert format_number(7.0) == "7"
    assert format_number(2.5) == "2.5"
    assert format_number(0.1 + 0.2) == "0.3"
    assert format_number(0) == "0"
    assert format_number(float("nan")) == "0"


# --- console ---------------------------------------------------------------------------------
def test_console_english_plain() -> None:
    out = render_console([alice()], "en", color=False)
    lines = out.splitlines()
    assert lines[0] == "== ex3: Hello exercise (namespace: alice) =="
    assert "  PASS  [2/2] deploy title" in lines
    assert "  FAIL  [0/3] svc title" in lines
    assert "  ERROR [0/1] route title" in lines
    assert any("selector does not match" in l for l in lines)
    assert any(l.strip() == "Hint: check the labels" for l in lines)
    assert any(l.strip() == "Try: oc get svc hello -n alice" for l in lines)
    assert any("could not be checked" in l and "not your fault" in l for l in lines)
    assert "Score: 6/10" in out  # model: 2 + 2.5 + 1.5 of 2+3+1+2.5+1.5
    assert alice().score == 6 and alice().max_score == 10
    assert "1 check(s) could not be checked" in out
    assert "secret" not in out  # hidden check not rendered
    assert "[0/1.5]" not in out and "later title" in out  # after_due_date is shown
    assert "\x1b" not in out


def test_console_japanese() -> None:
    out = render_console([alice()], "ja", color=False)
    assert "== ex3: ハロー演習 (ネームスペース: alice) ==" in out
    assert "  FAIL  [0/3] svcの題" in out
    assert "ヒント: ラベルを確認" in out
    assert "確認コマンド: oc get svc hello -n alice" in out
    assert "採点できませんでした (学生のミスではありません)" in out
    assert "得点: 6/10" in out
    assert "採点できなかったチェック: 1 件" in out
    assert "PASS" in out and "ERROR" in out
    assert "secretの題" not in out


def test_console_color_and_hidden_and_hints() -> None:
    colored = render_console([alice()], "en", color=True)
    assert "\x1b[32mPASS" in colored and "\x1b[31mFAIL" in colored and "\x1b[33mERROR" in colored
    batch = render_console([alice()], "en", color=False, include_hidden=True)
    assert "  PASS  [2.5/2.5] secret title" in batch
    no_hints = render_console([alice()], "en", color=False, show_hints=False)
    assert "Hint:" not in no_hints and "Try: oc get svc" in no_hints


def test_console_namespace_error_prominent_and_total() -> None:
    out = render_console([bob_ok(), carol_error()], "en", color=False)
    assert "!! This namespace could not be graded (not your fault):" in out
    assert "cannot read namespace" in out
    # under a namespace error the failed check is shown as an error, not a failure
    assert "  ERROR [0/2] deploy title" in out and "FAIL" not in out
    assert "Score: 5/5" in out and "Score: 0/2" in out
    assert out.rstrip().splitlines()[-1] == "Total: 5/7"


def test_console_strips_terminal_escapes() -> None:
    r = ExerciseResult("ex", Text("t", "t"), "ns\x1b]0;pwned\x07\x1b[2J", [
        check("c", Outcome.FAILED, message=Text("a\x1b[31mb\rc", "a\x1b[31mb\rc"))])
    out = render_console([r], "en", color=False)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "namespace: ns)" in out


# --- --json ----------------------------------------------------------------------------------
def test_to_json_shape_and_scores() -> None:
    doc = to_json([alice(), carol_error()], "en")
    json.dumps(doc, ensure_ascii=False).encode("utf-8")  # serialisable
    assert doc["score"] == 6 and doc["max_score"] == 12
    first = doc["results"][0]
    assert first["exercise"] == "ex3" and first["namespace"] == "alice"
    assert first["title"] == {"ja": "ハロー演習", "en": "Hello exercise"}
    assert first["score"] == 6 and first["max_score"] == 10 and first["error"] is None
    assert [c["id"] for c in first["checks"]] == ["deploy", "svc", "route", "secret", "later"]
    svc = first["checks"][1]
    assert svc == {
        "id": "svc", "title": {"ja": "svcの題", "en": "svc title"}, "points": 3, "earned": 0,
        "outcome": "failed", "message": {"ja": "セレクタが一致しません", "en": "selector does not match"},
        "hint": {"ja": "ラベルを確認", "en": "check the labels"},
        "command": "oc get svc hello -n alice", "visibility": "visible", "attempts": 1,
        "duration": 0.0,
    }
    assert isinstance(first["checks"][0]["points"], int)
    assert first["checks"][3]["visibility"] == "hidden"
    assert doc["results"][1]["error"] == {"ja": "読めません", "en": "cannot read namespace"}
    assert doc["results"][1]["score"] == 0


# --- gradebook CSV ---------------------------------------------------------------------------
def test_gradebook_csv_round_trip() -> None:
    other = ExerciseResult("ex4", Text("x", "x"), "bob", [check("a", Outcome.PASSED, 1.5)])
    text = gradebook_csv([bob_ok(), other, carol_error(), alice()])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["namespace", "ex3", "ex4", "total", "errors"]
    by_ns = {r[0]: r for r in rows[1:]}
    assert by_ns["bob"] == ["bob", "5", "1.5", "6.5", ""]
    assert float(by_ns["bob"][1]) == bob_ok().score
    # namespace error: empty cell (not 0), listed in errors, no total
    assert by_ns["carol"] == ["carol", "", "", "", "ex3"]
    # a check error also leaves the cell empty: the score would understate the work
    assert by_ns["alice"] == ["alice", "", "", "", "ex3"]
    assert len(rows) == 4


def test_gradebook_csv_neutralises_formulas() -> None:
    evil = [ExerciseResult("ex1", Text("x", "x"), ns, [check("a", Outcome.PASSED, 2)])
            for ns in ("=cmd()", "+1", "-2", "@SUM(A1)", "\tx", "ok", "\x1b[31m=HYPERLINK(x)")]
    rows = list(csv.reader(io.StringIO(gradebook_csv(evil))))
    assert [r[0] for r in rows[1:]] == [
        "'=cmd()", "'+1", "'-2", "'@SUM(A1)", "'\tx", "ok", "'=HYPERLINK(x)"]
    assert all(r[1] == "2" for r in rows[1:])


# --- Gradescope ------------------------------------------------------------------------------
def test_gradescope_json() -> None:
    """Checked against the specification, https://gradescope-autograders.readthedocs.io/en/latest/specs/
    ("Output format": top-level score, execution_time in seconds as an integer, output,
    output_format, extra_data; per test name, score, max_score, status passed/failed, output,
    visibility, tags, extra_data)."""
    doc = gradescope_json(alice(), "en")
    assert doc["score"] == alice().score == 6
    tests = {t["extra_data"]["check_id"]: t for t in doc["tests"]}
    assert set(tests) == {"deploy", "svc", "secret", "later"}      # "route" could not be observed
    for t in doc["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)
        assert t["status"] in ("passed", "failed") and t["extra_data"]["outcome"] != "error"
    assert tests["deploy"]["status"] == "passed" and tests["deploy"]["score"] == 2
    assert tests["svc"]["status"] == "failed" and tests["svc"]["score"] == 0
    assert tests["svc"]["max_score"] == 3
    assert "Hint: check the labels" in tests["svc"]["output"]
    assert tests["svc"]["extra_data"]["outcome"] == "failed"
    assert tests["secret"]["visibility"] == "hidden"
    assert tests["later"]["visibility"] == "after_due_date"
    assert tests["deploy"]["visibility"] == "visible"
    assert sum(t["score"] for t in doc["tests"]) == doc["score"]
    assert doc["execution_time"] == 1 and isinstance(doc["execution_time"], int)
    # The left-out check is said at the top, visibly, with what to do.
    assert doc["output_format"] == "text"
    assert "could not observe 1 check(s)" in doc["output"] and "re-run" in doc["output"]
    assert "ex3 route" in doc["output"] and "403 forbidden" in doc["output"]
    [left_out] = doc["extra_data"]["unobserved"]
    assert (left_out["check_id"], left_out["max_score"], left_out["namespace"]) == ("route", 1, "alice")
    json.dumps(doc)


def test_gradescope_all_observed_has_no_top_level_output() -> None:
    doc = gradescope_json(bob_ok(), "en")
    assert "output" not in doc and "extra_data" not in doc and doc["score"] == 5


def test_gradescope_namespace_error_and_list() -> None:
    empty = ExerciseResult("ex9", Text("x", "x"), "dave", [], error=Text("不可", "unreachable"))
    doc = gradescope_json([bob_ok(), carol_error(), empty], "ja")
    assert doc["score"] == 5
    assert "もう一度実行してください" in doc["output"] and "読めません" in doc["output"] and "不可" in doc["output"]
    assert {t["extra_data"]["namespace"] for t in doc["tests"]} == {"bob"}   # carol's and dave's left out
    assert [(e["namespace"], e["message"]) for e in doc["extra_data"]["errors"]] == [("carol", "読めません"),
                                                                                 ("dave", "不可")]
    assert [u["check_id"] for u in doc["extra_data"]["unobserved"]] == ["deploy"]


def test_gradescope_left_out_checks_come_back_for_the_gradebook() -> None:
    """--out rebuilds earlier namespaces from results.json: an unobserved check must come back as
    an error (an empty gradebook cell), never as a missing check that raises the score's share."""
    from grader.batch import results_from_gradescope
    doc = json.loads(json.dumps(gradescope_json([alice()], "en")))
    [back] = results_from_gradescope(doc, "alice")
    outcomes = {c.check_id: c.outcome for c in back.checks}
    assert outcomes["route"] is Outcome.ERROR and back.score == 6 and back.max_score == alice().max_score
    assert gradebook_csv([back]).splitlines()[1] == "alice,,,ex3"
    [carol] = results_from_gradescope(json.loads(json.dumps(gradescope_json([carol_error()], "en"))), "carol")
    assert carol.error is not None and carol.checks[0].outcome is Outcome.ERROR


# --- write_atomic ----------------------------------------------------------------------------
def test_write_atomic(tmp_path: Path) -> None:
    target = tmp_path / "grades.csv"
    write_atomic(target, "a,b\n")
    assert target.read_text() == "a,b\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    os.chmod(target, 0o600)
    write_atomic(target, b"\xe6\x97\xa5")
    assert target.read_text("utf-8") == "日"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["grades.csv"]


def test_write_atomic_failure_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.json"]


# A class's report files share what students who end a check the same way are told (rendered
# once per ending): two students who differ in any one field must each get their own.
_SAME_CHECK_DIFFERENT_ENDINGS = {
    "message": dict(message=Text("日 B", "msg-B")),
    "hint": dict(hint=Text("ヒ B", "hint-B")),
    "command": dict(command="cmd-B"),
    "points": dict(points=3),
    "outcome": dict(outcome=Outcome.PASSED),
    "visibility": dict(visibility=Visibility.HIDDEN),
    "title": dict(title=Text("題 B", "Title-B")),
}


def _ending(namespace: str, error: Text | None = None, **change) -> ExerciseResult:
    fields = dict(check_id="svc", title=Text("題 A", "Title-A"), points=2, outcome=Outcome.FAILED,
                  message=Text("日 A", "msg-A"), hint=Text("ヒ A", "hint-A"), command="cmd-A")
    return ExerciseResult("ex3", Text("演習", "Exercise"), namespace, [CheckResult(**{**fields, **change})], error)


@pytest.mark.parametrize("field", [*_SAME_CHECK_DIFFERENT_ENDINGS, "error"])
def test_students_ending_a_check_differently_each_get_their_own_report(field: str) -> None:
    import xml.etree.ElementTree as ET

    from grader.junit import render_junit

    change = _SAME_CHECK_DIFFERENT_ENDINGS.get(field, {})
    first = _ending("alice")
    second = _ending("bob", Text("見えない", "cannot-see-B"), **change) if field == "error" else _ending("bob", **change)
    for r in (first, second, first):     # the first student's ending is told again after the other's
        case = ET.fromstring(render_junit([r], "en")).find("testsuite/testcase")
        test = gradescope_json([r], "en")["tests"]
        props = {p.get("name"): p.get("value") for p in ET.fromstring(render_junit([r], "en")).iter("property")}
        assert r.namespace in case.get("name") and props["namespace"] == r.namespace
        if r is first:
            assert case.find("failure").get("message") == "msg-A"
            assert case.find("failure").text == "msg-A\nHint: hint-A\nTry: cmd-A"
            assert "Title-A" in case.get("name") and props["check.svc.max"] == "2"
            assert props["check.svc.visibility"] == "visible" and props["check.svc.outcome"] == "failed"
            assert test[0]["output"] == "msg-A\nHint: hint-A\nTry: cmd-A" and test[0]["max_score"] == 2
            assert test[0]["extra_data"]["namespace"] == "alice"
            continue
        seen = case.find("failure") if case.find("failure") is not None else case.find("error")
        body = "" if seen is None else seen.text
        expected = {
            "message": lambda: seen.get("message") == "msg-B" and body.startswith("msg-B\n")
            and test[0]["output"].startswith("msg-B\n"),
            "hint": lambda: "Hint: hint-B" in body and "Hint: hint-B" in test[0]["output"],
            "command": lambda: body.endswith("Try: cmd-B") and test[0]["output"].endswith("Try: cmd-B"),
            "points": lambda: props["check.svc.max"] == "3" and test[0]["max_score"] == 3,
            "outcome": lambda: seen is None and props["check.svc.earned"] == "2" and test[0]["status"] == "passed",
            "visibility": lambda: props["check.svc.visibility"] == "hidden" and test[0]["visibility"] == "hidden",
            "title": lambda: "Title-B" in case.get("name") and "Title-B" in test[0]["name"],
            "error": lambda: case.find("error") is not None and "cannot-see-B" in body and test == [],
        }[field]
        assert expected(), (field, ET.tostring(case), test)
