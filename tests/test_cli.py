"""The `grade` command as a student and an LMS use it: output, languages, exit codes, reports."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from grader.cli import main
from grader.apply import apply_files, manifest_files, solution_dir
from tests.conftest import ctrl_c_works, run_grade, xsd_or_skip


def _grade(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def solved_ex1(cluster, api, fresh_ns) -> str:
    assert apply_files(api, manifest_files(solution_dir("ex1")), fresh_ns) == []
    cluster.settle()
    return fresh_ns


def test_solution_passes_with_exit_0(capsys, kubeconfig, solved_ex1):
    code, out, err = _grade(capsys, "ex1", "--kubeconfig", str(kubeconfig), "-n", solved_ex1, "--wait", "0")
    assert code == 0, err
    assert out.count("PASS") == 5 and "FAIL" not in out
    assert "Score: 10/10" in out


def test_empty_namespace_fails_with_every_hint(capsys, kubeconfig, fresh_ns):
    code, out, _ = _grade(capsys, "ex1", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--wait", "0")
    assert code == 1
    assert out.count("FAIL") == 5 and out.count("Hint:") == 5 and out.count("Try:") == 5
    assert "oc get pods -n " + fresh_ns in out
    assert "Score: 0/10" in out


def test_current_namespace_comes_from_the_kubeconfig_context(capsys, cluster, solved_ex1, tmp_path):
    kc = cluster.write_kubeconfig(tmp_path / "kc", namespace=solved_ex1)
    code, out, _ = _grade(capsys, "ex1", "--kubeconfig", str(kc), "--wait", "0")
    assert code == 0 and solved_ex1 in out


def test_no_current_namespace_is_exit_3(capsys, cluster, tmp_path):
    import yaml
    kc = cluster.write_kubeconfig(tmp_path / "kc")
    doc = yaml.safe_load(kc.read_text())
    del doc["contexts"][0]["context"]["namespace"]
    kc.write_text(yaml.safe_dump(doc))
    code, _, err = _grade(capsys, "ex1", "--kubeconfig", str(kc), "--wait", "0")
    assert code == 3
    assert "oc project" in err and len(err.strip().splitlines()) == 1


def test_japanese_output(capsys, kubeconfig, fresh_ns, monkeypatch):
    code, out, _ = _grade(capsys, "ex1", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--wait", "0", "--lang", "ja")
    assert code == 1
    assert "ヒント:" in out and "得点: 0/10" in out and "が存在する" in out
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    code, out, _ = _grade(capsys, "ex1", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "--wait", "0")
    assert "得点: 0/10" in out


def test_json_output(capsys, kubeconfig, solved_ex1):
    code, out, _ = _grade(capsys, "ex2", "--kubeconfig", str(kubeconfig), "-n", solved_ex1, "--wait", "0", "--json")
    doc = json.loads(out)
    assert code == 1  # the pod is there, the service is not
    (res,) = doc["results"]
    by_id = {c["id"]: c for c in res["checks"]}
    assert by_id["service-exists"]["outcome"] == "failed" and by_id["service-exists"]["hint"]["ja"]
    assert res["score"] == sum(c["earned"] for c in res["checks"]) == 0
    assert res["max_score"] == 10


def test_junit_report_validates(capsys, kubeconfig, solved_ex1, tmp_path):
    schema = xsd_or_skip()
    from lxml import etree
    path = tmp_path / "r.xml"
    code, _, _ = _grade(capsys, "ex1", "ex2", "--kubeconfig", str(kubeconfig), "-n", solved_ex1, "--wait", "0",
                        "--junit", str(path))
    assert code == 1
    doc = etree.parse(str(path))
    schema.assertValid(doc)
    suites = doc.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"ex1@{solved_ex1}", f"ex2@{solved_ex1}"]
    prefix = f"ex2@{solved_ex1}."          # two suites in one file: property names carry the suite's
    props = {p.get("name").removeprefix(prefix): p.get("value") for p in suites[1].find("properties")}
    assert props["score"] == "0" and props["max_score"] == "10" and props["exercise"] == "ex2"
    assert len(suites[1].findall("testcase/failure")) == 5 and not suites[0].findall("testcase/failure")


def test_forbidden_reads_are_errors_not_failures(capsys, cluster, solved_ex1, tmp_path):
    """An account that may not list pods: the grader says it could not see, and costs no points."""
    def authorize(attrs):
        return attrs.resource != "pods"
    cluster.server.add_user("no-pods-token", "no-pods", authorize)
    kc = cluster.write_kubeconfig(tmp_path / "kc", namespace=solved_ex1, token="no-pods-token")
    path = tmp_path / "r.xml"
    code, out, _ = _grade(capsys, "ex1", "--kubeconfig", str(kc), "--wait", "0", "--junit", str(path))
    assert code == 3
    assert out.count("ERROR") >= 5 and "FAIL" not in out
    xml = path.read_text()
    assert xml.count("<error") == 5 and "<failure" not in xml


def test_eventual_consistency_is_waited_for(capsys, tmp_path):
    """Pods take 4 s to start: --wait re-observes until they are Ready; --wait 0 does not.

    Both runs must make their first observation before the pod starts: 4 s leaves a busy machine
    more than 3x the time they take (under a second)."""
    from grader.kube import Api
    from grader.cluster import EmbeddedCluster
    with EmbeddedCluster(pod_start_delay=4.0) as slow:
        kc = slow.write_kubeconfig(tmp_path / "kc", namespace="default")
        api = Api(kubeconfig=str(kc))
        apply_files(api, manifest_files(solution_dir("ex1")), "default")
        code, out, _ = _grade(capsys, "ex1", "--kubeconfig", str(kc), "--wait", "0")
        assert code == 1 and ("ContainerCreating" in out or "Pending" in out), out
        code, out, _ = _grade(capsys, "ex1", "--kubeconfig", str(kc), "--wait", "20", "--json")
        assert code == 0
        ready = next(c for c in json.loads(out)["results"][0]["checks"] if c["id"] == "pod-ready")
        assert ready["attempts"] > 1
        api.close()


def test_internal_error_in_a_check_is_an_error(capsys, kubeconfig, fresh_ns, tmp_path):
    import shutil
    ex = tmp_path / "ex1"
    shutil.copytree(solution_dir("ex1").parents[1] / "exercises" / "ex1" if (solution_dir("ex1").parents[1] / "exercises").is_dir()
                    else Path(__file__).resolve().parents[1] / "exercises" / "ex1", ex)
    mod = ex / "test_ex1.py"
    mod.write_text(mod.read_text().replace('def test_pod_port(view, params):\n',
                                           'def test_pod_port(view, params):\n    1 / 0\n'))
    code, out, _ = _grade(capsys, "ex1", "--exercises-dir", str(tmp_path), "--kubeconfig", str(kubeconfig),
                          "-n", fresh_ns, "--wait", "0")
    assert code == 1
    assert "internal grader error (ZeroDivisionError at test_ex1.py:" in out
    assert out.count("FAIL") == 4 and out.count("ERROR") == 1


@pytest.mark.parametrize("argv,words", [
    (["ex99"], "unknown exercise"),
    (["ex1", "--wait", "soon"], "--wait"),
    (["ex1", "--lang", "fr"], "--lang"),
    ([], "usage"),
])
def test_usage_errors_exit_2(capsys, argv, words):
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2
    assert words in err


def test_unreachable_cluster_exit_3_names_the_server(tmp_path, cluster):
    import yaml
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = cluster.write_kubeconfig(tmp_path / "kc")
    doc = yaml.safe_load(kc.read_text())
    doc["clusters"][0]["cluster"] = {"server": f"http://127.0.0.1:{port}"}
    kc.write_text(yaml.safe_dump(doc))
    proc = run_grade("ex1", "--kubeconfig", str(kc), timeout=60)
    assert proc.returncode == 3
    assert f"127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_token_exit_3(capsys, cluster, tmp_path):
    kc = cluster.write_kubeconfig(tmp_path / "kc", token="not-a-token")
    code, _, err = _grade(capsys, "ex1", "--kubeconfig", str(kc), "--wait", "0")
    assert code == 3 and "401" in err and "oc login" in err


def test_missing_kubeconfig_exit_3(capsys, tmp_path):
    code, _, err = _grade(capsys, "ex1", "--kubeconfig", str(tmp_path / "nope"))
    assert code == 3 and str(tmp_path / "nope") in err


def test_list_and_show(capsys):
    code, out, _ = _grade(capsys, "list", "--lang", "en")
    assert code == 0 and out.splitlines()[0].startswith("ex1") and "Create a Pod" in out
    code, out, _ = _grade(capsys, "show", "ex2", "--lang", "ja")
    assert code == 0 and "セレクター" in out and "[2]" in out


def test_demo_runs_as_a_new_user_would(tmp_path):
    proc = run_grade("demo", "ex1", "--lang", "en", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Score: 10/10" in proc.stdout


def test_manifests_are_graded_offline(capsys, tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "pod.yaml").write_text((solution_dir("ex1") / "pod.yaml").read_text())
    (sub / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: [oops\n")
    (sub / "odd.yaml").write_text("apiVersion: v1\nkind: Gizmo\nmetadata:\n  name: x\n")
    code, out, _ = _grade(capsys, "ex1", "--manifests", str(sub), "--json")
    doc = json.loads(out)
    checks = {c["id"]: c for c in doc["results"][0]["checks"]}
    assert checks["manifests"]["outcome"] == "failed"
    assert "broken.yaml:5: YAML syntax error at line 5" in checks["manifests"]["message"]["en"]
    assert "odd.yaml:1" in checks["manifests"]["message"]["en"] and "Gizmo" in checks["manifests"]["message"]["en"]
    assert all(c["outcome"] == "passed" for k, c in checks.items() if k != "manifests")
    assert doc["results"][0]["score"] == 10 and code == 1


def test_sandbox_for_practice_then_grade(tmp_path):
    """`grade sandbox` as a student without a cluster uses it: a kubeconfig appears, kubectl (or the
    client) creates the pod, `grade ex1 --kubeconfig` passes, Ctrl-C stops it."""
    import os
    import shutil
    import signal
    import time
    kc = tmp_path / "sandbox.kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "grader", "sandbox", "--kubeconfig-out", str(kc),
                             "--pod-start-delay", "0.2", "--lang", "en"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_works)
    try:
        deadline = time.monotonic() + 30
        while not kc.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert kc.exists(), proc.stderr.read() if proc.poll() is not None else "no kubeconfig"
        pod = solution_dir("ex1") / "pod.yaml"
        if shutil.which("kubectl"):
            done = subprocess.run(["kubectl", "--kubeconfig", str(kc), "create", "-f", str(pod)],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        else:
            from grader.kube import Api
            api = Api(kubeconfig=str(kc))
            assert apply_files(api, [pod], "student") == []
            api.close()
        graded = run_grade("ex1", "--kubeconfig", str(kc), "--wait", "20", "--lang", "en", cwd=tmp_path)
        assert graded.returncode == 0, graded.stdout + graded.stderr
        assert "(namespace: student)" in graded.stdout and "Score: 10/10" in graded.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"export KUBECONFIG={kc}" in out


def test_a_terminal_is_told_while_failing_checks_are_re_observed(api, fresh_ns):
    """The runner reports (failing checks, seconds left) before each re-observation, then (0, 0)."""
    from grader.probes import Probe
    from grader.runner import grade
    from grader.settings import Settings
    from grader.snapshot import Snapshot
    calls = []
    spec = Settings().exercise("ex1")
    # 2 s: the first observation must end inside the window for a re-observation to follow (it
    # takes a tenth of that on a busy machine)
    results = grade([spec], [fresh_ns], Snapshot(api, [fresh_ns]), Probe(api), wait=2.0,
                    waiting=lambda n, left: calls.append((n, left)))
    assert calls and calls[0][0] == 5 and 0 < calls[0][1] <= 2.0, calls
    assert calls[-1] == (0, 0.0)
    assert results[0].checks[0].attempts >= 2


def test_in_cluster_config_uses_the_service_account(cluster, solved_ex1, tmp_path, monkeypatch):
    """In a pod (KUBERNETES_SERVICE_HOST set, no kubeconfig) the grader uses the mounted service
    account: its token, CA and namespace, as `deploy/job.yaml` relies on."""
    from urllib.parse import urlsplit

    from grader.grading import grade_on
    from grader.kube import Api
    from grader.settings import Settings
    if not cluster.server.https_url:
        pytest.skip("the embedded cluster has no TLS here (no openssl), and in-cluster config needs it")
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(cluster.token)
    (sa / "ca.crt").write_text(cluster.server.ca_pem)
    (sa / "namespace").write_text(solved_ex1)
    url = urlsplit(cluster.server.https_url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", url.hostname)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(url.port))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    api = Api(serviceaccount_dir=str(sa))
    try:
        assert api.source == "in-cluster" and api.namespace == solved_ex1
        assert api.server == cluster.server.https_url.rstrip("/")
        (res,) = grade_on(api, Settings(lang="en", wait=0.0), [Settings().exercise("ex1")], [api.namespace],
                          student=True, wait=0.0).results
        assert res.score == res.max_score == 10
    finally:
        api.close()
