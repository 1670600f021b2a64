"""A class roster read from the LMS's own gradebook export (or a plain CSV), kept byte for byte.

Why keep it verbatim: the import file we write back (``lms.lms_import``) must be the same file
the LMS gave out, with only the exercise cells filled, so Canvas and Moodle match every row to the
same student again and change nothing the grader did not grade. So each cell is kept as it was
written (its quotes, the line ends, the BOM, blank lines), not just its value.

Three shapes, told apart by the header row. The rules below are the LMSs' own code, not guesses:

* **Canvas** (``lib/gradebook_exporter.rb`` and ``lib/gradebook_importer.rb`` in
  instructure/canvas-lms): ``Student, ID, [SIS User ID,] SIS Login ID, [Integration ID,] [Root
  Account,] Section, <custom columns>, <Title (id)...>, <read-only totals>``, or ``LastName,
  FirstName, ID, ...`` when the course shows split names. The importer wants ``row[0]`` to
  contain "Student" and ``row[1]`` "ID" (or LastName/FirstName/ID) and the identity columns to end
  at "Section". Under the header: an optional row of "Manual Posting" cells, then the row whose
  first cell is ``"    Points Possible"`` (four leading spaces), with ``(read only)`` under every
  total; the test student ("Student, Test") comes last. Any column whose header contains "Current
  Score", "Final Grade", ... or whose Points Possible cell says "read only" is ignored by the
  importer, so the grader never writes to it. The login is ``SIS Login ID``.
* **Moodle** (``grade/export/txt`` and ``grade/import/csv/classes/load_data.php`` in
  moodle/moodle): the profile fields of ``grade_export_userprofilefields`` (default ``First name,
  Last name, ID number, Institution, Department, Email address``), an optional ``Suspended``, one
  ``<Module>: <item> (Real)`` column per grade item and display type (``(Percentage)``,
  ``(Letter)``, ``(Feedback)`` too), ``Course total (Real)``, and ``Last downloaded from this
  course`` (a Unix time the importer checks). The login is ``Username`` where the site exports
  it, else ``Email address``.
* **plain**: a ``namespace`` and/or ``login`` column and any others.

Any shape may carry a ``namespace`` column (in Canvas, a custom gradebook column), which then says
which namespace is whose.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import UsageError
from .i18n import Raw, clean, t

MAX_BYTES = 20 * 1024 * 1024      # a roster of 100,000 students is far below this
CANVAS, MOODLE, PLAIN = "canvas", "moodle", "plain"

# Canvas's importer drops every header that contains one of these (GradebookImporter::
# NON_ASSIGNMENT_COLUMN_HEADERS, matched as a substring: "Unposted ..." and "<Group> ..." too).
CANVAS_NOT_ASSIGNMENT = re.compile("Current Score|Current Points|Current Grade|Final Score|Final Points|"
                                   "Final Grade|Override Score|Override Grade|Override Status")
_CANVAS_HIDDEN_ROW = re.compile(r"^\s*(Muted|Manual Posting.*)?\s*$", re.IGNORECASE)
_READ_ONLY = re.compile(r"read\s+only")
_MOODLE_FIXED = {"first name", "last name", "surname", "id number", "institution", "department", "email address",
                 "username", "suspended", "last downloaded from this course"}
_MOODLE_NOT_GRADE = re.compile(r"(\((Percentage|Letter|Feedback)\)$)|(^Feedback: )|(\btotal( \((Real|Percentage|"
                               r"Letter)\))?$)", re.IGNORECASE)
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*%?\s*$")


@dataclass
class Line:
    """One record as the file holds it: each cell's value, each cell's bytes, and the line end."""

    cells: list[str]
    raw: list[str]
    end: str


def split_lines(text: str, delimiter: str) -> list[Line]:
    """RFC 4180 records that remember their own spelling (a ``csv.reader`` forgets whether a cell
    was quoted and which line end it had, and the import file must keep both). Lenient as
    ``csv.reader`` is: text after a closing quote belongs to the cell; an unclosed quote runs to
    the end of the file. A blank line is a record with no cells."""
    out: list[Line] = []
    i, n = 0, len(text)
    stops = (delimiter, "\r", "\n")
    while i < n:
        cells: list[str] = []
        raw: list[str] = []
        while True:
            start = i
            parts: list[str] = []
            if i < n and text[i] == '"':
                j = i + 1
                while True:
                    k = text.find('"', j)
                    if k < 0:
                        parts.append(text[j:])
                        j = n
                        break
                    parts.append(text[j:k])
                    if text.startswith('""', k):
                        parts.append('"')
                        j = k + 2
                        continue
                    j = k + 1
                    break
                i = j
            m = i
            while m < n and text[m] not in stops:
                m += 1
            parts.append(text[i:m])
            i = m
            cells.append("".join(parts))
            raw.append(text[start:i])
            if i < n and text[i] == delimiter:
                i += 1
                continue
            break
        end = "\r\n" if text.startswith("\r\n", i) else text[i] if i < n else ""
        i += len(end)
        if raw == [""]:
            cells, raw = [], []
        out.append(Line(cells, raw, end))
    return out


@dataclass
class Roster:
    """The file as read: every line (header first) in order, and what its shape says."""

    path: str
    shape: str
    lines: list[Line]
    login_columns: list[int] = field(default_factory=list)
    namespace_column: int | None = None
    points_row: int | None = None          # index in ``rows`` of Canvas's "Points Possible" row
    delimiter: str = ","
    bom: bool = False                      # written back as read: Excel needs it to see UTF-8
    read_only: set[int] = field(default_factory=set)   # columns the grader must never fill
    not_students: set[int] = field(default_factory=set)  # rows that are no student's (see is_student)
    decimal_comma: bool = False            # scores written "9,5" (Canvas/Moodle in such a locale)
    lead: str = ""                         # blank lines above the header, written back as read

    @property
    def header(self) -> list[str]:
        return self.lines[0].cells

    @cached_property
    def rows(self) -> list[list[str]]:
        """The cells of every line under the header (the lines are not changed once read)."""
        return [line.cells for line in self.lines[1:]]

    def is_student(self, i: int) -> bool:
        """Blank lines, Canvas's Manual Posting and Points Possible rows and its test student are
        nobody's: they are kept, never filled, and not counted as students without a namespace."""
        return i not in self.not_students and any(c.strip() for c in self.lines[i + 1].cells)

    def logins(self, i: int) -> list[str]:
        """The row's login values, case-folded (OpenShift user names and e-mail addresses are
        compared without case: a Moodle username is lower case, an IdP may spell it otherwise)."""
        row = self.lines[i + 1].cells
        return [row[c].strip().casefold() for c in self.login_columns if c < len(row) and row[c].strip()]

    def namespace(self, i: int) -> str | None:
        row = self.lines[i + 1].cells
        c = self.namespace_column
        return row[c].strip() or None if c is not None and c < len(row) else None


def _find(header: list[str], name: str) -> int | None:
    folded = [h.strip().casefold() for h in header]
    return folded.index(name.casefold()) if name.casefold() in folded else None


def _bad(path: str, why: str, why_ja: str) -> UsageError:
    return UsageError(t("--roster {p}: {why_ja}", "--roster {p}: {why}", p=Raw(path), why_ja=Raw(why_ja), why=Raw(why)))


def _is_canvas(names: list[str]) -> bool:
    """GradebookImporter#row_has_student_headers? and its "ends at Section" check."""
    plain = len(names) > 3 and "Student" in names[0] and "ID" in names[1]
    split = len(names) > 4 and "LastName" in names[0] and "FirstName" in names[1] and "ID" in names[2]
    return (plain or split) and any("Section" in n for n in names)


def _canvas(roster: Roster, names: list[str]) -> None:
    section = next(i for i, n in enumerate(names) if "Section" in n)
    roster.read_only |= set(range(section + 1))
    roster.read_only |= {i for i, n in enumerate(names) if CANVAS_NOT_ASSIGNMENT.search(n)}
    split = names[0] == "LastName"
    for i, row in enumerate(roster.rows):
        if roster.points_row is None and row and "Points Possible" in row[0]:
            roster.points_row = i
            roster.not_students.add(i)
            roster.read_only |= {c for c, v in enumerate(row) if _READ_ONLY.search(v)}
        elif row and all(_CANVAS_HIDDEN_ROW.match(c) for c in row):
            roster.not_students.add(i)           # Manual Posting / Muted row, or empty cells
        elif len(row) <= (2 if split else 1) or not row[2 if split else 1].strip():
            roster.not_students.add(i)           # no Canvas user ID: nobody Canvas could match
        elif (row[0].strip(), row[1].strip() if split else "") in {("Student, Test", ""), ("Test Student", ""),
                                                                   ("Student", "Test")}:
            roster.not_students.add(i)           # the course's Student View user


def _moodle(roster: Roster, names: list[str]) -> None:
    roster.read_only |= {i for i, n in enumerate(names) if n.casefold() in _MOODLE_FIXED or _MOODLE_NOT_GRADE.search(n)}


def _delimiter(text: str) -> str:
    """The separator of the header row, counted outside quotes: ``,``; ``;`` (Canvas's and
    Moodle's choice in decimal-comma locales); tab; or ``:`` (a Moodle export option), which
    wins only where nothing else separates the header, since grade item names carry colons."""
    first, quoted = text[:65536], False
    for i, ch in enumerate(first):
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:
            first = first[:i]
            break
    outside = re.sub(r'"[^"]*("|$)', "", first)
    counts = {d: outside.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ":" if ":" in outside else ","


def parse_roster(text: str, path: str = "roster.csv") -> Roster:
    """The roster in ``text``; a clear one-line ``UsageError`` when no shape fits."""
    bom = text.startswith("\ufeff")            # Excel and Canvas (if asked to) write one
    text = text[1:] if bom else text
    delimiter = _delimiter(text)
    lines = split_lines(text, delimiter)
    if not any(c.strip() for line in lines for c in line.cells):
        raise _bad(path, "empty file: export the gradebook from the LMS, or give a CSV with a namespace or login column",
                   "空のファイルです。LMS の成績表をエクスポートするか、namespace か login の列がある CSV を指定してください")
    lead = ""
    while not lines[0].cells:                  # blank lines above the header
        lead += lines.pop(0).end
    names = [h.strip() for h in lines[0].cells]
    ns_col = _find(names, "namespace")
    roster = Roster(path, PLAIN, lines, [], ns_col, delimiter=delimiter, bom=bom, lead=lead)
    moodle_marks = any(n.endswith("(Real)") for n in names) or "Last downloaded from this course" in names
    if _is_canvas(names):
        roster.shape = CANVAS
        login = _find(names, "SIS Login ID")
        roster.login_columns = [login] if login is not None else []
        _canvas(roster, names)
    elif (_find(names, "Email address") is not None or _find(names, "Username") is not None) and (
            moodle_marks or _find(names, "First name") is not None):
        roster.shape = MOODLE
        roster.login_columns = [c for c in (_find(names, "Username"), _find(names, "Email address")) if c is not None]
        _moodle(roster, names)
    elif ns_col is not None or _find(names, "login") is not None:
        login = _find(names, "login")
        roster.login_columns = [login] if login is not None else []
    else:
        raise _bad(path, "not a Canvas or Moodle gradebook export, and no namespace or login column "
                   f"(header: {clean(', '.join(names))[:120]}; Moodle names the columns in the exporting "
                   "user's language: export with Moodle set to English)",
                   "Canvas・Moodle の成績表エクスポートではなく、namespace 列も login 列もありません "
                   f"(見出し: {clean(', '.join(names))[:120]}。Moodle は列名をエクスポートした人の表示言語で書くので、"
                   "英語表示に切り替えてからエクスポートしてください)")
    if ns_col is None and not roster.login_columns:
        raise _bad(path, "no column to tell students apart (SIS Login ID, Username or Email address, login, namespace)",
                   "学生を識別する列がありません (SIS Login ID、Username か Email address、login、namespace)")
    roster.read_only |= set(roster.login_columns) | ({ns_col} if ns_col is not None else set())
    roster.decimal_comma = any(
        _DECIMAL_COMMA.match(c) for row in roster.rows for i, c in enumerate(row) if i not in roster.read_only)
    return roster


def read_roster(path: str) -> Roster:
    """Read and parse ``path``; an unreadable or oversized file is a usage error, not a traceback."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise _bad(path, f"cannot read it ({e.strerror or type(e).__name__})",
                   f"読めません ({e.strerror or type(e).__name__})") from None
    if len(data) > MAX_BYTES:
        raise _bad(path, f"larger than {MAX_BYTES // (1024 * 1024)} MiB", f"{MAX_BYTES // (1024 * 1024)} MiB を超えています")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(path, "not UTF-8 text: save it as CSV UTF-8", "UTF-8 のテキストではありません。CSV UTF-8 で保存してください") from None
    return parse_roster(text, path)


__all__ = ["CANVAS", "CANVAS_NOT_ASSIGNMENT", "Line", "MOODLE", "PLAIN", "Roster", "parse_roster", "read_roster",
           "split_lines"]
