"""Which namespaces a class run grades: --namespace-pattern/--namespace-selector never pick the
cluster's own namespaces or the grader's, -n still can; a mistyped -n is an ERROR row with --out
and a usage error without it."""
from __future__ import annotations

import csv
import io
import json
import secrets

import pytest

from grader import commands
from grader.cli import main


def _graded(capsys, kubeconfig, tmp_path, *how: str) -> set[str]:
    out = tmp_path / secrets.token_hex(2)
    main(["ex1", "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet", "--out", str(out), *how])
    capsys.readouterr()
    return {d.name for d in out.iterdir() if d.is_dir()}


def test_selector_and_pattern_skip_system_and_own_namespaces(capsys, cluster, kubeconfig, tmp_path, monkeypatch):
    tag = secrets.token_hex(3)
    label = {"course": f"sys{tag}"}
    student = f"student-{tag}"
    own = f"grader-{tag}"
    # default and openshift themselves are shared by the session's cluster: the rule test below
    # covers their names.
    system = [f"kube-{tag}", f"openshift-{tag}"]
    for name in [student, own, *system]:
        cluster.create_namespace(name, label)
    own_file = tmp_path / "sa-namespace"
    own_file.write_text(own + "\n")
    monkeypatch.setattr(commands, "OWN_NAMESPACE_FILE", str(own_file))

    assert _graded(capsys, kubeconfig, tmp_path, "--namespace-selector", f"course=sys{tag}") == {student}
    assert _graded(capsys, kubeconfig, tmp_path, "--namespace-pattern", f"*{tag}*") == {student}
    # Named with -n, a system namespace is graded: the instructor asked for it by name.
    assert _graded(capsys, kubeconfig, tmp_path, "--namespace-selector", f"course=sys{tag}",
                   "-n", f"kube-{tag}") == {student, f"kube-{tag}"}


@pytest.mark.parametrize("name, system", [
    ("default", True), ("openshift", True), ("kube-system", True), ("kube-public", True),
    ("openshift-monitoring", True), ("grader-ns", True), ("openshift2", False), ("kubelet", False),
    ("student-default", False), ("defaults", False),
])
def test_system_namespace_rule(name, system):
    assert commands.system_namespace(name, "grader-ns") is system


def test_mistyped_n_with_out_is_an_error_row_and_the_rest_is_graded(capsys, cluster, kubeconfig, tmp_path):
    real = f"real-{secrets.token_hex(3)}"
    typo = f"studnet-{secrets.token_hex(3)}"
    cluster.create_namespace(real)
    out = tmp_path / "out"
    code = main(["ex1", "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet", "--lang", "en",
                 "--out", str(out), "-n", real, "-n", typo])
    printed = capsys.readouterr().out
    assert code == 1                                    # the real, empty namespace failed its checks
    assert "namespaces with errors: 1" in printed and typo in printed
    book = {r["namespace"]: r for r in csv.DictReader(io.StringIO((out / "gradebook.csv").read_text()))}
    assert (book[typo]["ex1"], book[typo]["errors"]) == ("", "ex1")     # an error, never a 0
    assert book[real]["ex1"] == "0"
    assert not (out / typo).exists()                    # no report: --resume grades it once it exists
    assert (out / real / "results.json").is_file()
    doc = json.loads((out / real / "results.json").read_text())
    assert doc["tests"]


def test_mistyped_single_n_with_out_says_the_namespace_does_not_exist(capsys, kubeconfig, tmp_path):
    typo = f"studnet-{secrets.token_hex(3)}"
    out = tmp_path / "out"
    code = main(["ex1", "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet", "--lang", "en",
                 "--out", str(out), "-n", typo])
    capsys.readouterr()
    assert code == 3                                    # only a grader-side error: nothing was seen
    book = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert [(r["namespace"], r["ex1"], r["errors"]) for r in book] == [(typo, "", "ex1")]


def test_mistyped_n_without_out_is_still_a_usage_error(capsys, kubeconfig):
    typo = f"studnet-{secrets.token_hex(3)}"
    code = main(["ex1", "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet", "--lang", "en", "-n", typo])
    err = capsys.readouterr().err
    assert code == 2 and f"namespace “{typo}” does not exist" in err
