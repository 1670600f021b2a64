"""render_junit writes, byte for byte, what ElementTree's indent and tostring write for its tree."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from grader.i18n import Text
from grader.junit import render_junit
from grader.results import CheckResult, ExerciseResult, Outcome, Visibility

HOSTILE = ["plain", "a & b < c > d \" ' quotes", "\x1b[31mred\x1b[0m \x00\x07 controls", "line\r\nbreaks\rand\ttabs\n",
           "\ufffe\ud800 lone surrogate \U0001f600", "]]> <![CDATA[ x ]]>", "名前空間 日本語", "x" * 400,
           "  many   spaces \u2028 ", "", "&amp; &lt;escaped&gt;", "é" * 70000]


def _result(i: int, h: str) -> ExerciseResult:
    outcomes = [Outcome.PASSED, Outcome.FAILED, Outcome.ERROR]
    checks = [CheckResult(f"c{j}{h[:5] if j == 2 else ''}", Text(f"題 {h[:9]}", f"Title {h[:30]}"), [1, 2.5, 0.1 + 0.2][j % 3],
                          outcomes[(i + j) % 3], None if j == 1 else Text(f"日 {h}", f"msg {h}"),
                          Text("ヒ", h) if j % 2 else None, f"oc get pod {h[:40]}" if j else None,
                          list(Visibility)[j % 3], [0.0, 1.23456, float("nan"), -2.0][j % 4]) for j in range(4)]
    return ExerciseResult(f"ex{i}{h[:4]}", Text("演習", "Exercise"), f"student-{i}{h[:12]}",
                          [] if i % 5 == 4 else checks, Text("見えない", f"cannot see {h}") if i % 3 == 2 else None,
                          [0.0, 3.5][i % 2])


def _elementtree_bytes(doc: bytes) -> bytes:
    root = ET.fromstring(doc)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_hostile_field_serializes_as_elementtree_would(lang: str) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5)
    results = [_result(i, h) for i, h in enumerate(HOSTILE * 2)]
    documents = [render_junit([r], lang, timestamp=when, hostname="h\x1b]0;x\x07 <&>") for r in results]
    documents += [render_junit(results, lang, timestamp=when, hostname="host"), render_junit([], lang, timestamp=when)]
    for doc in documents:
        assert doc == _elementtree_bytes(doc)
    assert documents[-1].endswith(b"<testsuites name=\"grader\" tests=\"0\" failures=\"0\" errors=\"0\" time=\"0.000\" />")
    whole = ET.fromstring(documents[-2])
    assert len(whole) == len(results) and whole.get("tests") == str(sum(len(s.findall("testcase")) for s in whole))
    assert any(c.find("failure") is not None for c in whole.iter("testcase"))
    assert any(c.find("error") is not None for c in whole.iter("testcase"))
