"""Renderers of the results model: console, ``--json``, gradebook CSV and Gradescope JSON.

None of them computes a score: each reads ``ExerciseResult.score``/``max_score`` and
``CheckResult.earned``/``points`` so every report agrees. The only arithmetic here is adding up
model scores across exercises for a grand total. Student-controlled text (namespace names, labels,
page bodies inside messages) goes through ``i18n.clean`` before it reaches a terminal or a file.

``to_json`` (``grade --json``) returns::

    {"results": [{"exercise": str, "title": {"ja", "en"}, "namespace": str,
                  "score": num, "max_score": num, "error": {"ja", "en"} | null,
                  "checks": [{"id": str, "title": {"ja", "en"}, "points": num, "earned": num,
                              "outcome": "passed" | "failed" | "error",
                              "message": {"ja", "en"} | null, "hint": {"ja", "en"} | null,
                              "command": str | null,
                              "visibility": "visible" | "hidden" | "after_due_date",
                              "attempts": int, "duration": seconds}]}],
     "score": num, "max_score": num, "lang": "ja" | "en"}

Numbers are ints when whole (7, not 7.0). ``outcome`` there is the model's own outcome; the
other renderers show a non-passed check of an exercise whose ``error`` is set as an error (see
``effective_outcome``), because a namespace the grader could not read says nothing about the
student's work.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Callable, TypeVar

from .atomic import sweep_stale, write_atomic, write_atomic_dirs, write_atomic_many
from .i18n import Text, clean
from .results import CheckResult, ExerciseResult, Outcome, Visibility

__all__ = [
    "effective_outcome",
    "format_number",
    "gradebook_csv",
    "memo",
    "gradescope_json",
    "render_console",
    "to_json",
    "sweep_stale",
    "write_atomic",
    "write_atomic_dirs",
    "write_atomic_many",
]

_GREEN, _RED, _YELLOW, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[0m"
_TAGS = {Outcome.PASSED: ("PASS", _GREEN), Outcome.FAILED: ("FAIL", _RED), Outcome.ERROR: ("ERROR", _YELLOW)}

_L = {
    "namespace": Text("ネームスペース", "namespace"),
    "hint": Text("ヒント:", "Hint:"),
    "try": Text("確認コマンド:", "Try:"),
    "could_not": Text(
        "採点できませんでした (学生のミスではありません)",
        "could not be checked (not your fault; not counted as a mistake)",
    ),
    "ns_error": Text(
        "このネームスペースは採点できませんでした (学生のミスではありません):",
        "This namespace could not be graded (not your fault):",
    ),
    "score": Text("得点", "Score"),
    "total": Text("合計", "Total"),
    "errors": Text("採点できなかったチェック: {n} 件", "{n} check(s) could not be checked"),
    "hidden": Text("非表示のチェック {n} 件は表示していません", "{n} hidden check(s) not shown"),
}

# Leading characters that make Excel/LibreOffice/Sheets treat a CSV cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- shared helpers --------------------------------------------------------------------------
def format_number(x: float) -> str:
    """Points as people write them: 7 not 7.0, 2.5 stays 2.5, 0.1+0.2 prints 0.3."""
    if not math.isfinite(x):
        return "0"
    if x == int(x):
        return str(int(x)) if x != 0 else "0"
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _json_number(x: float) -> int | float:
    """A JSON number without float noise; ints stay ints so consumers see 7, not 7.0."""
    if not math.isfinite(x):
        return 0
    return int(x) if x == int(x) else round(x, 6)


def effective_outcome(result: ExerciseResult, check: CheckResult) -> Outcome:
    """The outcome a report shows: under a namespace error, anything not passed is an error.

    Earned points are the same either way (0), so this never changes a score; it only keeps a
    permission or connectivity problem from reading as the student's failure.
    """
    if result.error is not None and check.outcome is not Outcome.PASSED:
        return Outcome.ERROR
    return check.outcome


def _text(value: Text | None, lang: str) -> str | None:
    return None if value is None else clean(value.get(lang))


def _one_line(s: str) -> str:
    return " ".join(clean(s).split())


# --- console ---------------------------------------------------------------------------------
def _indent(s: str, prefix: str) -> list[str]:
    return [prefix + line for line in clean(s).replace("\r", "").split("\n") if line.strip()]


def _check_lines(
    r: ExerciseResult, c: CheckResult, lang: str, color: bool, show_hints: bool
) -> list[str]:
    outcome = effective_outcome(r, c)
    tag, col = _TAGS[outcome]
    shown = f"{tag:<5}"
    if color:
        shown = f"{col}{shown}{_RESET}"
    points = f"[{format_number(c.earned)}/{format_number(c.points)}]"
    lines = [f"  {shown} {points} {_one_line(c.title.get(lang))}"]
    pad = " " * 8
    if outcome is Outcome.ERROR:
        lines.append(pad + _L["could_not"].get(lang))
        if c.message is not None:
            lines += _indent(c.message.get(lang), pad)
    elif outcome is Outcome.FAILED:
        if c.message is not None:
            lines += _indent(c.message.get(lang), pad)
        if show_hints and c.hint is not None:
            lines.append(f"{pad}{_L['hint'].get(lang)} {_one_line(c.hint.get(lang))}")
        if c.command:
            lines.append(f"{pad}{_L['try'].get(lang)} {_one_line(c.command)}")
    return lines


def render_console(
    results: list[ExerciseResult],
    lang: str,
    color: bool,
    show_hints: bool = True,
    include_hidden: bool = False,
) -> str:
    """Human report; hidden checks are left out unless ``include_hidden`` (batch runs).

    PASS/FAIL/ERROR tags stay English in both languages so they are greppable; everything else
    is in ``lang``. The score line is the model's score, hidden checks included.
    """
    out: list[str] = []
    for r in results:
        header = (
            f"== {_one_line(r.exercise_id)}: {_one_line(r.title.get(lang))} "
            f"({_L['namespace'].get(lang)}: {_one_line(r.namespace)}) =="
        )
        out.append(f"{_BOLD}{header}{_RESET}" if color else header)
        if r.error is not None:
            banner = f"!! {_L['ns_error'].get(lang)}"
            out.append(f"{_YELLOW}{_BOLD}{banner}{_RESET}" if color else banner)
            out += _indent(r.error.get(lang), "   ")
        hidden = 0
        errors = 0
        for c in r.checks:
            if c.visibility is Visibility.HIDDEN and not include_hidden:
                hidden += 1
                continue
            if effective_outcome(r, c) is Outcome.ERROR:
                errors += 1
            out += _check_lines(r, c, lang, color, show_hints)
        if hidden:
            out.append("  " + _L["hidden"].get(lang).format(n=hidden))
        total = f"{_L['score'].get(lang)}: {format_number(r.score)}/{format_number(r.max_score)}"
        if errors:
            total += "  (" + _L["errors"].get(lang).format(n=errors) + ")"
        out.append(total)
        out.append("")
    if len(results) > 1:
        score = sum(r.score for r in results)
        max_score = sum(r.max_score for r in results)
        out.append(f"{_L['total'].get(lang)}: {format_number(score)}/{format_number(max_score)}")
    return "\n".join(out).rstrip("\n") + "\n"


# --- --json ----------------------------------------------------------------------------------
def _text_dict(value: Text | None) -> dict[str, str] | None:
    return None if value is None else {"ja": clean(value.ja), "en": clean(value.en)}


def to_json(results: list[ExerciseResult], lang: str) -> dict[str, Any]:
    """The ``grade --json`` document (shape in the module docstring); both languages always."""
    return {
        "results": [
            {
                "exercise": clean(r.exercise_id),
                "title": _text_dict(r.title),
                "namespace": clean(r.namespace),
                "score": _json_number(r.score),
                "max_score": _json_number(r.max_score),
                "error": _text_dict(r.error),
                "checks": [
                    {
                        "id": clean(c.check_id),
                        "title": _text_dict(c.title),
                        "points": _json_number(c.points),
                        "earned": _json_number(c.earned),
                        "outcome": c.outcome.value,
                        "message": _text_dict(c.message),
                        "hint": _text_dict(c.hint),
                        "command": None if c.command is None else clean(c.command),
                        "visibility": c.visibility.value,
                        "attempts": c.attempts,
                        "duration": round(c.duration, 3),
                    }
                    for c in r.checks
                ],
            }
            for r in results
        ],
        "score": _json_number(sum(r.score for r in results)),
        "max_score": _json_number(sum(r.max_score for r in results)),
        "lang": lang,
    }


# --- gradebook CSV ---------------------------------------------------------------------------
def _cell(s: str) -> str:
    """Neutralise CSV/formula injection: a student could name a namespace ``=HYPERLINK(...)``."""
    s = clean(s)
    return "'" + s if s.startswith(_FORMULA_START) else s


def _has_error(r: ExerciseResult) -> bool:
    return r.error is not None or any(c.outcome is Outcome.ERROR for c in r.checks)


def gradebook_csv(results: list[ExerciseResult]) -> str:
    """One row per namespace for an LMS grade import.

    Columns: ``namespace``, one per exercise (in first-seen order; the cell is that exercise's
    score), ``total``, ``errors``. The first column is the namespace, not a student: the
    instructor maps namespace -> student. Moodle (Grades > Import > CSV file) reads the header
    row and asks under "Identify user by" which CSV column ("Map from") matches which user field
    ("Map to": username, email or ID number), so name namespaces after usernames or add that
    column; each exercise column is then mapped to a grade item. Canvas (Grades > Import) needs
    its own identifier columns (Student, ID, SIS User ID, SIS Login ID, Section); join this file
    onto a Canvas gradebook export on namespace and keep Canvas' columns first.

    Empty cells mean "no grade", not zero: an exercise not graded for a namespace, and an
    exercise with any error (namespace error or a check that could not be checked) because its
    score would understate the student's work. Both Moodle and Canvas skip empty cells on import
    instead of overwriting a grade with 0. ``errors`` lists the exercise ids that errored
    (space-separated) so the instructor re-runs them; ``total`` is the sum of the exercise
    scores and is empty whenever ``errors`` is not. If one (namespace, exercise) appears twice,
    the later result wins (a re-run).
    """
    exercises: dict[str, None] = {}
    rows: dict[str, dict[str, ExerciseResult]] = {}
    for r in results:
        exercises.setdefault(r.exercise_id, None)
        rows.setdefault(r.namespace, {})[r.exercise_id] = r
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["namespace", *(_cell(e) for e in exercises), "total", "errors"])
    for namespace, graded in rows.items():
        cells: list[str] = []
        errored: list[str] = []
        for ex in exercises:
            r = graded.get(ex)
            if r is None:
                cells.append("")
            elif _has_error(r):
                cells.append("")
                errored.append(ex)
            else:
                cells.append(format_number(r.score))
        total = "" if errored else format_number(sum(r.score for r in graded.values()))
        writer.writerow([_cell(namespace), *cells, total, _cell(" ".join(errored))])
    return buf.getvalue()


# --- Gradescope ------------------------------------------------------------------------------
_RERUN = Text(
    "採点システムが {n} 件のチェックを確認できませんでした (学生のミスではありません)。これらは得点にも"
    "一覧にも含めていません。自動採点をもう一度実行してください (Regrade):",
    "The autograder could not observe {n} check(s) (not your fault). They are left out of the score "
    "and of the test list: the autograder must be re-run (Regrade):",
)


def _gradescope_output(r: ExerciseResult, c: CheckResult, lang: str) -> str:
    parts: list[str] = []
    if c.outcome is Outcome.FAILED:
        if c.message is not None:
            parts.append(clean(c.message.get(lang)))
        if c.hint is not None:
            parts.append(f"{_L['hint'].get(lang)} {clean(c.hint.get(lang))}")
        if c.command:
            parts.append(f"{_L['try'].get(lang)} {clean(c.command)}")
    return "\n".join(parts)


_T = TypeVar("_T")
MEMO_MAX = 20_000


def memo(store: dict[Any, _T], key: Any, build: Callable[[], _T]) -> _T:
    """``store[key]``, built on first use; the store is emptied when it holds ``MEMO_MAX`` entries
    (a class's report pieces repeat, but text that names a namespace does not: bounded memory)."""
    got = store.get(key)
    if got is None:
        got = build()
        if len(store) >= MEMO_MAX:
            store.clear()
        store[key] = got
    return got


# Every student who ends a check the same way gets the same test name, score and output: those
# are cleaned and built once per distinct ending, not once per student (see junit._PARTS).
_NAMES: dict[tuple[object, ...], str] = {}
_TESTS: dict[tuple[object, ...], tuple[dict[str, Any], str, str]] = {}


def _test_name(r: ExerciseResult, c: CheckResult, lang: str) -> str:
    return memo(_NAMES, (lang, r.exercise_id, c.check_id, c.title), lambda: (
        f"{_one_line(r.exercise_id)} {_one_line(c.check_id)}: {_one_line(c.title.get(lang))}"))


def _test_parts(r: ExerciseResult, c: CheckResult, outcome: Outcome, lang: str,
                name: str) -> tuple[dict[str, Any], str, str]:
    """(a test's fields up to ``visibility``, its exercise, its check id), memoised; callers copy."""
    key = (lang, name, r.exercise_id, r.error, c.check_id, c.points, c.outcome, outcome, c.visibility,
           c.message, c.hint, c.command)
    return memo(_TESTS, key, lambda: ({
        "name": name,
        "score": _json_number(c.earned),
        "max_score": _json_number(c.points),
        "status": "passed" if outcome is Outcome.PASSED else "failed",
        "output": _gradescope_output(r, c, lang),
        "visibility": c.visibility.value,
    }, clean(r.exercise_id), clean(c.check_id)))


def gradescope_json(result: ExerciseResult | list[ExerciseResult], lang: str) -> dict[str, Any]:
    """Gradescope autograder ``results.json`` (https://gradescope-autograders.readthedocs.io/en/
    latest/specs/, "Output format").

    A per-test ``status`` knows only passed/failed, and a failed test reads as the student's
    fault. So a check the grader could not observe (``effective_outcome`` error) is left out of
    ``tests`` and the top-level ``output`` (always shown, ``output_format`` "text") lists it and
    says the autograder must be re-run; the score is the observed checks' points, which is what
    the model's score already is. What was left out is kept in the top-level ``extra_data``
    (``unobserved``: one entry per check; ``errors``: one per namespace error) so ``--out``'s
    gradebook and ``--resume`` still see it. ``execution_time`` is whole seconds, as in the
    specification's example. Test names are ``<exercise> <check_id>: <title>``.
    """
    results = result if isinstance(result, list) else [result]
    tests: list[dict[str, Any]] = []
    unobserved: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    lines: list[str] = []
    for r in results:
        namespace = clean(r.namespace)
        if r.error is not None:
            errors.append({"exercise": clean(r.exercise_id), "namespace": namespace,
                           "message": clean(r.error.get(lang))})
            lines.append(f"  {_one_line(r.exercise_id)}: {_one_line(r.error.get(lang))}")
        for c in r.checks:
            outcome = effective_outcome(r, c)
            name = _test_name(r, c, lang)
            if outcome is Outcome.ERROR:
                unobserved.append({
                    "exercise": clean(r.exercise_id), "namespace": namespace,
                    "check_id": clean(c.check_id), "name": name, "max_score": _json_number(c.points),
                    "visibility": c.visibility.value, "attempts": c.attempts,
                    "message": None if c.message is None else clean(c.message.get(lang)),
                })
                if c.visibility is not Visibility.HIDDEN:
                    detail = f" ({_one_line(c.message.get(lang))})" if c.message is not None and r.error is None else ""
                    lines.append(f"  {name}{detail}")
                continue
            static, exercise, check_id = _test_parts(r, c, outcome, lang, name)
            tests.append({
                **static,
                "tags": [outcome.value],
                "extra_data": {
                    "outcome": outcome.value,
                    "exercise": exercise,
                    "namespace": namespace,
                    "check_id": check_id,
                    "attempts": c.attempts,
                },
            })
    doc: dict[str, Any] = {
        "score": _json_number(sum(r.score for r in results)),
        "execution_time": max(0, int(round(sum(r.duration for r in results)))),
        "tests": tests,
    }
    if unobserved or errors:
        doc["output"] = "\n".join([_RERUN.get(lang).format(n=len(unobserved) or len(errors)), *lines])
        doc["output_format"] = "text"
        doc["extra_data"] = {"unobserved": unobserved, "errors": errors}
    return doc
