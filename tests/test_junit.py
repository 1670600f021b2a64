"""JUnit output: schema-valid for any student text, counts and properties agree with the model."""
from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from grader.i18n import Text
from grader.junit import BODY_LIMIT, render_junit, write_junit
from grader.results import CheckResult, ExerciseResult, Outcome, Visibility

XSD = Path(__file__).resolve().parents[1].parent / "shared/junit/junit-10.xsd"
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?")
STAMP = datetime(2025, 4, 1, 9, 30, 15, 123456)

HOSTILE = (
    "\x1b[31mred\x1b[0m \x00\x01\x08\x0b\x0c\x1f \ufffe\uffff \ud800 ]]> &amp; <script>alert(1)</script>"
    " \u202eevil\u202c \"q\" 'a' 日本語"
)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    if not XSD.is_file():
        pytest.skip(f"JUnit schema not found at {XSD} (../shared/junit is outside the repo)")
    return etree.XMLSchema(etree.parse(str(XSD)))


def check(cid: str, outcome: Outcome, points: float = 1, **kw) -> CheckResult:
    return CheckResult(cid, Text(f"{cid} ja", f"{cid} en"), points, outcome, **kw)


def sample() -> list[ExerciseResult]:
    ok = ExerciseResult("ex1", Text("演習1", "Exercise 1"), "alice", [
        check("deploy", Outcome.PASSED, 2, duration=0.1),
        check("svc", Outcome.FAILED, 3, duration=0.2,
              message=Text("期待: 3 実際: 1", "expected 3 replicas, saw 1"),
              hint=Text("レプリカ数を確認", "check spec.replicas"), command="oc get deploy -n alice"),
        check("route", Outcome.ERROR, 1, message=Text("403 禁止", "403 forbidden")),
        check("secret", Outcome.PASSED, 2.5, visibility=Visibility.HIDDEN),
    ])
    broken = ExerciseResult("ex1", Text("演習1", "Exercise 1"), "bob", [
        check("deploy", Outcome.FAILED, 2),
        check("svc", Outcome.ERROR, 3),
    ], error=Text("名前空間を読めません", "cannot list pods in bob"))
    empty = ExerciseResult("ex2", Text("演習2", "Exercise 2"), "carol", [],
                           error=Text("接続できません", "cluster unreachable"))
    return [ok, broken, empty]


def parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def props(suite: etree._Element) -> dict[str, str]:
    """A suite's properties by their short names (a file of several suites prefixes them)."""
    prefix = suite.get("name") + "."
    names = [p.get("name") for p in suite.find("properties")]
    assert all(n.startswith(prefix) for n in names) or not any(n.startswith(prefix) for n in names)
    return {p.get("name").removeprefix(prefix): p.get("value") for p in suite.find("properties")}


def test_sample_validates_and_counts_agree_with_model(schema: etree.XMLSchema) -> None:
    results = sample()
    root = parse(render_junit(results, "en", timestamp=STAMP, hostname="grader-host"))
    assert schema.validate(root), schema.error_log
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["ex1@alice", "ex1@bob", "ex2@carol"]
    alice, bob, carol = suites
    assert (alice.get("tests"), alice.get("failures"), alice.get("errors")) == ("4", "1", "1")
    # bob: namespace error -> the failed check is reported as an error, not a failure
    assert (bob.get("tests"), bob.get("failures"), bob.get("errors")) == ("2", "0", "2")
    # carol: no checks -> one synthetic error testcase
    assert (carol.get("tests"), carol.get("failures"), carol.get("errors")) == ("1", "0", "1")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("7", "1", "4")
    assert alice.get("timestamp") == "2025-04-01T09:30:15"
    assert alice.get("hostname") == "grader-host"
    assert alice.get("skipped") == "0"
    assert alice.get("package") == "ex1"
    # properties come first in each suite
    assert all(s[0].tag == "properties" for s in suites)

    p = props(alice)
    assert p["exercise"] == "ex1" and p["namespace"] == "alice"
    assert p["score"] == "4.5" == str(results[0].score)
    assert p["max_score"] == "8.5"
    assert p["check.deploy.earned"] == "2" and p["check.deploy.max"] == "2"
    assert p["check.svc.earned"] == "0" and p["check.svc.max"] == "3"
    assert p["check.svc.outcome"] == "failed"
    assert p["check.route.outcome"] == "error"
    assert p["check.secret.visibility"] == "hidden" and p["check.secret.earned"] == "2.5"
    pb = props(bob)
    assert pb["score"] == "0" and pb["check.deploy.outcome"] == "error"
    assert props(carol)["score"] == "0" and props(carol)["max_score"] == "0"


def test_testcases_failure_and_error_elements(schema: etree.XMLSchema) -> None:
    root = parse(render_junit(sample(), "en", timestamp=STAMP, hostname="h"))
    cases = root.find("testsuite").findall("testcase")
    assert [c.get("name") for c in cases] == [
        "[alice] deploy: deploy en", "[alice] svc: svc en", "[alice] route: route en", "[alice] secret: secret en"]
    assert {c.get("classname") for c in cases} == {"ex1"}     # no namespace: annotators read it as a path
    assert len(cases[0]) == 0
    failure = cases[1].find("failure")
    assert failure is not None and cases[1].find("error") is None
    assert failure.get("type") == "CheckFailed"
    assert failure.get("message") == "expected 3 replicas, saw 1"
    assert "Hint: check spec.replicas" in failure.text
    assert "Try: oc get deploy -n alice" in failure.text
    error = cases[2].find("error")
    assert error is not None and cases[2].find("failure") is None
    assert error.get("type") == "InfraError" and error.get("message") == "403 forbidden"
    bob_err = root.findall("testsuite")[1].find("testcase/error")
    assert bob_err.get("message") == "cannot list pods in bob"
    assert root.findall("testsuite")[2].find("testcase/error").get("message") == "cluster unreachable"


def test_japanese_titles_and_labels(schema: etree.XMLSchema) -> None:
    root = parse(render_junit(sample(), "ja", timestamp=STAMP, hostname="h"))
    assert schema.validate(root), schema.error_log
    case = root.find("testsuite").findall("testcase")[1]
    assert case.get("name") == "[alice] svc: svc ja"
    assert "ヒント: レプリカ数を確認" in case.find("failure").text
    assert "確認コマンド: oc get deploy -n alice" in case.find("failure").text


def test_float_times_render_surefire_valid(schema: etree.XMLSchema) -> None:
    r = ExerciseResult("ex", Text("a", "a"), "ns", [
        check("a", Outcome.PASSED, duration=0.1),
        check("b", Outcome.PASSED, duration=0.2),
        check("c", Outcome.PASSED, duration=1e-9),
        check("d", Outcome.PASSED, duration=-1.0),
        check("e", Outcome.PASSED, duration=float("nan")),
        check("f", Outcome.PASSED, duration=12345.6789),
    ])
    xml = render_junit([r], timestamp=STAMP, hostname="h")
    root = parse(xml)
    assert schema.validate(root), schema.error_log
    times = [root.get("time"), root.find("testsuite").get("time")]
    times += [c.get("time") for c in root.iter("testcase")]
    for t in times:
        assert SUREFIRE_TIME.fullmatch(t), t
        assert "e" not in t.lower() and not t.startswith("-")
    assert root.find("testsuite").findall("testcase")[0].get("time") == "0.100"
    assert b"0.30000000000000004" not in xml


def test_no_disabled_attribute_anywhere() -> None:
    root = parse(render_junit(sample(), timestamp=STAMP, hostname="h"))
    assert all("disabled" not in el.attrib for el in root.iter())
    assert b"disabled" not in render_junit(sample(), timestamp=STAMP, hostname="h")


def hostile_results(big: str) -> list[ExerciseResult]:
    msg = Text(HOSTILE + "\n" + big, HOSTILE + "\n" + big)
    return [ExerciseResult(
        "ex" + HOSTILE, Text(HOSTILE, HOSTILE), "ns-" + HOSTILE + big,
        [
            CheckResult("c" + HOSTILE, Text(HOSTILE + big, HOSTILE + big), 1, Outcome.FAILED,
                        message=msg, hint=msg, command="oc get " + HOSTILE),
            CheckResult("d", Text("d", "d"), 1, Outcome.ERROR, message=msg),
            CheckResult("e", Text("e", "e"), 1, Outcome.PASSED),
        ],
    ), ExerciseResult("ex2", Text("x", "x"), HOSTILE, [], error=msg)]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_hostile_text_parses_validates_and_is_bounded(schema: etree.XMLSchema, lang: str) -> None:
    big = "A" * (1 << 20)  # 1 MB
    xml = render_junit(hostile_results(big), lang, timestamp=STAMP, hostname=HOSTILE)
    root = parse(xml)  # strict parser: would raise on any forbidden character
    assert schema.validate(root), schema.error_log
    # 3 bodies (2 failures/errors + 1 namespace error) of at most 64 KiB, plus small attributes
    assert len(xml) < 4 * BODY_LIMIT + 50_000, len(xml)
    for el in root.iter():
        for value in el.attrib.values():
            assert "\n" not in value and len(value) <= 300
            assert "\x1b" not in value and "\u202e" not in value and "\ufffe" not in value
    failure = root.find(".//failure")
    assert failure is not None
    # escaped markup round-trips as text, not as elements
    assert "]]>" in failure.text and "&amp;" in failure.text and "<script>" in failure.text
    assert root.find(".//script") is None
    assert '"q"' in failure.get("message") and "'a'" in failure.get("message")
    assert "\x1b" not in failure.text and "\x00" not in failure.text
    assert len(failure.text.encode()) <= BODY_LIMIT
    assert "…(truncated)" in failure.text
    assert root.find("testsuite").find("testcase/error") is not None
    assert root.findall("testsuite")[1].find("testcase/error") is not None


def test_write_junit_is_atomic_and_readable(tmp_path: Path, schema: etree.XMLSchema) -> None:
    target = tmp_path / "report.xml"
    target.write_text("old")
    write_junit(target, sample(), "en")
    assert schema.validate(etree.parse(str(target)))
    assert os.listdir(tmp_path) == ["report.xml"]  # no temp file left behind


def test_ids_and_property_names_are_unique_within_a_file(schema: etree.XMLSchema) -> None:
    results = sample() + [ExerciseResult("ex2", Text("演習2", "Exercise 2"), "alice", [check("deploy", Outcome.PASSED)])]
    root = parse(render_junit(results, "en", timestamp=STAMP, hostname="h"))
    assert schema.validate(root), schema.error_log
    ids = [s.get("id") for s in root.findall("testsuite")]
    assert len(set(ids)) == len(ids) == 4
    names = [p.get("name") for p in root.iter("property")]
    assert len(set(names)) == len(names)                       # xunitparser merges the suites
    assert "ex1@alice.score" in names and "ex2@alice.check.deploy.outcome" in names
    one = parse(render_junit(results[:1], "en", timestamp=STAMP, hostname="h"))
    assert props(one.find("testsuite"))["score"] == "4.5" and one.find("testsuite/properties/property").get("name") == "exercise"


def test_suite_time_is_its_own_checks_and_root_is_their_sum(schema: etree.XMLSchema) -> None:
    a = ExerciseResult("ex1", Text("a", "a"), "alice", [check("x", Outcome.PASSED, duration=0.25),
                                                        check("y", Outcome.FAILED, duration=0.5)], duration=9.0)
    b = ExerciseResult("ex1", Text("a", "a"), "bob", [check("x", Outcome.PASSED, duration=0.125)], duration=9.0)
    root = parse(render_junit([a, b], "en", timestamp=STAMP, hostname="h"))
    assert schema.validate(root), schema.error_log
    assert [s.get("time") for s in root.findall("testsuite")] == ["0.750", "0.125"]   # not the shared 9 s
    assert root.get("time") == "0.875"
