"""The runner: checks collected once per run (one pytest session for a batch of many chunks), then
called with the grader's fixtures; what a check raises, prints or asks for, and the pages it lists."""
from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from grader.cli import main
from grader.errors import SpecError

SPEC = """\
id: tx
title: {ja: 実験, en: Trial}
instructions: {ja: Pod を作成, en: Create the pod}
params: {pod_name: hello}
checks:
  - id: pod-exists
    points: 1
    title: {ja: "Pod がある", en: "the pod exists"}
    hint: {ja: 作成してください, en: create it}
  - id: chatty
    points: 1
    title: {ja: "おしゃべり", en: "a check that prints"}
    hint: {ja: なし, en: none}
  - id: broken
    points: 1
    title: {ja: "壊れたチェック", en: "a check with a bug"}
    hint: {ja: なし, en: none}
"""
MODULE = """\
from grader.checks import need


def test_pod_exists(view, params):
    need(view, "Pod", params["pod_name"])


def test_chatty(ns, view, exercise):
    print("debugging output of", ns, exercise.id)
    assert view.namespace == ns


def test_broken(view):
    return {}["missing"]
"""


@pytest.fixture
def trial(tmp_path) -> Path:
    root = tmp_path / "exercises"
    (root / "tx").mkdir(parents=True)
    (root / "tx" / "exercise.yaml").write_text(SPEC, encoding="utf-8")
    (root / "tx" / "test_tx.py").write_text(MODULE, encoding="utf-8")
    return root


@pytest.fixture
def students(cluster) -> list[str]:
    names = [f"run-{secrets.token_hex(3)}" for _ in range(3)]
    for n in names:
        cluster.create_namespace(n)
    return names


def _sessions(monkeypatch) -> list[list[str]]:
    """Every pytest session the grader starts, by its arguments."""
    import grader.runner
    calls: list[list[str]] = []
    real = grader.runner.pytest.main

    def counting(args, plugins=None):  # type: ignore[no-untyped-def]
        calls.append(list(args))
        return real(args, plugins=plugins)
    monkeypatch.setattr(grader.runner.pytest, "main", counting)
    return calls


def test_a_batch_of_several_chunks_collects_the_checks_once(capsys, monkeypatch, kubeconfig, trial, students,
                                                              tmp_path):
    sessions = _sessions(monkeypatch)
    monkeypatch.setenv("GRADER_BATCH_CHUNK", "1")
    out = tmp_path / "out"
    code = main(["tx", "--exercises-dir", str(trial), "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet",
                 "--lang", "en", "--out", str(out), *(a for ns in students for a in ("-n", ns))])
    capsys.readouterr()
    assert code == 1                     # the pod is missing everywhere
    assert len(sessions) == 1, "three chunks, one collection"
    for ns in students:
        doc = json.loads((out / ns / "results.json").read_text())
        tests = {t["extra_data"]["check_id"]: t for t in doc["tests"]}
        assert tests["pod-exists"]["extra_data"]["outcome"] == "failed"
        assert tests["chatty"]["extra_data"]["outcome"] == "passed"
        # an error is left out of Gradescope's tests and kept in extra_data (reports.gradescope_json)
        assert "broken" not in tests and [u["check_id"] for u in doc["extra_data"]["unobserved"]] == ["broken"]


def test_unexpected_exception_is_an_error_in_one_line_and_prints_stay_out_of_json(capsys, monkeypatch, kubeconfig,
                                                                                   trial, students):
    sessions = _sessions(monkeypatch)
    code = main(["tx", "--exercises-dir", str(trial), "--kubeconfig", str(kubeconfig), "--wait", "0",
                 "--lang", "en", "--json", "-n", students[0]])
    printed, _ = capsys.readouterr()
    doc = json.loads(printed)            # a check's print() did not land in the JSON
    assert "debugging output" not in printed
    assert code == 2 or code == 1
    assert len(sessions) == 1
    checks = {c["id"]: c for c in doc["results"][0]["checks"]}
    assert checks["pod-exists"]["outcome"] == "failed" and checks["pod-exists"]["hint"]["en"] == "create it"
    assert checks["chatty"]["outcome"] == "passed"
    broken = checks["broken"]
    assert broken["outcome"] == "error" and broken["hint"] is None
    assert broken["message"]["en"] == \
        "internal grader error (KeyError at test_tx.py:14); please tell your instructor."
    assert "\n" not in broken["message"]["en"]


def test_a_check_asking_for_a_fixture_the_grader_does_not_give_is_a_spec_error(trial, api, fresh_ns):
    from grader.probes import Probe
    from grader.runner import grade
    from grader.settings import Settings
    from grader.snapshot import Snapshot

    (trial / "tx" / "test_tx.py").write_text(MODULE + "\n\ndef test_extra(view, tmp_path):\n    pass\n",
                                             encoding="utf-8")
    (trial / "tx" / "exercise.yaml").write_text(SPEC + """\
  - id: extra
    points: 1
    title: {ja: "余分", en: "asks for tmp_path"}
    hint: {ja: なし, en: none}
""", encoding="utf-8")
    spec = Settings(exercise_dirs=[trial]).exercise("tx")
    with pytest.raises(SpecError, match="tmp_path"):
        grade([spec], [fresh_ns], Snapshot(api, [fresh_ns]), Probe(api), wait=0)


def test_a_class_of_more_than_one_page_is_listed_in_pages_of_5000(api):
    """Fewer, bigger pages (a real API server honours any limit), still following `continue`."""
    from grader.kube import Api
    assert Api.PAGE == 5000
    assert api.list("Namespace", limit=1)   # a page of one still gathers every namespace
    assert len(api.list("Namespace", limit=1)) == len(api.list("Namespace"))
