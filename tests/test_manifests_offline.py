"""`grade EX --manifests DIR` on hostile submissions: links, bombs and subfolders, through the real CLI."""
from __future__ import annotations

import json
import shutil

from grader.cli import main
from grader.apply import manifest_files, solution_dir
from tests.conftest import run_grade
from tests.test_manifest_limits import ANCHOR_BOMB, SECRET


def _grade(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["--json", "--wait", "0", "--lang", "en", *argv])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def _checks(doc: dict) -> dict:
    return {c["id"]: c for c in doc["results"][0]["checks"]}


def test_links_to_the_reference_solution_score_nothing(capsys, tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    for f in manifest_files(solution_dir("ex1")):
        (sub / f.name).symlink_to(f.resolve())
    code, doc = _grade(capsys, "ex1", "--manifests", str(sub))
    manifests = _checks(doc)["manifests"]
    assert manifests["outcome"] == "failed"
    assert f"{sub / 'pod.yaml'}:0: " in manifests["message"]["en"] and "symbolic link" in manifests["message"]["en"]
    assert doc["results"][0]["score"] == 0 and code == 1


def test_a_link_to_a_secret_outside_never_reaches_any_output(tmp_path):
    secret = tmp_path / "kubeconfig"
    secret.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {SECRET}\ndata:\n  token: {SECRET}\n"
                      f"this line is broken: [{SECRET}\n")
    sub = tmp_path / "submission"
    sub.mkdir()
    shutil.copy(solution_dir("ex1") / "pod.yaml", sub)
    (sub / "config.yaml").symlink_to(secret)
    (sub / "passwd.yaml").symlink_to("/etc/passwd")
    for fmt in ([], ["--json"]):
        proc = run_grade("ex1", "--manifests", str(sub), "--wait", "0", "--lang", "en", *fmt, cwd=tmp_path)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert SECRET not in proc.stdout + proc.stderr and "root:" not in proc.stdout + proc.stderr
    checks = _checks(json.loads(proc.stdout))
    assert "config.yaml:0: " in checks["manifests"]["message"]["en"]
    assert "passwd.yaml:0: " in checks["manifests"]["message"]["en"]
    assert all(c["outcome"] == "passed" for k, c in checks.items() if k != "manifests"), "the real file still counts"


def test_anchor_bomb_and_deep_nesting_are_a_failed_check_not_a_crash(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    shutil.copy(solution_dir("ex1") / "pod.yaml", sub)
    (sub / "bomb.yaml").write_text(ANCHOR_BOMB)
    (sub / "deep.yaml").write_text("[" * 100_000)
    (sub / "deep.json").write_text("[" * 100_000)
    proc = run_grade("ex1", "--manifests", str(sub), "--wait", "0", "--lang", "en", "--json", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = _checks(json.loads(proc.stdout))["manifests"]["message"]["en"]
    assert "bomb.yaml:10: " in message and "alias" in message
    assert "deep.yaml:1: " in message and "deep.json:1: " in message
    assert json.loads(proc.stdout)["results"][0]["score"] == 10


def test_subfolders_are_read_only_with_recursive(capsys, tmp_path):
    sub = tmp_path / "submission"
    (sub / "app").mkdir(parents=True)
    shutil.copy(solution_dir("ex1") / "pod.yaml", sub / "app")
    code, doc = _grade(capsys, "ex1", "--manifests", str(sub))
    manifests = _checks(doc)["manifests"]
    assert manifests["outcome"] == "failed" and "-R" in manifests["message"]["en"]
    assert doc["results"][0]["score"] == 0 and code == 1
    for flag in ("-R", "--recursive"):
        code, doc = _grade(capsys, "ex1", "--manifests", str(sub), flag)
        assert _checks(doc)["manifests"]["outcome"] == "passed"
        assert doc["results"][0]["score"] == 10 and code == 0
