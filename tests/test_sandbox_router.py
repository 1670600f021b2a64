"""Route access from the host (issue 11): ``grade sandbox --print-env`` names the router and a
curl line that reaches a route by its host name, and the page hints print that form."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.apply import apply_files, manifest_files, solution_dir
from tests.conftest import ctrl_c_works, run_grade

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandbox_env(tmp_path):
    """A running ``grade sandbox --print-env``: (its env lines as a dict, the curl comment line)."""
    kc = tmp_path / "sandbox.kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "grader", "sandbox", "--print-env", "--kubeconfig-out", str(kc),
                             "--pod-start-delay", "0", "--namespace", "student"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_works)
    try:
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(4)]
        env = dict(ln[len("export "):].split("=", 1) for ln in lines if ln.startswith("export "))
        yield env, next(ln for ln in lines if ln.startswith("# curl"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_print_env_names_the_router_and_a_working_curl(sandbox_env):
    env, curl = sandbox_env
    assert set(env) == {"KUBECONFIG", "GRADER_ROUTER", "GRADER_ROUTE_DOMAIN"}
    host, _, port = env["GRADER_ROUTER"].partition(":")
    assert host == "127.0.0.1" and port.isdigit()
    assert curl == f"# curl -i --connect-to ::{env['GRADER_ROUTER']} http://<route>-student.{env['GRADER_ROUTE_DOMAIN']}/"
    from grader.kube import Api
    api = Api(kubeconfig=env["KUBECONFIG"])
    try:
        assert apply_files(api, manifest_files(solution_dir("ex6")), "student") == []
    finally:
        api.close()
    url = curl[2:].replace("<route>", "hello").split()[-1]
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "--connect-to", f"::{env['GRADER_ROUTER']}", url],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and "Application is not available" not in r.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.returncode == 0 and "<html" in r.stdout.lower() and "Application is not available" not in r.stdout


def test_page_hint_sends_curl_to_the_router(cluster, api, fresh_ns, tmp_path):
    """A route whose page fails: the Try line goes through the sandbox router, as the student must."""
    from grader.selftest import cases
    from grader.settings import Settings
    case = next(c for c in cases(Settings(lang="en").exercise("ex6")) if c.name == "no-index-page")
    assert apply_files(api, list(case.files), fresh_ns) == []
    cluster.settle()
    kc = cluster.write_kubeconfig(tmp_path / "kc", namespace=fresh_ns)
    graded = run_grade("ex6", "--kubeconfig", str(kc), "--wait", "0", "--lang", "en")
    tries = [ln.strip() for ln in graded.stdout.splitlines() if "Try: curl" in ln]
    assert tries == [f"Try: curl -i --connect-to ::{cluster.router_address} http://hello-{fresh_ns}.apps.sandbox.local/"]
