"""`grade --watch` in a child process: a student's run ends 0 once the solution is applied, Ctrl-C gives 130 with the last report; an instructor's /grades.json follows the class; --serve stays on loopback."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, ctrl_c_works, run_grade


class Child:
    """``python -m grader ARGS`` running, its stdout and stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "grader", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, preexec_fn=ctrl_c_works)
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, i=into: i.extend(iter(s.readline, "")), daemon=True).start()

    def wait_for(self, pattern: str, where: str = "out", seconds: float = 60) -> re.Match[str]:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for line in list(getattr(self, where)):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None and time.monotonic() > end - seconds + 1:
                break
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} never appeared; out={''.join(self.out)[-2000:]} err={''.join(self.err)[-2000:]}")

    def finish(self, seconds: float = 60) -> int | None:
        """The exit code, or None when it was still running after ``seconds`` (then killed)."""
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            time.sleep(0.1)   # the reader threads take the last lines

    @property
    def stdout(self) -> str:
        return "".join(self.out)


def apply_solution(cluster: Any, api: Any, exercise: str, namespace: str) -> None:
    from grader.apply import apply_files, manifest_files, solutions_of
    from grader.settings import resolve
    spec = resolve({"lang": "en"}).exercise(exercise)
    assert apply_files(api, manifest_files(solutions_of(spec)), namespace, kinds=cluster.kinds()) == []


def test_student_watch_exits_0_soon_after_the_solutions_are_applied(cluster, api, kubeconfig, fresh_ns, tmp_path):
    junit = tmp_path / "report.xml"
    child = Child("ex1", "ex4", "--watch", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--lang", "en",
                  "--junit", str(junit))
    try:
        child.wait_for(r"^watching: re-graded on every change")
        assert "FAIL" in child.stdout and "Score: 0/" in child.stdout   # the checklist, shown at once
        apply_solution(cluster, api, "ex1", fresh_ns)
        child.wait_for(r"^PASS +ex1 pod-exists")                        # a line per change, piped
        assert child.proc.poll() is None, "ex4 is not done yet"
        applied = time.monotonic()
        apply_solution(cluster, api, "ex4", fresh_ns)
        assert child.finish(60) == 0
        assert time.monotonic() - applied < 30
    finally:
        child.finish(5)
    final = child.stdout.rsplit("watching: re-graded", 1)[1]
    assert "FAIL" not in final.split("== ex1")[-1] and "Total: " in final
    assert junit.is_file() and 'failures="0"' in junit.read_text()


def test_watch_with_json_keeps_stdout_for_the_final_json(cluster, api, kubeconfig, fresh_ns):
    child = Child("ex1", "--watch", "--json", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--lang", "en")
    try:
        child.wait_for(r"^watching: re-graded on every change", "err")
        apply_solution(cluster, api, "ex1", fresh_ns)
        assert child.finish(60) == 0
    finally:
        child.finish(5)
    doc = json.loads(child.stdout)
    assert doc["score"] == doc["max_score"] == 10
    assert [c["outcome"] for c in doc["results"][0]["checks"]] == ["passed"] * 5


def test_ctrl_c_exits_130_with_the_last_report(kubeconfig, fresh_ns):
    child = Child("ex1", "--watch", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--lang", "en")
    try:
        child.wait_for(r"^watching: re-graded on every change")
        child.proc.send_signal(signal.SIGINT)
        assert child.finish(30) == 130
    finally:
        child.finish(5)
    last = child.stdout.rsplit("watching: re-graded on every change", 1)[1]
    assert "== ex1: " in last and "Score: 0/10" in last, "the last report is printed on the way out"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_grades_json_follows_a_new_namespace_and_its_work(cluster, api, kubeconfig, tmp_path):
    tag = os.urandom(2).hex()
    cluster.create_namespace(f"live{tag}-a")
    out = tmp_path / "out"
    child = Child("ex1", "--watch", "--kubeconfig", str(kubeconfig), "--namespace-pattern", f"*{tag}-*",
                  "--serve", "127.0.0.1:0", "--out", str(out), "--lang", "ja")
    try:
        url = child.wait_for(r"クラスのページ: (http://127\.0\.0\.1:\d+/)", "err").group(1)
        end = time.monotonic() + 30
        while f"live{tag}-a" not in _get(url + "grades.json")["namespaces"] and time.monotonic() < end:
            time.sleep(0.1)
        doc = _get(url + "grades.json")
        assert doc["namespaces"] == {f"live{tag}-a": {"ex1": {"score": 0, "max_score": 10, "errors": 0}}}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", doc["updated"])
        first = (out / f"live{tag}-a" / "results.json").stat().st_mtime_ns

        new = f"live{tag}-b"
        cluster.create_namespace(f"kube-{tag}-x")      # matches the pattern, but a system namespace
        cluster.create_namespace(new)
        apply_solution(cluster, api, "ex1", new)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            got = _get(url + "grades.json")["namespaces"].get(new)
            if got and got["ex1"]["score"] == 10:
                break
            time.sleep(0.1)
        assert _get(url + "grades.json")["namespaces"][new] == {"ex1": {"score": 10, "max_score": 10, "errors": 0}}
        assert f"kube-{tag}-x" not in _get(url + "grades.json")["namespaces"], "a system namespace is never followed"
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert new in page and "/class.json" in page
        students = {s["namespace"]: s for s in _get(url + "class.json")["students"]}
        assert students[f"live{tag}-a"]["exercises"]["ex1"]["first_failing"]
        assert not students[new]["exercises"]["ex1"]["first_failing"]
        assert json.loads((out / new / "results.json").read_text())["tests"]
        assert (out / f"live{tag}-a" / "results.json").stat().st_mtime_ns == first, \
            "only the changed namespace's reports are rewritten"
        assert new in (out / "gradebook.csv").read_text()
        # the page on disk is the served page's data, in the language asked for
        written = (out / "index.html").read_text()
        assert '<html lang="ja">' in written and new in written and "クラスの採点結果" in written
        child.proc.send_signal(signal.SIGINT)
        assert child.finish(30) == 130
    finally:
        child.finish(5)


@pytest.mark.parametrize("args", [
    ["--serve", "0.0.0.0:8080"],
    ["--serve", "192.0.2.7:8080"],
    ["--serve", "localhost"],
    ["--serve-public"],
], ids=["any-address", "lan-address", "no-port", "public-without-serve"])
def test_serve_refuses_what_it_should_with_one_line(args, tmp_path):
    kubeconfig = tmp_path / "no-such-kubeconfig"
    watch = [] if args == ["--serve-public"] else ["--watch"]
    r = run_grade("ex1", *watch, "--namespace-pattern", "s-*", *args, "--kubeconfig", str(kubeconfig), "--lang", "en")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("grade: --serve")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,said", [
    (["--resume", "--out", "reports"], "grade: --resume cannot be used with --watch"),
    (["--roster", "roster.csv", "--out", "reports"], "grade: --roster cannot be used with --watch"),
], ids=["resume", "roster"])
def test_watch_refuses_batch_only_options_with_one_line(args, said, tmp_path):
    r = run_grade("ex1", "--watch", "--namespace-pattern", "s-*", *args, "--kubeconfig",
                  str(tmp_path / "no-such-kubeconfig"), "--lang", "en")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(said), r.stderr
    assert "Traceback" not in r.stderr


def test_serve_public_allows_any_address():
    from grader.liveserve import parse_address
    assert parse_address("0.0.0.0:8080", public=True) == ("0.0.0.0", 8080)
    assert parse_address("[::1]:9000", public=False) == ("::1", 9000)
    assert parse_address("localhost:8080", public=False) == ("localhost", 8080)


def test_a_failing_probe_is_run_again_on_a_timer(cluster, api, fresh_ns, monkeypatch):
    """Without any event, a namespace whose probe check failed after asking for an HTTP answer
    (ex2 with the Service's targetPort wrong) has its probe checks run again, alone; one whose
    probe check failed before asking anything (an empty namespace) waits for an event."""
    from grader import live as live_mod
    from grader.apply import apply_files
    from grader.grading import probe_for
    from grader.runner import collect
    from grader.selftest import cases
    from grader.settings import resolve
    from grader.watch import LiveSnapshot

    settings = resolve({"lang": "en"})
    spec = settings.exercise("ex2")
    wrong_port = next(c for c in cases(spec) if c.name.endswith("wrong-port"))
    empty = f"{fresh_ns[:50]}-e"
    cluster.create_namespace(empty)
    assert apply_files(api, list(wrong_port.files), fresh_ns, kinds=cluster.kinds()) == []
    cluster.settle(timeout=30)
    monkeypatch.setattr(live_mod, "PROBE_EVERY", 0.2)
    snapshot = LiveSnapshot(api, [fresh_ns, empty])
    try:
        checks = collect([spec])
        probing = {c.check.id for c in checks.checks if "probe" in c.argnames}
        assert probing, "ex2 has a check that takes the probe"
        grades = live_mod._Grades(checks, snapshot, probe_for(api, settings), lambda c: True)
        grades.grade([fresh_ns, empty])
        failed = {c.check_id for c in grades.current[("ex2", fresh_ns)].checks if c.outcome.value != "passed"}
        assert probing <= failed
        assert set(grades.probe_due) == {fresh_ns}, "the empty namespace never asked for an answer"
        time.sleep(0.3)
        assert grades.due() == [fresh_ns]
        before = {c.check_id: c for c in grades.current[("ex2", fresh_ns)].checks}
        grades.probe_again([fresh_ns])
        after = {c.check_id: c for c in grades.current[("ex2", fresh_ns)].checks}
        assert before.keys() == after.keys(), "only the probe checks ran; the others are kept"
        assert {i for i in after if after[i] is not before[i]} == probing
        assert grades.gradings == 1 and fresh_ns in grades.probe_due

        classroom = live_mod._Grades(checks, snapshot, probe_for(api, settings), lambda c: True, probe_max=0.8)
        classroom.grade([fresh_ns])
        waits = []
        for _ in range(3):
            waits.append(round(classroom.probe_due[fresh_ns] - time.monotonic(), 1))
            classroom.probe_again([fresh_ns])
        assert waits[0] <= 0.2 and waits[-1] >= 0.6, f"a class backs off while nothing changes: {waits}"
    finally:
        snapshot.stop()


def test_piped_watch_prints_a_line_per_changed_check():
    from grader.live import _changed_lines
    from grader.i18n import Text
    from grader.results import CheckResult, ExerciseResult, Outcome

    def result(*outcomes: Outcome) -> ExerciseResult:
        return ExerciseResult("ex1", Text.same("Pod"), "alice", [
            CheckResult(f"c{i}", Text.same(f"check {i}"), 2.0, o) for i, o in enumerate(outcomes)])
    lines = _changed_lines([result(Outcome.FAILED, Outcome.FAILED)], [result(Outcome.PASSED, Outcome.FAILED)], "en")
    assert lines == ["PASS  ex1 c0: check 0  [2/4]"]


def test_watch_with_manifests_is_a_usage_error(tmp_path):
    r = run_grade("ex1", "--watch", "--manifests", str(tmp_path), "--lang", "en")
    assert r.returncode == 2 and "--watch" in r.stderr and "Traceback" not in r.stderr
