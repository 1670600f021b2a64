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
exercise's title. A header cell matches it exactly, or after dropping Canvas's `` (id)`` suffix
or Moodle's ``Type: `` prefix and `` (Real)``-style suffix. An exercise no column matches gets a
new column at the end: Canvas creates a new assignment from a new column, and Moodle's CSV import
offers to map it to a "new grade item"; its "Points Possible" cell (Canvas) is the exercise's
maximum score.
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
from .i18n import Raw, t
from .reports import format_number, write_atomic
from .results import ExerciseResult, Outcome
from .roster import Roster
from .sanitize import clean
from .settings import Settings
from .specs import ExerciseSpec

REQUESTER = "openshift.io/requester"
LMS_IMPORT = "lms-import.csv"
UNMATCHED = "unmatched.csv"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_CANVAS_ID = re.compile(r"^(.*\S)\s+\(\d+\)$")
_MOODLE_ITEM = re.compile(r"^(?:[^:]{1,40}:\s*)?(.*?)(?:\s+\((?:Real|Percentage|Letter)\))?$")


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


def safe_cell(value: str) -> str:
    """A cell no spreadsheet runs as a formula. Numbers and Moodle's lone ``-`` (no grade) stay
    as they are, since an LMS must read them back; any other text that starts with ``= + - @``,
    a tab or CR gets a leading apostrophe (student names are student-controlled)."""
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


def _header_match(header: Sequence[str], name: str) -> int | None:
    cells = [h.strip() for h in header]
    if name.strip() in cells:
        return cells.index(name.strip())
    want = name.strip().casefold()
    for i, cell in enumerate(cells):
        canvas = _CANVAS_ID.match(cell)
        if canvas and canvas.group(1).casefold() == want:
            return i
        moodle = _MOODLE_ITEM.match(cell)
        if moodle and moodle.group(1).strip().casefold() == want and ":" in cell:
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


def lms_import(roster: Roster, by_ns: Mapping[str, Sequence[ExerciseResult]], columns: Sequence[Column],
               owners: Mapping[str, str]) -> RoundTrip:
    """The import file and the unmatched list (see the module docstring for every rule)."""
    header = list(roster.header)
    rows = [list(r) for r in roster.rows]
    width = len(header)
    for r in rows:
        r.extend([""] * (width - len(r)))
    where: dict[str, int] = {}
    for col in columns:
        at = _header_match(header, col.name)
        if at is None:
            header.append(col.name)
            at = len(header) - 1
            for i, r in enumerate(rows):
                r.append(format_number(col.max_score) if i == roster.points_row else "")
        where[col.exercise] = at
    row_ns, unmatched = _rows_of(roster, by_ns, owners)
    unfilled = 0
    for i, ns in row_ns.items():
        graded = _graded(by_ns.get(ns, []))
        if not graded:
            unfilled += 1
        for ex, at in where.items():
            r = graded.get(ex)
            if _usable(r):
                assert r is not None
                rows[i][at] = format_number(r.score)
    unfilled += sum(1 for i in range(len(rows)) if roster.is_student(i) and i not in row_ns)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=roster.dialect_delimiter, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for r in rows:
        writer.writerow([safe_cell(c) for c in r])
    text = ("\ufeff" if roster.bom else "") + out.getvalue()
    return RoundTrip(text, _unmatched_csv(unmatched, by_ns, columns), unmatched, unfilled)


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
    if trip.unfilled_rows:
        print("grade: " + t("名簿の {n} 行には採点した名前空間がないため、元の値のままです。",
                            "{n} roster row(s) have no graded namespace; their cells keep the roster's values.",
                            n=trip.unfilled_rows).get(lang), file=sys.stderr)
    return trip


__all__ = ["Column", "LMS_IMPORT", "REQUESTER", "RoundTrip", "UNMATCHED", "columns_for", "lms_import", "requesters",
           "safe_cell", "write_round_trip"]

