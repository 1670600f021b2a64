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

# The Canvas and Moodle exports are built from the LMSs' own exporter code (instructure/canvas-lms
# lib/gradebook_exporter.rb, moodle/moodle grade/export/txt/grade_export_txt.php) and read by the
# rules of their importers; tests/fixtures/lms/SOURCES.md says cell by cell where each detail
# comes from. Logins are swapped for this run's users; every other byte stays as in the file.
FIXTURES = Path(__file__).parent / "fixtures" / "lms"
LOGINS = {"a": "jdoe@example.edu", "b": "asmith@example.edu", "c": "bwong@example.edu", "d": "eve@example.edu"}


def _export(name: str, logins: dict[str, str]) -> str:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for k, login in LOGINS.items():
        text = text.replace(login, logins[k])
    return text


def canvas_export(logins: dict[str, str]) -> str:
    return _export("canvas-gradebook-export.csv", logins)


def moodle_export(logins: dict[str, str]) -> str:
    return _export("moodle-grades-export.csv", logins)


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
    roster.write_bytes(roster_text.encode("utf-8"))
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


def _changed_lines(before: str, after: str) -> dict[int, tuple[str, str]]:
    """Lines that differ, by index (the files must have the same number of lines)."""
    old, new = before.split("\n"), after.split("\n")
    assert len(old) == len(new)
    return {i: (o, n) for i, (o, n) in enumerate(zip(old, new)) if o != n}


def test_canvas_round_trip(capsys, klass, tmp_path):
    text = canvas_export(klass["logins"])
    code, err, out = _run(capsys, klass, text, tmp_path)
    assert code == 1                       # b failed checks (that outranks c's grader error)
    written = (out / "lms-import.csv").read_bytes().decode("utf-8")
    # Byte for byte the export, but for the two cells the grader fills: Jane's empty Lab 2 gets
    # 10, Alex's 3.00 becomes 4. Bo's grader error keeps 7.00, Eve has no namespace and keeps
    # 9.00, the test student is nobody's; the header, the Manual Posting row, the "    Points
    # Possible" row with its leading spaces, the read-only totals, Canvas's own ="..." around
    # Eve's name, the quoted "Doe, Jane" and the LF line ends are all as exported.
    changed = _changed_lines(text, written)
    assert sorted(changed) == [3, 4]
    assert changed[3][1] == changed[3][0].replace(",9.00,,9.00,", ",9.00,10,9.00,", 1)
    assert changed[4][1] == changed[4][0].replace(",8.00,3.00,", ",8.00,4,", 1)
    assert written.split("\n")[2].startswith("    Points Possible,")
    assert "\r" not in written and not written.startswith("\ufeff")
    before, after = _rows_of_text(text), _rows(out / "lms-import.csv")
    assert after[0] == before[0] and "total" not in after[0] and "errors" not in after[0]
    _check_unmatched(out, klass, err)
    assert "1 roster row(s) have no graded namespace" in err          # Eve; not the test student
    assert klass["ns"]["stray"] in (out / "index.html").read_text(encoding="utf-8")   # the class page, too


def _rows_of_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_canvas_new_column_when_no_lms_mapping(capsys, klass, tmp_path):
    code, _, out = _run(capsys, klass, canvas_export(klass["logins"]), tmp_path, course=None)
    rows = _rows(out / "lms-import.csv")
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    # No lms: mapping: the column is the exercise's title, new at the end (Canvas creates the assignment).
    assert rows[0][-1] == "Expose the Pod with a Service"
    assert rows[1][-1] == ""                                               # the Manual Posting row
    assert rows[2][0] == "    Points Possible" and rows[2][-1] == "10"    # its points
    assert [r[-1] for r in rows[3:]] == ["10", "4", "", "", ""]
    assert [r[:-1] for r in rows] == _rows_of_text(canvas_export(klass["logins"]))


def test_a_new_canvas_column_named_like_a_total_is_reported(capsys, klass, tmp_path):
    course = 'lms:\n  ex2: "Lab 2 Final Score"\n'
    code, err, out = _run(capsys, klass, canvas_export(klass["logins"]), tmp_path, course=course)
    assert _rows(out / "lms-import.csv")[0][-1] == "Lab 2 Final Score"
    assert "Canvas ignores a column named “Lab 2 Final Score” (it takes it for a total)" in err


def test_moodle_round_trip(capsys, klass, tmp_path):
    text = moodle_export(klass["logins"])
    code, err, out = _run(capsys, klass, text, tmp_path)
    written = (out / "lms-import.csv").read_bytes().decode("utf-8")
    # Jane's "-" (no grade) becomes 10 and Alex's 3.00 becomes 4 in the (Real) column only; the
    # (Percentage) view of the same item, Course total, "Last downloaded from this course", the
    # fputcsv quoting ("First name", "30.00 %") and Eve's @SUM name stay as exported.
    changed = _changed_lines(text, written)
    assert sorted(changed) == [1, 2]
    assert changed[1][1] == changed[1][0].replace(",9.00,-,-,", ",9.00,10,-,", 1)
    assert changed[2][1] == changed[2][0].replace(",8.00,3.00,", ",8.00,4,", 1)
    assert written.startswith('"First name","Last name","ID number",Institution,')
    assert not written.startswith("\ufeff")
    _check_unmatched(out, klass, err)


def test_plain_round_trip_namespace_column_wins(capsys, klass, tmp_path):
    text = PLAIN_ROSTER.format(**klass["logins"], ns_b=klass["ns"]["b"])
    code, err, out = _run(capsys, klass, text, tmp_path)
    after = _rows(out / "lms-import.csv")
    assert after[0] == ["name", "login", "namespace", "Lab 2: Services"]
    assert [r[0] for r in after[1:]] == ["Jane Doe", "Alex Smith", "Bo Wong", "-Eve"]     # as given
    assert [r[3] for r in after[1:]] == ["10", "4", "", ""]
    _check_unmatched(out, klass, err)
    assert "1 roster row(s) have no graded namespace" in err      # Eve


def test_a_login_with_two_namespaces_keeps_the_old_value(capsys, cluster, api, klass, tmp_path):
    tag = klass["tag"]
    other = _make_ns(api, f"lms-{tag}-z-second", klass["logins"]["b"], "good")
    try:
        cluster.settle()
        code, err, out = _run(capsys, klass, canvas_export(klass["logins"]), tmp_path)
        col = _rows(out / "lms-import.csv")[0].index("Lab 2: Services (1002)")
        assert _rows(out / "lms-import.csv")[4][col] == "3.00"
        reasons = {r["namespace"]: r["reason"] for r in csv.DictReader(io.StringIO((out / "unmatched.csv").read_text()))}
        assert reasons[other].startswith("the login owns several graded namespaces")
        assert reasons[klass["ns"]["b"]] == reasons[other]
    finally:
        api.delete_namespace(other)


# --- shapes and errors --------------------------------------------------------------------------
def test_shapes_are_told_apart_by_the_header():
    canvas = parse_roster(canvas_export(LOGINS))
    assert canvas.shape == CANVAS and canvas.points_row == 1
    assert [canvas.is_student(i) for i in range(len(canvas.rows))] == [False, False, True, True, True, True, False]
    assert parse_roster(moodle_export(LOGINS)).shape == MOODLE
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
