"""The import file's shape rules without a cluster: the real-shaped Canvas and Moodle exports in
tests/fixtures/lms (and the variants an LMS setting produces: BOM, CRLF, ';' with decimal commas,
LastName/FirstName) round-trip byte for byte except for the cells the grader fills."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from grader.i18n import t
from grader.lms import Column, lms_import
from grader.results import CheckResult, ExerciseResult, Outcome
from grader.roster import CANVAS, MOODLE, parse_roster, split_lines

FIXTURES = Path(__file__).parent / "fixtures" / "lms"
CANVAS_TEXT = (FIXTURES / "canvas-gradebook-export.csv").read_text(encoding="utf-8")
MOODLE_TEXT = (FIXTURES / "moodle-grades-export.csv").read_text(encoding="utf-8")
LAB2 = [Column("ex2", "Lab 2: Services", 10.0)]


def _result(ns: str, score: float, *, error: bool = False, ex: str = "ex2") -> ExerciseResult:
    checks = [CheckResult("ok", t("o", "o"), score, Outcome.PASSED),
              CheckResult("no", t("n", "n"), 10.0 - score, Outcome.FAILED)]
    if error:
        checks.append(CheckResult("err", t("e", "e"), 0.0, Outcome.ERROR))
    return ExerciseResult(ex, t("Lab", "Lab"), ns, checks)


def _trip(text: str, scores: dict[str, float], columns=LAB2, errors: frozenset[str] = frozenset()):
    """Each login in ``scores`` owns the namespace ``ns-<login>`` with that score."""
    by_ns = {f"ns-{login}": [_result(f"ns-{login}", s, error=login in errors)] for login, s in scores.items()}
    owners = {f"ns-{login}": login for login in scores}
    return lms_import(parse_roster(text), by_ns, columns, owners)


def _diff(before: str, after: str) -> dict[int, tuple[str, str]]:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    return {i: (o, n) for i, (o, n) in enumerate(zip(old, new)) if o != n}


CLASS = {"jdoe@example.edu": 10.0, "asmith@example.edu": 4.0, "bwong@example.edu": 9.0}
BO_ERRORED = frozenset({"bwong@example.edu"})     # a grader-side error: Bo keeps the export's value


def test_canvas_export_round_trips_byte_for_byte_but_for_the_filled_cells():
    trip = _trip(CANVAS_TEXT, CLASS, errors=BO_ERRORED)
    changed = _diff(CANVAS_TEXT, trip.csv)
    assert sorted(changed) == [3, 4]                     # Jane "" -> 10, Alex 3.00 -> 4; Bo errored
    assert changed[3][1].split(",")[8] == "10" and changed[4][1].split(",")[8] == "4"
    assert trip.unfilled_rows == 1                       # Eve; the test student is nobody's


@pytest.mark.parametrize("variant", ["bom", "crlf", "bom+crlf"])
def test_canvas_bom_and_crlf_are_kept(variant):
    text = CANVAS_TEXT.replace("\n", "\r\n") if "crlf" in variant else CANVAS_TEXT
    text = "\ufeff" + text if "bom" in variant else text
    out = _trip(text, CLASS, errors=BO_ERRORED).csv
    assert out.startswith("\ufeff") == ("bom" in variant)
    assert sorted(_diff(text, out)) == [3, 4]
    assert out.count("\r\n") == (text.count("\r\n"))


def test_canvas_semicolons_and_decimal_commas():
    """Canvas's CSV settings (CSVWithI18n) can give ';' and "9,00"; its importer reads both back."""
    text = CANVAS_TEXT.replace(",", ";").replace("; ", ", ").replace(".00", ",00")
    out = _trip(text, {"jdoe@example.edu": 9.0, "asmith@example.edu": 2.5}).csv
    changed = _diff(text, out)
    assert sorted(changed) == [3, 4]
    lab2 = [next(csv.reader([changed[i][1]], delimiter=";"))[7] for i in (3, 4)]
    assert lab2 == ["9", "2,5"]


def test_canvas_last_first_name_variant():
    """With split names Canvas writes LastName, FirstName, ID, ... (GradebookImporter accepts it)."""
    lines = CANVAS_TEXT.split("\n")
    lines[0] = lines[0].replace("Student,ID,", "LastName,FirstName,ID,", 1)
    lines[1] = "," + lines[1]
    lines[2] = lines[2].replace("    Points Possible,", "    Points Possible,,", 1)
    lines[3:8] = [line.replace('"Doe, Jane"', "Doe,Jane").replace('"Smith, Alex"', "Smith,Alex")
                  .replace('"Wong, Bo"', "Wong,Bo").replace('"=""=1+1, Eve"""', '"=""=1+1""",Eve')
                  .replace('"Student, Test"', "Student,Test") for line in lines[3:8]]
    text = "\n".join(lines)
    roster = parse_roster(text)
    assert roster.shape == CANVAS and roster.login_columns == [4]
    assert [roster.is_student(i) for i in range(len(roster.rows))] == [False, False, True, True, True, True, False]
    out = _trip(text, CLASS, errors=BO_ERRORED).csv
    changed = _diff(text, out)
    assert sorted(changed) == [3, 4] and next(csv.reader([changed[4][1]]))[8] == "4"


def test_canvas_read_only_columns_are_never_filled():
    """A course-file name that is a total, or an assignment whose points cell says (read only),
    gets a new column (which Canvas would ignore, and we say so) instead of a total overwritten."""
    text = CANVAS_TEXT.replace("10.00,10.00,(read only)", "10.00,(read only),(read only)", 1)
    roster = parse_roster(text)
    assert roster.header.index("Lab 2: Services (1002)") in roster.read_only
    assert {roster.header.index(h) for h in ("Current Score", "Final Grade", "Assignments Current Points",
                                             "SIS Login ID", "Section")} <= roster.read_only
    trip = _trip(text, CLASS, columns=[Column("ex2", "Lab 2: Services", 10.0), Column("ex3", "Current Score", 10.0)])
    rows = list(csv.reader(io.StringIO(trip.csv)))
    assert rows[0][-2:] == ["Lab 2: Services", "Current Score"]
    before = list(csv.reader(io.StringIO(text)))
    assert [r[:-2] for r in rows] == before                # nothing in the export changed
    assert [r[-2] for r in rows[3:]] == ["10", "4", "9", "", ""]
    assert len(trip.notes) == 1 and "Canvas ignores a column named" in trip.notes[0].get("en")


def test_canvas_excused_and_not_assigned_cells_and_equal_scores_keep_their_text():
    text = CANVAS_TEXT.replace(",8.00,3.00,", ",8.00,EX,", 1).replace(",10.00,7.00,", ",10.00,N/A,", 1)
    out = _trip(text, {"jdoe@example.edu": 0.0, "asmith@example.edu": 4.0, "bwong@example.edu": 9.0,
                       "eve@example.edu": 9.0}).csv
    changed = _diff(text, out)
    assert sorted(changed) == [3]                          # only Jane: "" -> 0
    assert changed[3][1].split(",")[8] == "0"              # Eve's 9 equals "9.00": kept as "9.00"


def test_moodle_export_round_trips_and_fills_only_the_real_column():
    trip = _trip(MOODLE_TEXT, CLASS, errors=BO_ERRORED)
    changed = _diff(MOODLE_TEXT, trip.csv)
    assert sorted(changed) == [1, 2]
    assert changed[1][1].startswith("Jane,Doe,S001,\"Example University\",Informatics,jdoe@example.edu,9.00,10,-,")
    assert changed[2][1].endswith(',4,"30.00 %",11.00,1764300000\n')
    roster = parse_roster(MOODLE_TEXT)
    assert roster.shape == MOODLE and roster.login_columns == [5]
    fixed = {"First name", "Institution", "Email address", "Assignment: Lab 2: Services (Percentage)",
             "Course total (Real)", "Last downloaded from this course"}
    assert {roster.header.index(h) for h in fixed} <= roster.read_only


@pytest.mark.parametrize("header, fills", [
    ("Assignment: Lab 2: Services (Real)", True),       # an activity: "<Module name>: <item>"
    ("Lab 2: Services (Real)", True),                   # a manual grade item: no module prefix
    ("Lab 2: Services (Feedback)", False),
    ("Feedback: Lab 2: Services", False),               # Moodle before 2.8 named feedback so
    ("Assignment: Lab 2: Services (Letter)", False),
    ("Lab total (Real)", False),                        # a category total
])
def test_moodle_column_matching(header, fills):
    text = f'"First name","Last name","Email address","{header}"\nJane,Doe,jdoe@example.edu,-\n'
    rows = list(csv.reader(io.StringIO(_trip(text, {"jdoe@example.edu": 10.0}).csv)))
    assert (len(rows[0]) == 4 and rows[1][3] == "10") == fills
    assert (rows[0][-1] == "Lab 2: Services") == (not fills)


def test_moodle_username_suspended_and_blank_lines_are_kept():
    text = ('"First name","Last name",Username,"Email address",Suspended,"Quiz: Lab 2: Services (Real)"\r\n'
            'Jane,Doe,jdoe,jane.doe@example.edu,,-\r\n\r\nAlex,Smith,asmith,alex@example.edu,Yes,3.00\r\n\r\n')
    roster = parse_roster(text)
    assert roster.login_columns == [2, 3] and roster.header.index("Suspended") in roster.read_only
    out = _trip(text, {"jdoe": 10.0, "asmith": 3.0}).csv
    assert out == text.replace(",-\r\n", ",10\r\n", 1)


def test_quoted_commas_quotes_and_newlines_in_names():
    text = ('login,name,"Lab 2: Services"\n'
            'jdoe,"Doe, ""JD""\nJane",\n'
            'asmith,  Alex  ,"3"\n')
    out = _trip(text, {"jdoe": 10.0, "asmith": 4.0}).csv
    assert out == 'login,name,"Lab 2: Services"\njdoe,"Doe, ""JD""\nJane",10\nasmith,  Alex  ,"4"\n'


@pytest.mark.parametrize("text", [CANVAS_TEXT, MOODLE_TEXT, 'a,"b\r\nc",""\r\n\r\n"x""y"z,\n', 'a,"open\nrest'])
def test_split_lines_reads_what_csv_reader_reads(text):
    """The byte-keeping reader agrees with the standard library on values, and its pieces put back
    together are the file."""
    lines = split_lines(text, ",")
    assert [line.cells for line in lines] == list(csv.reader(io.StringIO(text, newline="")))
    assert "".join(",".join(line.raw) + line.end for line in lines) == text


@pytest.mark.parametrize("sep", [",", ";", "\t", ":"])
def test_moodle_separators(sep):
    """Moodle's plain-text export offers comma, semicolon, colon and tab; item names carry colons."""
    text = MOODLE_TEXT.replace(",", sep)
    roster = parse_roster(text)
    assert roster.delimiter == sep and roster.shape == MOODLE
    out = _trip(text, CLASS, errors=BO_ERRORED).csv
    assert sorted(_diff(text, out)) == [1, 2]


def test_moodle_export_without_name_fields_is_still_moodle():
    """A site may export only some profile fields; "(Real)" columns still say it is Moodle's."""
    text = '"Email address","Quiz: Lab 2: Services (Real)","Last downloaded from this course"\njdoe@example.edu,-,1764300000\n'
    roster = parse_roster(text)
    assert roster.shape == MOODLE
    assert _trip(text, {"jdoe@example.edu": 7.0}).csv == text.replace(",-,", ",7,")
