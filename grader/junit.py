"""JUnit XML for CI (Jenkins xUnit, GitLab, GitHub test reporters), valid against junit-10.xsd.

Layout: one ``<testsuites>`` root (``name="grader"``, ``tests``, ``failures``, ``errors``, ``time``)
with one ``<testsuite>`` per graded (exercise, namespace):

* testsuite ``name`` = ``<exercise>@<namespace>``, ``package`` = ``<exercise>``, ``id`` = index
  in the report (unique within the file), plus ``tests``, ``failures``, ``errors``,
  ``skipped="0"``, ``time``, ``timestamp`` (ISO 8601, no timezone) and ``hostname``;
* testcase ``classname`` = ``<exercise>`` and ``name`` = ``[<namespace>] <check_id>: <title in
  lang>``: GitHub's and GitLab's annotators read a classname as a file path, so the namespace
  (student-chosen) stays out of it; ``time`` in seconds with at most 3 decimals;
* a suite's ``time`` is the sum of its own checks' times and the root's the sum of its suites'
  (the shared observation time is not counted again per suite);
* a failed check has ``<failure type="CheckFailed" message="...">`` whose text holds the full
  message, hint and command; a check that could not be evaluated has
  ``<error type="InfraError" message="...">``. Hidden checks are included (JUnit is for
  instructors and CI, not students).

Suite ``<properties>`` (numbers print as 7, not 7.0; 2.5 stays 2.5):
``exercise``, ``namespace``, ``score``, ``max_score``, and per check
``check.<check_id>.earned``, ``check.<check_id>.max``, ``check.<check_id>.outcome``
(passed/failed/error) and ``check.<check_id>.visibility`` (visible/hidden/after_due_date). In a
file with several suites each name starts with the suite's name and a dot (``ex1@alice.score``)
so names are unique within the file: xunitparser merges a file's suites into one. A file with
one suite (``--out``'s layout) keeps the short names.

When ``ExerciseResult.error`` is set (the namespace could not be graded), every check that did
not pass is reported as an ``<error>`` carrying that message, and ``check.*.outcome`` says
``error``: earned points are 0 either way, so the score is unchanged, and keeping one testcase
per check keeps each check's history in Jenkins instead of replacing it with a different test.
If no check carries the error (e.g. the exercise has no checks), one extra testcase named
``[<namespace>] (namespace): The namespace could not be graded`` (literal ``(namespace)``, so it
never collides with a check id) holds it.

Why not junit-xml 1.9: it writes a ``disabled`` attribute that this xsd rejects on both
``testsuites`` and ``testsuite``, prints suite times as raw float sums
(``time="0.30000000000000004"`` fails the SUREFIRE_TIME pattern), and its XML-character
cleanup runs after minidom parsing, so U+FFFE in a message raises instead of being dropped. A
wrapper would have to post-process its output. The document is written as text here, byte for
byte what ``xml.etree.ElementTree`` with ``indent`` would write (its escaping of ``&``, ``<``,
``>`` and quotes included; ``tests/test_junit_bytes.py`` round-trips it through ElementTree),
because building and serialising the tree cost more than grading in a class's batch; every
string is cleaned with ``i18n.clean`` first.
"""
from __future__ import annotations

import math
import os
import re
import socket
from datetime import datetime

from .i18n import Text, clean
from .reports import effective_outcome, format_number, memo, write_atomic
from .results import CheckResult, ExerciseResult, Outcome

__all__ = ["render_junit", "write_junit"]

ATTR_LIMIT = 300          # characters in any attribute (messages, names)
BODY_LIMIT = 64 * 1024    # UTF-8 bytes in a failure/error body

_LABELS = {
    "hint": Text("ヒント:", "Hint:"),
    "try": Text("確認コマンド:", "Try:"),
    "infra": Text(
        "採点できませんでした (学生のミスではありません)",
        "Could not be checked (not the student's fault)",
    ),
    "ns": Text("このネームスペースは採点できませんでした", "The namespace could not be graded"),
}


def _attr(s: str, limit: int = ATTR_LIMIT) -> str:
    """One line, no XML-forbidden characters, bounded: safe for any attribute value. Most
    values (ids, numbers, namespaces) are printable ASCII in single spaces, which cleaning
    would leave as they are: they skip its two regular expressions."""
    if not (s.isascii() and s.isprintable()) or "  " in s or s[:1] == " " or s[-1:] == " ":
        s = " ".join(clean(s).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# Short strings of these characters need neither cleaning nor escaping in an attribute.
_plain = re.compile(r"[A-Za-z0-9._@:-]{0,200}").fullmatch


def _body(s: str) -> str:
    """Multi-line text, cleaned and bounded in bytes (cut on a character boundary)."""
    s = clean(s).replace("\r\n", "\n").replace("\r", "\n")
    raw = s.encode("utf-8")
    if len(raw) <= BODY_LIMIT:
        return s
    return raw[: BODY_LIMIT - 16].decode("utf-8", "ignore") + "\n…(truncated)"


def _time(seconds: float) -> str:
    """SUREFIRE_TIME: digits, optional '.', at most 3 decimals; never negative or exponent."""
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    return f"{seconds:.3f}"


def _suite_time(r: ExerciseResult) -> float:
    """The suite's own checks' time, rounded as printed, so the root (their sum) adds up."""
    return round(sum(c.duration for c in r.checks if math.isfinite(c.duration) and c.duration > 0), 3)


def _failure_body(c: CheckResult, lang: str) -> str:
    parts: list[str] = []
    if c.message is not None:
        parts.append(c.message.get(lang))
    if c.hint is not None:
        parts.append(f"{_LABELS['hint'].get(lang)} {c.hint.get(lang)}")
    if c.command:
        parts.append(f"{_LABELS['try'].get(lang)} {c.command}")
    return "\n".join(parts)


def _error_body(r: ExerciseResult, c: CheckResult | None, lang: str) -> str:
    parts = [_LABELS["infra"].get(lang)]
    if r.error is not None:
        parts.append(r.error.get(lang))
    if c is not None and c.message is not None:
        parts.append(c.message.get(lang))
    if c is not None and c.command:
        parts.append(f"{_LABELS['try'].get(lang)} {c.command}")
    return "\n".join(parts)


def _error_message(r: ExerciseResult, c: CheckResult | None, lang: str) -> str:
    if r.error is not None:
        return r.error.get(lang)
    if c is not None and c.message is not None:
        return c.message.get(lang)
    return _LABELS["infra"].get(lang)


def _esc_text(s: str) -> str:
    """Element text escaped exactly as ElementTree escapes it (``_escape_cdata``)."""
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    return s


def _esc_attr(s: str) -> str:
    """An attribute value escaped exactly as ElementTree escapes it (``_escape_attrib``): as text,
    then quotes and the whitespace an attribute would lose."""
    s = _esc_text(s)
    if '"' in s:
        s = s.replace('"', "&quot;")
    if "\r" in s:
        s = s.replace("\r", "&#13;")
    if "\n" in s:
        s = s.replace("\n", "&#10;")
    if "\t" in s:
        s = s.replace("\t", "&#09;")
    return s


def _leaf(out: list[str], indent: str, tag: str, attrs: str, text: str) -> None:
    """``<tag attrs>text</tag>``, or ``<tag attrs />`` without text, as ElementTree writes it."""
    out.append(f"{indent}<{tag}{attrs}>{_esc_text(text)}</{tag}>" if text else f"{indent}<{tag}{attrs} />")


# A class's checks end in a few ways, each told the same way to every student who ends there:
# the properties and the failure or error block of one check are rendered once per distinct
# ending, not once per student (they were half of a batch's report writing). Only the testcase's
# name (it holds the namespace) and its time are rendered each time.
_PARTS: dict[tuple[object, ...], tuple[str, str]] = {}


def _check_parts(r: ExerciseResult, c: CheckResult, outcome: Outcome, lang: str, prefix: str) -> tuple[str, str]:
    """(the check's four properties, what follows the testcase's attributes), memoised."""
    key = (lang, prefix, r.error, c.check_id, c.title, c.points, c.outcome, outcome, c.visibility,
           c.message, c.hint, c.command)
    return memo(_PARTS, key, lambda: _render_check_parts(r, c, outcome, lang, prefix))


def _render_check_parts(r: ExerciseResult, c: CheckResult, outcome: Outcome, lang: str, prefix: str) -> tuple[str, str]:
    A = _esc_attr
    props: list[str] = []
    key = f"{prefix}check.{c.check_id}"
    for name, value in ((f"{key}.earned", format_number(c.earned)), (f"{key}.max", format_number(c.points)),
                        (f"{key}.outcome", outcome.value), (f"{key}.visibility", c.visibility.value)):
        name = name if _plain(name) else A(_attr(name))
        value = value if _plain(value) else A(_attr(value))
        props.append(f'\n      <property name="{name}" value="{value}" />')
    tail: list[str] = []
    if outcome is Outcome.FAILED:
        message = c.message.get(lang) if c.message is not None else c.title.get(lang)
        tail.append(">")
        _leaf(tail, "\n      ", "failure", f' message="{A(_attr(message))}" type="CheckFailed"', _body(_failure_body(c, lang)))
        tail.append("\n    </testcase>")
    elif outcome is Outcome.ERROR:
        tail.append(">")
        _leaf(tail, "\n      ", "error", f' message="{A(_attr(_error_message(r, c, lang)))}" type="InfraError"',
              _body(_error_body(r, c, lang)))
        tail.append("\n    </testcase>")
    else:
        tail.append(" />")
    return "".join(props), "".join(tail)


def _suite(out: list[str], r: ExerciseResult, index: int, lang: str, timestamp: str, hostname: str,
           prefix: str = "") -> tuple[int, int, int]:
    """Append one ``<testsuite>``, indented as at depth 1; its (tests, failures, errors)."""
    outcomes = [(c, effective_outcome(r, c)) for c in r.checks]
    failures = sum(1 for _, o in outcomes if o is Outcome.FAILED)
    errors = sum(1 for _, o in outcomes if o is Outcome.ERROR)
    orphan_error = r.error is not None and errors == 0
    tests = len(outcomes) + (1 if orphan_error else 0)
    errors += 1 if orphan_error else 0

    A = _esc_attr
    out.append(
        f'\n  <testsuite name="{A(_attr(f"{r.exercise_id}@{r.namespace}"))}" tests="{tests}" failures="{failures}"'
        f' errors="{errors}" skipped="0" time="{_time(_suite_time(r))}" timestamp="{A(timestamp)}"'
        f' hostname="{A(hostname)}" id="{index}" package="{A(_attr(r.exercise_id))}">\n    <properties>')

    def prop(name: str, value: str) -> None:
        # most names and values are ids and numbers that cleaning and escaping would leave as they are
        name = prefix + name
        name = name if _plain(name) else A(_attr(name))
        value = value if _plain(value) else A(_attr(value))
        out.append(f'\n      <property name="{name}" value="{value}" />')

    prop("exercise", r.exercise_id)
    prop("namespace", r.namespace)
    prop("score", format_number(r.score))
    prop("max_score", format_number(r.max_score))
    parts = [_check_parts(r, c, outcome, lang, prefix) for c, outcome in outcomes]
    out.extend(props for props, _ in parts)
    out.append("\n    </properties>")

    classname = A(_attr(r.exercise_id))
    who = f"[{r.namespace}] "
    for (c, _), (_, tail) in zip(outcomes, parts):
        out.append(f'\n    <testcase name="{A(_attr(f"{who}{c.check_id}: {c.title.get(lang)}"))}" classname="{classname}" time="{_time(c.duration)}"{tail}')
    if orphan_error:
        label = _LABELS["ns"].get(lang)
        out.append(f'\n    <testcase name="{A(_attr(f"{who}(namespace): {label}"))}" classname="{classname}"'
                   f' time="{_time(0.0)}">')
        _leaf(out, "\n      ", "error", f' message="{A(_attr(_error_message(r, None, lang)))}" type="InfraError"',
              _body(_error_body(r, None, lang)))
        out.append("\n    </testcase>")
    out.append("\n  </testsuite>")
    return tests, failures, errors


def render_junit(
    results: list[ExerciseResult],
    lang: str = "en",
    *,
    timestamp: datetime | None = None,
    hostname: str | None = None,
) -> bytes:
    """UTF-8 JUnit XML with declaration; ``timestamp``/``hostname`` are injectable for tests.

    Written as text, byte for byte what ``ET.indent(root, space="  ")`` and ``ET.tostring(root,
    encoding="utf-8", xml_declaration=True)`` write for the same tree: building and serializing
    that tree cost ~0.5 ms per file, the largest item of a batch (tests/test_junit.py parses and
    re-serializes the output with ElementTree to prove the bytes are the same)."""
    stamp = (timestamp or datetime.now()).replace(tzinfo=None, microsecond=0).isoformat()
    host = _attr(hostname if hostname is not None else socket.gethostname(), 255)
    body: list[str] = []
    tests = failures = errors = 0
    for i, r in enumerate(results):
        t, f, e = _suite(body, r, i, lang, stamp, host, f"{r.exercise_id}@{r.namespace}." if len(results) > 1 else "")
        tests, failures, errors = tests + t, failures + f, errors + e
    head = (f'<?xml version=\'1.0\' encoding=\'utf-8\'?>\n<testsuites name="grader" tests="{tests}"'
            f' failures="{failures}" errors="{errors}" time="{_time(sum(_suite_time(r) for r in results))}"')
    doc = f"{head}>{''.join(body)}\n</testsuites>" if body else f"{head} />"
    return doc.encode("utf-8", "xmlcharrefreplace")


def write_junit(
    path: str | os.PathLike[str], results: list[ExerciseResult], lang: str = "en"
) -> None:
    """Write the report atomically, so CI never parses a half-written file."""
    write_atomic(path, render_junit(results, lang))
