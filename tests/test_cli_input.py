"""Command-line input a person gets wrong: blank or missing -n, a course file's unknown exercise,
unwritable --junit/--out, a reader that closes the pipe, no arguments; each through the real CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.apidouble import ApiDouble
from tests.conftest import ROOT, run_grade


def _lines(text: str) -> list[str]:
    return text.strip().splitlines()


# --- -n ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_namespace_is_a_usage_error_not_the_whole_cluster(kubeconfig, blank):
    """Today an empty -n lists pods of every namespace and grades someone else's pod."""
    proc = run_grade("ex1", "--kubeconfig", str(kubeconfig), "-n", blank, "--wait", "0")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert _lines(proc.stderr) == ["grade: -n/--namespace is blank: give the name of the namespace to grade."]
    assert proc.stdout == ""


def test_blank_namespace_in_japanese(kubeconfig):
    proc = run_grade("ex1", "--kubeconfig", str(kubeconfig), "-n", "", "--lang", "ja")
    assert proc.returncode == 2 and "名前が空です" in proc.stderr and len(_lines(proc.stderr)) == 1


def test_a_name_kubernetes_would_refuse_never_reaches_a_url(kubeconfig):
    """`-n default/pods` would otherwise GET /api/v1/namespaces/default/pods and "exist"."""
    proc = run_grade("ex1", "--kubeconfig", str(kubeconfig), "-n", "default/pods", "--wait", "0")
    assert proc.returncode == 2
    assert _lines(proc.stderr) == ["grade: -n “default/pods”: not a namespace name "
                                   "(lowercase letters, digits and '-', at most 63)"]


@pytest.mark.parametrize("name", ["student-1\n", "Student1", "a" * 64, "-student"])
def test_a_name_that_is_almost_a_namespace_is_refused_in_process(name):
    """A trailing newline passes a ``$``-anchored pattern; the name must match whole."""
    from grader.errors import UsageError
    from grader.settings import resolve
    with pytest.raises(UsageError, match="not a namespace name"):
        resolve({"namespace": [name]}, {})


def test_missing_namespace_is_named_without_waiting_out_wait(kubeconfig):
    """--wait 600 would outlast the 120 s timeout if the grader graded the typo as an empty namespace."""
    proc = run_grade("ex1", "--kubeconfig", str(kubeconfig), "-n", "studnet-typo", "--wait", "600", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = _lines(proc.stderr)
    assert line.startswith("grade: namespace “studnet-typo” does not exist on https://127.0.0.1:")
    assert "oc projects" in line and proc.stdout == ""


@pytest.mark.parametrize("may_list", [True, False], ids=["listed-at-once", "read-one-by-one"])
def test_a_batch_names_each_missing_namespace_on_its_own_line(cluster, kubeconfig, fresh_ns, tmp_path, may_list):
    """Missing namespaces among several -n: one line each, the existing one not named. They are
    compared with one list of namespaces, or read one by one where listing is forbidden."""
    if not may_list:
        cluster.server.add_user("no-ns-list-token", "no-ns-list",
                                lambda attrs: not (attrs.resource == "namespaces" and attrs.verb == "list"))
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kc", token="no-ns-list-token")
    missing = ["gone-one", "gone-two", "gone-three"]
    argv = ["ex1", "--kubeconfig", str(kubeconfig), "--wait", "600", "-n", fresh_ns]
    for name in missing:
        argv += ["-n", name]
    proc = run_grade(*argv, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = _lines(proc.stderr)
    assert len(lines) == len(missing)
    for line, name in zip(lines, missing):
        assert line.startswith(f"grade: namespace “{name}” does not exist on https://127.0.0.1:")
    assert fresh_ns not in proc.stderr


def test_an_account_that_may_not_read_namespaces_is_graded_as_before(tmp_path):
    """403 on GET /api/v1/namespaces/NAME (an API double denying namespaces): the grader cannot
    tell, so it grades; an empty namespace scores 0 with exit 1, not a usage error."""
    with ApiDouble() as double:
        double.deny("namespaces", 403)
        kc = double.write_kubeconfig(tmp_path / "kc", namespace="student")
        proc = run_grade("ex1", "--kubeconfig", str(kc), "-n", "student", "--wait", "0", "--lang", "en")
        asked = [r for r in double.requests if r.startswith("/api/v1/namespaces/student?")
                 or r == "/api/v1/namespaces/student"]
    assert asked, double.requests
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Score: 0/10" in proc.stdout


def test_the_api_double_saying_404_is_a_missing_namespace(tmp_path):
    """The same check on a server that is not the embedded cluster: its 404 Status names it."""
    with ApiDouble() as double:
        kc = double.write_kubeconfig(tmp_path / "kc", namespace="student")
        proc = run_grade("ex1", "--kubeconfig", str(kc), "-n", "student", "--wait", "600", timeout=120)
        url = double.url
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert _lines(proc.stderr) == [f"grade: namespace “student” does not exist on {url}; "
                                   "check the name with `oc projects`."]


# --- course file -----------------------------------------------------------------------------------
def test_course_params_for_an_exercise_that_does_not_exist(tmp_path):
    course = tmp_path / "course.yaml"
    course.write_text('params:\n  "*": {image: registry.example.com/httpd}\n  ex01: {pod_name: web}\n')
    proc = run_grade("ex1", "--params", str(course), "--wait", "0")
    assert proc.returncode == 2
    (line,) = _lines(proc.stderr)
    assert f"course file {course}: params.ex01: no such exercise" in line and "ex1, ex2" in line


def test_course_params_for_known_exercises_are_accepted(tmp_path):
    course = tmp_path / "course.yaml"
    course.write_text('params:\n  "*": {image: registry.example.com/httpd}\n  ex1: {pod_name: web}\n')
    proc = run_grade("show", "ex1", "--params", str(course), "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    assert "web" in proc.stdout


# --- --junit / --out ---------------------------------------------------------------------------------
@pytest.mark.parametrize("option,target", [("--junit", "a-file/reports/r.xml"), ("--out", "a-file")])
def test_an_unwritable_report_is_found_before_grading(kubeconfig, fresh_ns, tmp_path, option, target):
    """A regular file where a directory must be (unwritable even as root). --wait 600 on an empty
    namespace would outlast the timeout if grading came first."""
    (tmp_path / "a-file").write_text("not a directory\n")
    proc = run_grade("ex1", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--wait", "600",
                     option, str(tmp_path / target), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = _lines(proc.stderr)
    assert line.startswith(f"grade: {option} {tmp_path / target}: cannot be written (")
    assert proc.stdout == ""


def test_junit_into_a_directory_is_refused(kubeconfig, fresh_ns, tmp_path):
    proc = run_grade("ex1", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--junit", str(tmp_path))
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_junit_creates_missing_parent_directories(kubeconfig, fresh_ns, tmp_path):
    path = tmp_path / "ci" / "reports" / "ex1.xml"
    proc = run_grade("ex1", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--wait", "0", "--junit", str(path))
    assert proc.returncode == 1, proc.stderr
    assert ET.parse(path).getroot().tag == "testsuites"
    assert not [p for p in path.parent.iterdir() if p.name != "ex1.xml"]  # no write-check leftovers


def _folder_becomes_a_file_while_grading(folder: Path, cluster, namespace: str, *args: str) -> tuple[int, str, str]:
    """Run ``grade ex1 -n NAMESPACE --wait 5 ARGS`` (the empty namespace keeps it re-observing for
    5 s), wait until it is grading with ``folder`` made and empty, then replace the folder with a
    regular file while the run is still grading; (exit code, stdout, stderr).

    "Grading" is told by the cluster's request log: the write check (mkdir, then a probe file made
    and removed) runs before the grader's first request, so once the cluster has seen a request
    for the namespace the probe file is gone. Seeing the folder empty is not enough: between the
    mkdir and the probe file it is empty too, and a loaded machine can stretch that moment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "grader", "ex1", "-n", namespace, "--wait", "5", "--lang", "en",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60

        def grading() -> bool:
            return any(f"/namespaces/{namespace}" in r.path for r in cluster.server.requests)
        while not grading() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert grading(), f"the grader never asked about {namespace} (exit {proc.poll()})"
        assert folder.is_dir() and not any(folder.iterdir()), "the check before grading creates the folder, empty"
        assert proc.poll() is None, "still grading"
        folder.rmdir()
        folder.write_text("now a file\n")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_the_console_report_is_printed_when_junit_cannot_be_written_after_grading(cluster, kubeconfig, fresh_ns,
                                                                                 tmp_path):
    """The reports folder is replaced by a file while grading (the run re-observes failing checks
    for 5 s): the student still sees the grade, stderr says the file was not written, exit 3."""
    reports = tmp_path / "reports"
    code, out, err = _folder_becomes_a_file_while_grading(reports, cluster, fresh_ns, "--kubeconfig", str(kubeconfig),
                                                          "--junit", str(reports / "r.xml"))
    assert code == 3, out + err
    assert "Score: 0/10" in out and out.count("FAIL") == 5
    (line,) = _lines(err)
    assert line.startswith(f"grade: could not write the JUnit report {reports / 'r.xml'} (")
    assert "the grade is the one shown above" in line


def test_a_batch_that_cannot_write_its_reports_after_grading_says_which_file(cluster, kubeconfig, fresh_ns, tmp_path):
    """--out's folder replaced by a file during a 5 s batch: one line naming the file, exit 3
    (not an internal error)."""
    out = tmp_path / "out"
    code, _, err = _folder_becomes_a_file_while_grading(out, cluster, fresh_ns, "--kubeconfig", str(kubeconfig),
                                                        "--quiet", "--out", str(out))
    assert code == 3, err
    (line,) = _lines(err)
    assert line.startswith(f"grade: cannot read or write {out}") and "internal error" not in line


# --- output read by someone else -------------------------------------------------------------------
def _closed_early(argv: list[str], *, unbuffered: bool) -> tuple[int, str]:
    """Run the grader with the read end of its stdout closed before it writes a byte."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "grader", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=120), err


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_a_graded_run_read_by_head_ends_quietly_with_the_grades_exit_code(kubeconfig, fresh_ns, tmp_path,
                                                                          unbuffered):
    """`grade ... | head`: no "internal error", no "Exception ignored" at exit; the exit code is
    the grade's (1: the namespace is empty), and the JUnit file is still written."""
    junit = tmp_path / "r.xml"
    code, err = _closed_early(["ex1", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--wait", "0",
                               "--junit", str(junit)], unbuffered=unbuffered)
    assert err == ""
    assert code == 1
    assert ET.parse(junit).getroot().tag == "testsuites"


def test_a_listing_read_by_head_ends_quietly():
    """Buffered, the whole listing fits the buffer and the closed pipe shows at the final flush:
    exit 0. Unbuffered, the first line already fails: the command is cut short, exit 141 as a
    shell reports for SIGPIPE. Neither says anything."""
    assert _closed_early(["list"], unbuffered=False) == (0, "")
    assert _closed_early(["list"], unbuffered=True) == (141, "")


# --- nothing given ----------------------------------------------------------------------------------
def test_no_arguments_prints_the_usage_and_what_is_missing():
    proc = run_grade()
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("usage: grade ")
    assert _lines(proc.stderr)[-1] == ("grade: no exercise given: name the one(s) to grade, e.g. `grade ex1`; "
                                       "`grade list` shows them.")
    assert sum(line.startswith("grade:") for line in _lines(proc.stderr)) == 1


def test_options_without_an_exercise_say_the_same_in_japanese(kubeconfig):
    proc = run_grade("--kubeconfig", str(kubeconfig), "--lang", "ja")
    assert proc.returncode == 2
    assert _lines(proc.stderr)[-1].startswith("grade: 採点する演習を指定してください")
