"""The LMS round trip (`--roster FILE --out DIR`): a Canvas export, a Moodle export and a plain CSV
in, `lms-import.csv` in the same shape out, `unmatched.csv`, the requester mapping on the embedded
cluster, and the `lms:` course-file mapping."""
from __future__ import annotations

import csv
import io
import secrets
from pathlib import Path

import pytest

from grader.apply import apply_files, manifest_files, solution_dir
from grader.cli import main
from grader.lms import REQUESTER, safe_cell
from grader.roster import CANVAS, MOODLE, PLAIN, parse_roster

# A Canvas gradebook export (Grades > Actions > Export), written after Instructure's guide "How do
# I export grades in the Gradebook?" as republished by VCU (read-only Current/Final/Unposted score
# columns; https://ts.vcu.edu/askit/teaching-and-learning/canvas/faculty/grading-faculty/
# gradebook-action-menu-faculty/) and Ohio State's "Import a CSV file to Carmen Grades" (the
# identity columns Student, ID, SIS User ID, SIS Login ID, Section, then the assignment columns;
# a new assignment column creates a new assignment; https://teaching.resources.osu.edu/toolsets/
# carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades). The "Title (id)"
# headers and the blank-padded "Points Possible" row with "(read only)" cells are Canvas's export
# layout as commonly seen, not copied from a recorded file.
CANVAS_EXPORT = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Lab 1: Pods (1001),Lab 2: Services (1002),Current Score,Unposted Current Score,Final Score,Unposted Final Score
    Points Possible,,,,,10.00,10.00,(read only),(read only),(read only),(read only)
"Doe, Jane",4101,S001,{a},Section A,9.00,,90.00,90.00,45.00,45.00
"Smith, Alex",4102,S002,{b},Section A,8.00,3.00,55.00,55.00,55.00,55.00
"Wong, Bo",4103,S003,{c},Section B,10.00,7.00,85.00,85.00,85.00,85.00
"=HYPERLINK(""http://evil.example/""),Eve",4104,S004,{d},Section B,,9.00,90.00,90.00,45.00,45.00
"""

# A Moodle grades export (Grades > Export > Plain text file), after MoodleDocs "Grade export" and
# "Grade import" (https://docs.moodle.org/27/en/Grade_import: the import reads the export's own
# format; "Identify user by" maps a CSV column such as "Email address" to the user's e-mail; "-"
# is how the export shows no grade) and Moodle's own behat fixture grade/tests/behat/
# grade_import.feature (users student1..3 with email studentN@example.com). The identity columns
# are the default "showuseridentity" (email) plus the fixed name and ID number columns.
MOODLE_EXPORT = """First name,Last name,ID number,Institution,Department,Email address,Assignment: Lab 1: Pods (Real),Assignment: Lab 2: Services (Real),Course total (Real),Last downloaded from this course
Jane,Doe,,,,{a},9.00,-,9.00,1764300000
Alex,Smith,,,,{b},8.00,3.00,11.00,1764300000
Bo,Wong,,,,{c},10.00,7.00,17.00,1764300000
Eve,@SUM(1+1),,,,{d},-,9.00,9.00,1764300000
"""

# A plain roster the instructor writes: a namespace for some rows, a login for the others.
PLAIN_ROSTER = """name,login,namespace
Jane Doe,{a},
Alex Smith,{b},{ns_b}
Bo Wong,{c},
-Eve,{d},
"""

COURSE = "lms:\n  ex2: \"Lab 2: Services\"\n"


def _make_ns(api, name: str, requester: str | None, what: str) -> str:
    meta: dict = {"name": name}
    if requester is not None:
        meta["annotations"] = {REQUESTER: requester}
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}, None)
    files = {p.name: p for p in manifest_files(solution_dir("ex2"))}
    if what == "broken":
        variant = solution_dir("ex2") / "variants" / "wrong-port"
        files.update({p.name: p for p in manifest_files(variant) if p.name != "expect.yaml"})
    assert apply_files(api, list(files.values()), name) == []
    return name


@pytest.fixture(scope="module")
def klass(cluster, api, tmp_path_factory):
    """Four students: a full marks, b broken (4/10), c's namespace the grader may not read, d has
    no namespace; plus a stray namespace whose requester is in no roster."""
    tag = secrets.token_hex(3)
    logins = {k: f"{k}{tag}@example.edu" for k in "abcd"}
    ns = {
        "a": _make_ns(api, f"lms-{tag}-a", logins["a"].upper(), "good"),   # case differs: still Jane's
        "b": _make_ns(api, f"lms-{tag}-b", logins["b"], "broken"),
        "c": _make_ns(api, f"lms-{tag}-c", logins["c"], "good"),
        "stray": _make_ns(api, f"lms-{tag}-stray", f"mallory{tag}", "good"),
    }
    cluster.settle()

    def authorize(a) -> bool:
        return a.namespace != ns["c"]

    token = secrets.token_hex(8)
    cluster.server.add_user(token, "ta", authorize)
    kc = cluster.write_kubeconfig(tmp_path_factory.mktemp("lms") / "kc", token=token)
    return {"tag": tag, "logins": logins, "ns": ns, "kubeconfig": kc}


def _run(capsys, klass, roster_text: str, tmp_path: Path, course: str | None = COURSE) -> tuple[int, str, Path]:
    roster = tmp_path / "export.csv"
    roster.write_text(roster_text, encoding="utf-8")
    out = tmp_path / "out"
    args = ["ex2", "--kubeconfig", str(klass["kubeconfig"]), "--wait", "0", "--quiet", "--lang", "en",
            "--out", str(out), "--roster", str(roster), "--namespace-pattern", f"lms-{klass['tag']}-*"]
    if course is not None:
        (tmp_path / "course.yaml").write_text(course, encoding="utf-8")
        args += ["--params", str(tmp_path / "course.yaml")]
    code = main(args)
    _, err = capsys.readouterr()
    return code, err, out


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def _check_unmatched(out: Path, klass, err: str) -> None:
    unmatched = {r["namespace"]: r for r in csv.DictReader(io.StringIO((out / "unmatched.csv").read_text()))}
    stray = klass["ns"]["stray"]
    assert set(unmatched) == {stray}
    assert unmatched[stray]["requester"] == f"mallory{klass['tag']}" and unmatched[stray]["reason"] == "no roster row"
    assert "1 graded namespace(s) match no roster row" in err and stray in err


def test_canvas_round_trip(capsys, klass, tmp_path):
    text = CANVAS_EXPORT.format(**klass["logins"])
    code, err, out = _run(capsys, klass, text, tmp_path)
    assert code == 1                       # b failed checks (that outranks c's grader error)
    before, after = _rows_of_text(text), _rows(out / "lms-import.csv")
    assert (out / "lms-import.csv").read_bytes().startswith("\ufeff".encode())   # the BOM Canvas wrote
    assert after[0] == before[0]                                            # header kept, no new column
    assert after[1] == before[1]                                            # Points Possible row kept
    assert [r[:5] for r in after[2:5]] == [r[:5] for r in before[2:5]]      # identity columns, row order
    col = before[0].index("Lab 2: Services (1002)")
    assert [r[col] for r in after[2:]] == ["10", "4", "7.00", "9.00"]       # c: error keeps 7; d: no namespace
    assert [r[5] for r in after[2:]] == [r[5] for r in before[2:]]          # Lab 1 untouched
    assert after[5][0].startswith("'=HYPERLINK")                            # formula neutralised
    assert "total" not in after[0] and "errors" not in after[0]
    _check_unmatched(out, klass, err)
    assert klass["ns"]["stray"] in (out / "index.html").read_text(encoding="utf-8")   # the class page, too


def _rows_of_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_canvas_header_rule_holds_for_the_import_file(capsys, klass, tmp_path):
    code, _, out = _run(capsys, klass, CANVAS_EXPORT.format(**klass["logins"]), tmp_path, course=None)
    header = _rows(out / "lms-import.csv")[0]
    assert "Student" in header[0] and header[1] == "ID"
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    # No lms: mapping: the column is the exercise's title, new at the end (Canvas creates the assignment).
    assert header[-1] == "Expose the Pod with a Service"
    rows = _rows(out / "lms-import.csv")
    assert rows[1][-1] == "10"                                              # its Points Possible
    assert [r[-1] for r in rows[2:]] == ["10", "4", "", ""]


def test_moodle_round_trip(capsys, klass, tmp_path):
    text = MOODLE_EXPORT.format(**klass["logins"])
    code, err, out = _run(capsys, klass, text, tmp_path)
    before, after = _rows_of_text(text), _rows(out / "lms-import.csv")
    assert after[0] == before[0] and len(after) == len(before)
    assert [r[:6] for r in after[1:4]] == [r[:6] for r in before[1:4]]
    col = before[0].index("Assignment: Lab 2: Services (Real)")
    assert [r[col] for r in after[1:]] == ["10", "4", "7.00", "9.00"]
    assert after[4][1] == "'@SUM(1+1)"
    assert [r[6] for r in after[1:]] == [r[6] for r in before[1:]]         # "-" stays "-"
    assert not (out / "lms-import.csv").read_bytes().startswith("\ufeff".encode())
    _check_unmatched(out, klass, err)


def test_plain_round_trip_namespace_column_wins(capsys, klass, tmp_path):
    text = PLAIN_ROSTER.format(**klass["logins"], ns_b=klass["ns"]["b"])
    code, err, out = _run(capsys, klass, text, tmp_path)
    after = _rows(out / "lms-import.csv")
    assert after[0] == ["name", "login", "namespace", "Lab 2: Services"]
    assert [r[0] for r in after[1:]] == ["Jane Doe", "Alex Smith", "Bo Wong", "'-Eve"]
    assert [r[3] for r in after[1:]] == ["10", "4", "", ""]
    _check_unmatched(out, klass, err)
    assert "1 roster row(s) have no graded namespace" in err      # Eve


def test_a_login_with_two_namespaces_keeps_the_old_value(capsys, cluster, api, klass, tmp_path):
    tag = klass["tag"]
    other = _make_ns(api, f"lms-{tag}-z-second", klass["logins"]["b"], "good")
    try:
        cluster.settle()
        code, err, out = _run(capsys, klass, CANVAS_EXPORT.format(**klass["logins"]), tmp_path)
        col = _rows(out / "lms-import.csv")[0].index("Lab 2: Services (1002)")
        assert _rows(out / "lms-import.csv")[3][col] == "3.00"
        reasons = {r["namespace"]: r["reason"] for r in csv.DictReader(io.StringIO((out / "unmatched.csv").read_text()))}
        assert reasons[other].startswith("the login owns several graded namespaces")
        assert reasons[klass["ns"]["b"]] == reasons[other]
    finally:
        api.delete_namespace(other)


# --- shapes and errors --------------------------------------------------------------------------
def test_shapes_are_told_apart_by_the_header():
    assert parse_roster(CANVAS_EXPORT.format(a="a", b="b", c="c", d="d")).shape == CANVAS
    canvas = parse_roster(CANVAS_EXPORT.format(a="a", b="b", c="c", d="d"))
    assert canvas.points_row == 0 and not canvas.is_student(0) and canvas.is_student(1)
    assert parse_roster(MOODLE_EXPORT.format(a="a", b="b", c="c", d="d")).shape == MOODLE
    assert parse_roster("namespace,score\nns1,1\n").shape == PLAIN
    semicolons = parse_roster("login;name\njdoe;Jane\n")
    assert semicolons.shape == PLAIN and semicolons.logins(0) == ["jdoe"]


@pytest.mark.parametrize("text, says", [
    ("", "empty file"),
    ("name,score\nJane,1\n", "not a Canvas or Moodle gradebook export"),
    ("Student,ID,SIS User ID,Section\nJane,1,S1,A\n", "no column to tell students apart"),
])
def test_a_roster_that_fits_no_shape_is_a_one_line_usage_error(capsys, tmp_path, text, says):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    code = main(["ex2", "--out", str(tmp_path / "out"), "--roster", str(path), "-n", "x", "--kubeconfig",
                 str(tmp_path / "none")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and says in err[0] and str(path) in err[0]


def test_roster_without_out_is_a_usage_error(capsys, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("login\njdoe\n", encoding="utf-8")
    assert main(["ex2", "--roster", str(path), "-n", "x"]) == 2
    assert "--roster needs --out" in capsys.readouterr().err


@pytest.mark.parametrize("course, says", [
    ("lms: [ex2]\n", "lms: expected a mapping"),
    ("lms:\n  ex2: \"\"\n", "lms.ex2: expected the LMS column name"),
    ("lms:\n  ex99: Lab\n", "lms.ex99: no such exercise"),
])
def test_course_file_lms_mapping_is_checked(capsys, tmp_path, course, says):
    path = tmp_path / "course.yaml"
    path.write_text(course, encoding="utf-8")
    assert main(["list", "--params", str(path)]) == 2
    err = capsys.readouterr().err
    assert says in err and str(path) in err


@pytest.mark.parametrize("value, shown", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-x", "'-x"), ("@A1", "'@A1"), ("\tx", "'\tx"),
    ("-", "-"), ("-3.5", "-3.5"), ("10.00", "10.00"), ("Jane", "Jane"),
])
def test_safe_cell(value, shown):
    assert safe_cell(value) == shown
