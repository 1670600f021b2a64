"""`grade selftest`: on the embedded cluster, on a cluster given by --kubeconfig (scratch
namespaces created and deleted), with a course's own exercises, and when a variant lies."""
from __future__ import annotations

import shutil
from pathlib import Path

from grader.cli import main
from grader.apply import solution_dir
from grader.settings import data_dir

ROOT = Path(__file__).resolve().parents[1]


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_selftest_on_the_embedded_cluster(capsys):
    code, out = _run(capsys, "selftest", "ex1", "--lang", "en")
    assert code == 0 and out.rstrip().endswith("selftest: OK")
    assert "ok   ex1   solution" in out and "ok   ex1   wrong-label" in out and "BAD" not in out


def test_selftest_on_a_given_cluster_cleans_up(capsys, cluster, api, kubeconfig):
    before = {o["metadata"]["name"] for o in api.list("Namespace")}
    code, out = _run(capsys, "selftest", "ex2", "--kubeconfig", str(kubeconfig), "--lang", "en")
    assert code == 0, out
    after = {o["metadata"]["name"] for o in api.list("Namespace")}
    assert after == before, "scratch namespaces left behind"
    made = [r.path for r in cluster.server.requests if r.method == "POST" and r.path == "/api/v1/namespaces"]
    assert made, "it should have created scratch namespaces"


def _course(tmp_path: Path) -> Path:
    """A course directory with its own copy of ex1 and its solutions (exercises/ + solutions/)."""
    course = tmp_path / "course"
    shutil.copytree(data_dir("exercises") / "ex1", course / "exercises" / "ex1")
    shutil.copytree(solution_dir("ex1"), course / "solutions" / "ex1")
    return course


def test_a_lying_variant_is_reported(capsys, tmp_path):
    course = _course(tmp_path)
    (course / "solutions" / "ex1" / "variants" / "wrong-port" / "expect.yaml").write_text("fails: [pod-label]\n")
    code, out = _run(capsys, "selftest", "ex1", "--exercises-dir", str(course / "exercises"), "--lang", "en")
    assert code == 1
    line = next(l for l in out.splitlines() if "wrong-port" in l)
    assert line.startswith("BAD") and "unexpected failures pod-port" in line and "should fail but passed pod-label" in line
    assert out.rstrip().endswith("selftest: FAILED")


def test_a_variant_naming_an_unknown_check_is_a_spec_error(capsys, tmp_path):
    course = _course(tmp_path)
    (course / "solutions" / "ex1" / "variants" / "wrong-port" / "expect.yaml").write_text("fails: [pod-colour]\n")
    code, out = _run(capsys, "selftest", "ex1", "--exercises-dir", str(course / "exercises"))
    assert code == 2 and "expect.yaml: fails: unknown check id(s) ['pod-colour']" in out
