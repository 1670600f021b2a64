"""The LMS round trip: ``DIR/lms-import.csv`` (the roster with its exercise columns filled) and
``DIR/unmatched.csv`` (graded namespaces no roster row claims).

Why the roster's own shape: Canvas and Moodle re-import the file they exported, matching rows by
their own identity columns; any other shape needs hand edits. Why "keep the existing value":
both LMSs treat an empty cell as a change (Moodle clears the grade, Canvas shows "10 -> blank"),
so a student whose exercise the grader could not see (a grader-side error), who has no namespace,
or whose login owns several graded namespaces gets back exactly what the export held, and the
import changes nothing for them. ``total`` and ``errors`` are never written: an LMS would take
them for assignments.

Which namespace is whose: a roster ``namespace`` column where the row fills it; else the
namespace's ``openshift.io/requester`` annotation (OpenShift sets it to the user who requested
the project) matched, without case, against the roster's login column(s).

An exercise's column is the course file's ``lms: {ex3: "Lab 3: Storage (1234)"}`` name, else the
exercise's title. A header cell matches it exactly, or once Canvas's `` (1234)`` or Moodle's
`` (Real)`` (and ``<Module>: ``) is set aside; a column the LMS treats as read-only (identity
columns, Canvas's totals and "(read only)" columns, Moodle's totals, Percentage/Letter/Feedback
views and export time) is never matched. An exercise no column matches gets a new column at the
end: Canvas creates a new assignment from a new column, and Moodle's CSV import offers to map it
to a "new grade item"; its "Points Possible" cell (Canvas) is the exercise's maximum score.

Byte for byte: every line and cell the grader does not fill is written back exactly as read
(quotes, line ends, BOM, Canvas's ``="..."`` around a name that starts with ``=``). Copied cells
are not made "spreadsheet-safe": the LMS wrote them, the instructor already holds them in the
export, and Canvas falls back to matching a student by name, so an altered name could match
nobody. Only what the grader writes is checked: numbers, and the header of a new column.
"""
from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .errors import ClusterUnavailable, InfraError
from .kube import Api
from .i18n import Raw, Text, t
from .reports import format_number, write_atomic
from .results import ExerciseResult, Outcome
from .roster import CANVAS, CANVAS_NOT_ASSIGNMENT, MOODLE, Roster
from .sanitize import clean
from .settings import Settings
from .specs import ExerciseSpec

REQUESTER = "openshift.io/requester"
LMS_IMPORT = "lms-import.csv"
UNMATCHED = "unmatched.csv"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_CANVAS_ID = re.compile(r"^(.*\S)\s+\(\d+\)$")
_MOODLE_REAL = re.compile(r"^(.*\S)\s+\(Real\)$")


@dataclass(frozen=True)
class Column:
    """One exercise's place in the import file."""

    exercise: str
    name: str
    max_score: float


@dataclass
class RoundTrip:
    """What was written, for the summary line and the tests."""

    csv: str
    unmatched_csv: str
    unmatched: list[tuple[str, str, str]] = field(default_factory=list)   # namespace, requester, reason
    unfilled_rows: int = 0
    notes: list[Text] = field(default_factory=list)                         # said on stderr


def safe_cell(value: str) -> str:
    """A cell no spreadsheet runs as a formula, for what the grader itself writes (a new column's
    header, ``unmatched.csv``, whose namespace and requester names are student-controlled).
    Numbers and Moodle's lone ``-`` (no grade) stay as they are; any other text that starts with
    ``= + - @``, a tab or CR gets a leading apostrophe."""
    value = clean(value) if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in value) else value
    if value == "-" or _NUMBER.match(value.strip()):
        return value
    return "'" + value if value.startswith(_FORMULA_START) else value


def requesters(api: Api, names: Sequence[str]) -> dict[str, str]:
    """``openshift.io/requester`` of each namespace, from one list of namespaces (one get per
    namespace where the account may not list them). A namespace whose annotation cannot be read
    simply has none: it lands in ``unmatched.csv``, never with someone else's row."""
    wanted = set(names)
    found: dict[str, str] = {}
    try:
        objects = [o for o in api.list("Namespace") if (o.get("metadata") or {}).get("name") in wanted]
    except ClusterUnavailable:
        raise
    except InfraError:
        objects = []
        for name in names:
            try:
                objects.append(api.get("Namespace", name))
            except ClusterUnavailable:
                raise
            except InfraError:
                continue
    for o in objects:
        meta = o.get("metadata") or {}
        value = (meta.get("annotations") or {}).get(REQUESTER)
        if isinstance(value, str) and value.strip():
            found[str(meta.get("name"))] = value.strip()
    return found


def _header_match(roster: Roster, name: str) -> int | None:
    """The column an exercise fills: a header equal to ``name``, else (Canvas) ``name (1234)``, or
    (Moodle) ``name (Real)`` / ``<Module>: name (Real)``. Never a read-only column (identity,
    totals, Moodle's Percentage/Letter/Feedback views of the same item, the export time)."""
    cells = [h.strip() for h in roster.header]
    want = name.strip().casefold()
    open_cols = [i for i in range(len(cells)) if i not in roster.read_only]
    for i in open_cols:
        if cells[i].casefold() == want:
            return i
    for i in open_cols:
        if roster.shape == CANVAS:
            canvas = _CANVAS_ID.match(cells[i])
            if canvas and canvas.group(1).casefold() == want:
                return i
        elif roster.shape == MOODLE:
            moodle = _MOODLE_REAL.match(cells[i])
            if moodle and want in (moodle.group(1).casefold(), moodle.group(1).split(": ", 1)[-1].casefold()):
                return i
    return None


def _rows_of(roster: Roster, by_ns: Mapping[str, Sequence[ExerciseResult]],
             owners: Mapping[str, str]) -> tuple[dict[int, str], list[tuple[str, str, str]]]:
    """Roster row index -> its namespace, and the graded namespaces no row takes (with why)."""
    row_ns: dict[int, str] = {}
    claimed: set[str] = set()
    students = [i for i in range(len(roster.rows)) if roster.is_student(i)]
    for i in students:
        ns = roster.namespace(i)
        if ns is not None:
            row_ns[i] = ns
            claimed.add(ns)
    by_login: dict[str, list[int]] = {}
    for i in students:
        if i not in row_ns:
            for login in roster.logins(i):
                by_login.setdefault(login, []).append(i)
    wants: dict[int, list[str]] = {}
    unmatched: list[tuple[str, str, str]] = []
    for ns in by_ns:
        if ns in claimed:
            continue
        owner = owners.get(ns, "")
        rows = sorted(set(by_login.get(owner.casefold(), []))) if owner else []
        if len(rows) == 1:
            wants.setdefault(rows[0], []).append(ns)
        elif len(rows) > 1:
            unmatched.append((ns, owner, "several roster rows have this login"))
        else:
            unmatched.append((ns, owner, "no roster row" if owner else f"no roster row (no {REQUESTER} annotation)"))
    for i, namespaces in wants.items():
        if len(namespaces) == 1:
            row_ns[i] = namespaces[0]
        else:
            unmatched += [(ns, owners.get(ns, ""), "the login owns several graded namespaces: "
                           + " ".join(sorted(namespaces))) for ns in namespaces]
    return row_ns, sorted(unmatched)


def _graded(results: Sequence[ExerciseResult]) -> dict[str, ExerciseResult]:
    return {r.exercise_id: r for r in results}


def _usable(r: ExerciseResult | None) -> bool:
    """A score that may go to the LMS: graded, and nothing the grader failed to see."""
    return r is not None and r.error is None and not any(c.outcome is Outcome.ERROR for c in r.checks)


def _number(cell: str) -> float | None:
    text = cell.strip().replace(",", ".")
    try:
        return float(text) if _NUMBER.match(text) and not text.endswith("%") else None
    except ValueError:
        return None


def _cell_for(roster: Roster, old: str, score: float) -> str:
    """What a graded cell becomes. The old text where it already says this score ("9.00" for 9:
    the file stays byte for byte and no LMS sees a change), where Canvas says "EX" (the instructor
    excused the student) or "N/A" (the assignment is not assigned to the student: Canvas ignores
    the cell anyway); else the score, with a decimal comma where the export uses one."""
    if roster.shape == CANVAS and old.strip().upper() in ("EX", "N/A"):
        return old
    if _number(old) == score:
        return old
    text = format_number(score)
    return text.replace(".", ",") if roster.decimal_comma else text


def _quote(value: str, delimiter: str, was_quoted: bool) -> str:
    if was_quoted or any(ch in value for ch in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def lms_import(roster: Roster, by_ns: Mapping[str, Sequence[ExerciseResult]], columns: Sequence[Column],
               owners: Mapping[str, str]) -> RoundTrip:
    """The import file and the unmatched list (see the module docstring for every rule). Every
    line, cell and line end the grader does not fill is written back exactly as read."""
    width = len(roster.header)
    where: dict[str, int] = {}
    added: list[Column] = []
    notes: list[Text] = []
    for col in columns:
        at = _header_match(roster, col.name)
        if at is None:
            at = width + len(added)
            added.append(col)
            if roster.shape == CANVAS and CANVAS_NOT_ASSIGNMENT.search(col.name):
                notes.append(t("Canvas は {c} という列を合計欄とみなして取り込みません。コースファイルの lms: で"
                               "課題の列名を指定してください。",
                               "Canvas ignores a column named {c} (it takes it for a total): name the assignment's "
                               "column with the course file's lms: mapping.", c=col.name))
        where[col.exercise] = at
    row_ns, unmatched = _rows_of(roster, by_ns, owners)
    rows = roster.rows
    filled: dict[int, dict[int, str]] = {}
    unfilled = 0
    for i, ns in row_ns.items():
        graded = _graded(by_ns.get(ns, []))
        if not graded:
            unfilled += 1
        for ex, at in where.items():
            r = graded.get(ex)
            if _usable(r):
                assert r is not None
                row = rows[i]
                old = row[at] if at < len(row) else ""
                new = _cell_for(roster, old, r.score)
                if new != old or at >= width:
                    filled.setdefault(i, {})[at] = new
    unfilled += sum(1 for i in range(len(rows)) if roster.is_student(i) and i not in row_ns)
    d = roster.delimiter
    out = [("\ufeff" if roster.bom else "") + roster.lead]
    for li, line in enumerate(roster.lines):
        raw = list(line.raw)
        if li == 0:
            raw += [_quote(safe_cell(c.name), d, False) for c in added]
        elif line.cells:
            cells = filled.get(li - 1, {})
            if added or any(at >= len(raw) for at in cells):
                raw += [""] * (width - len(raw))
                raw += [format_number(c.max_score) if li - 1 == roster.points_row else "" for c in added]
            for at, value in cells.items():
                raw[at] = _quote(value, d, raw[at].startswith('"'))
        out.append(d.join(raw) + line.end)
    text = "".join(out)
    return RoundTrip(text, _unmatched_csv(unmatched, by_ns, columns), unmatched, unfilled, notes)


def _unmatched_csv(unmatched: list[tuple[str, str, str]], by_ns: Mapping[str, Sequence[ExerciseResult]],
                   columns: Sequence[Column]) -> str:
    """One row per graded namespace no roster row took, with its scores, so the instructor can
    enter them by hand or fix the roster (an errored exercise's cell says so, never a 0)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["namespace", "requester", "reason", *(safe_cell(c.name) for c in columns)])
    for ns, owner, reason in unmatched:
        graded = _graded(by_ns.get(ns, []))
        cells = []
        for c in columns:
            r = graded.get(c.exercise)
            cells.append("" if r is None else format_number(r.score) if _usable(r) else "error")
        writer.writerow([safe_cell(clean(ns)), safe_cell(clean(owner)), reason, *cells])
    return out.getvalue()


def columns_for(settings: Settings, specs: Sequence[ExerciseSpec]) -> list[Column]:
    """Each exercise's LMS column: the course file's ``lms`` name, else its title in ``--lang``."""
    names = settings.course.lms if settings.course else {}
    return [Column(s.id, names.get(s.id) or clean(s.render(s.title).get(settings.lang)).strip() or s.id, s.max_score)
            for s in specs]


def write_round_trip(api: Api, settings: Settings, specs: Sequence[ExerciseSpec],
                     by_ns: Mapping[str, Sequence[ExerciseResult]], out_dir: Path, roster: Roster) -> RoundTrip:
    """Write ``DIR/lms-import.csv`` and ``DIR/unmatched.csv`` and say on stderr what was left out."""
    owners = requesters(api, [ns for ns in by_ns]) if any(
        roster.namespace(i) is None for i in range(len(roster.rows)) if roster.is_student(i)) else {}
    trip = lms_import(roster, by_ns, columns_for(settings, specs), owners)
    write_atomic(out_dir / LMS_IMPORT, trip.csv)
    write_atomic(out_dir / UNMATCHED, trip.unmatched_csv)
    lang = settings.lang
    if trip.unmatched:
        names = ", ".join(clean(ns) for ns, _, _ in trip.unmatched[:10]) + (" …" if len(trip.unmatched) > 10 else "")
        print("grade: " + t("名簿のどの行にも対応しない名前空間が {n} 個あります (成績は {f} にあります): {ns}",
                            "{n} graded namespace(s) match no roster row (their scores are in {f}): {ns}",
                            n=len(trip.unmatched), f=Raw(str(out_dir / UNMATCHED)), ns=Raw(names)).get(lang),
              file=sys.stderr)
    for note in trip.notes:
        print("grade: " + note.get(lang), file=sys.stderr)
    if trip.unfilled_rows:
        print("grade: " + t("名簿の {n} 行には採点した名前空間がないため、元の値のままです。",
                            "{n} roster row(s) have no graded namespace; their cells keep the roster's values.",
                            n=trip.unfilled_rows).get(lang), file=sys.stderr)
    return trip


__all__ = ["Column", "LMS_IMPORT", "REQUESTER", "RoundTrip", "UNMATCHED", "columns_for", "lms_import", "requesters",
           "safe_cell", "write_round_trip"]

