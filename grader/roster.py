"""A class roster read from the LMS's own gradebook export (or a plain CSV), kept cell for cell.

Why keep it verbatim: the import file we write back (``lms.lms_import_csv``) must be the same
file the LMS gave out, with only the exercise columns filled, so Canvas and Moodle match every
row to the same student again and change nothing the grader did not grade.

Three shapes, told apart by the header row:

* **Canvas** gradebook export (Grades > Export): ``Student, ID, SIS User ID, SIS Login ID,
  Section, <assignments...>, <read-only score columns>``. Canvas's importer needs ``row[0]`` to
  contain "Student", ``row[1]`` to be "ID" and the identity columns to end at "Section"; a second
  row whose first cell is "Points Possible" (blank-padded) holds each assignment's points. The
  login is ``SIS Login ID``.
* **Moodle** grades export (Grades > Export > Plain text file): ``First name, Last name, [ID
  number, Institution, Department,] [Username,] Email address, <Type: item (Real)...>, ...``. The
  login is ``Username`` where the site shows it, else ``Email address``.
* **plain**: a ``namespace`` and/or ``login`` column and any others.

Any shape may carry a ``namespace`` column, which then says which namespace is whose.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .i18n import Raw, clean, t

MAX_BYTES = 20 * 1024 * 1024      # a roster of 100,000 students is far below this
CANVAS, MOODLE, PLAIN = "canvas", "moodle", "plain"


@dataclass
class Roster:
    """The file as read: header, every row (student or not) in order, and what the shape says."""

    path: str
    shape: str
    header: list[str]
    rows: list[list[str]]
    login_columns: list[int] = field(default_factory=list)
    namespace_column: int | None = None
    points_row: int | None = None          # index in ``rows`` of Canvas's "Points Possible" row
    dialect_delimiter: str = ","
    bom: bool = False                      # written back as read: Excel needs it to see UTF-8

    def is_student(self, i: int) -> bool:
        """Canvas puts non-student rows (Points Possible, Manual Posting) under the header: they
        have no ID. Every row of the other shapes is a student."""
        row = self.rows[i]
        if self.shape != CANVAS:
            return True
        return len(row) > 1 and bool(row[1].strip())

    def logins(self, i: int) -> list[str]:
        """The row's login values, case-folded (OpenShift user names and e-mail addresses are
        compared without case: a Moodle username is lower case, an IdP may spell it otherwise)."""
        row = self.rows[i]
        return [row[c].strip().casefold() for c in self.login_columns if c < len(row) and row[c].strip()]

    def namespace(self, i: int) -> str | None:
        row = self.rows[i]
        c = self.namespace_column
        return row[c].strip() or None if c is not None and c < len(row) else None


def _find(header: list[str], name: str) -> int | None:
    folded = [h.strip().casefold() for h in header]
    return folded.index(name.casefold()) if name.casefold() in folded else None


def _bad(path: str, why: str, why_ja: str) -> UsageError:
    return UsageError(t("--roster {p}: {why_ja}", "--roster {p}: {why}", p=Raw(path), why_ja=Raw(why_ja), why=Raw(why)))


def parse_roster(text: str, path: str = "roster.csv") -> Roster:
    """The roster in ``text``; a clear one-line ``UsageError`` when no shape fits."""
    bom = text.startswith("\ufeff")            # Excel and Canvas write one
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count) if first else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()                            # trailing blank lines
    if not rows:
        raise _bad(path, "empty file: export the gradebook from the LMS, or give a CSV with a namespace or login column",
                   "空のファイルです。LMS の成績表をエクスポートするか、namespace か login の列がある CSV を指定してください")
    header, body = rows[0], rows[1:]
    names = [h.strip() for h in header]
    ns_col = _find(names, "namespace")
    if len(names) > 1 and "student" in names[0].casefold() and names[1] == "ID" and "Section" in names:
        login = _find(names, "SIS Login ID")
        roster = Roster(path, CANVAS, header, body, [login] if login is not None else [], ns_col,
                        dialect_delimiter=delimiter)
        for i, row in enumerate(body):
            if row and row[0].strip() == "Points Possible":
                roster.points_row = i
                break
    elif _find(names, "First name") is not None and _find(names, "Email address") is not None:
        cols = [c for c in (_find(names, "Username"), _find(names, "Email address")) if c is not None]
        roster = Roster(path, MOODLE, header, body, cols, ns_col, dialect_delimiter=delimiter)
    elif ns_col is not None or _find(names, "login") is not None:
        login = _find(names, "login")
        roster = Roster(path, PLAIN, header, body, [login] if login is not None else [], ns_col,
                        dialect_delimiter=delimiter)
    else:
        raise _bad(path, "not a Canvas or Moodle gradebook export, and no namespace or login column "
                   f"(header: {clean(', '.join(names))[:120]})",
                   "Canvas・Moodle の成績表エクスポートではなく、namespace 列も login 列もありません "
                   f"(見出し: {clean(', '.join(names))[:120]})")
    if ns_col is None and not roster.login_columns:
        raise _bad(path, "no column to tell students apart (SIS Login ID, Username or Email address, login, namespace)",
                   "学生を識別する列がありません (SIS Login ID、Username か Email address、login、namespace)")
    roster.bom = bom
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


__all__ = ["CANVAS", "MOODLE", "PLAIN", "Roster", "parse_roster", "read_roster"]
