"""kubectl logs and kubectl exec in the sandbox (issue 11): the log lines and refusals of a real
kubelet, and exec over the WebSocket channel protocol, through the kubernetes client's ``stream``
and kubectl."""
from __future__ import annotations

import subprocess
import threading
import time

import pytest
import yaml

from tests.conftest import needs_kubectl

HTTPD = "quay.io/centos7/httpd-24-centos7"
APP = f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg}}
data: {{GREETING: hello}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 2Gi}}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: hello-env, labels: {{app: hello}}}}
spec:
  containers:
  - name: web
    image: {HTTPD}
    ports: [{{containerPort: 8080}}]
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: cfg, key: GREETING}}}}}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    volumeMounts:
    - {{name: config, mountPath: /etc/config}}
    - {{name: creds, mountPath: /etc/creds}}
    - {{name: data, mountPath: /var/lib/data}}
  volumes:
  - {{name: config, configMap: {{name: cfg}}}}
  - {{name: creds, secret: {{secretName: creds}}}}
  - {{name: data, persistentVolumeClaim: {{claimName: data}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: hello}}
spec: {{selector: {{app: hello}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


@pytest.fixture
def app(cluster, fresh_ns):
    cluster.apply(list(yaml.safe_load_all(APP)), namespace=fresh_ns)
    cluster.settle()
    return fresh_ns


@pytest.fixture(scope="module")
def core(kubeconfig):
    from kubernetes import client, config
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _exec(core, ns: str, *argv: str) -> tuple[str, int]:
    """(stdout+stderr, exit code) of a command run through kubernetes.stream."""
    from kubernetes.stream import stream
    resp = stream(core.connect_get_namespaced_pod_exec, "hello-env", ns, command=list(argv),
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=30)
    out = resp.read_stdout() + resp.read_stderr()
    code = resp.returncode
    resp.close()
    return out, code


# --- exec through the kubernetes client ---------------------------------------------------------
def test_exec_reads_the_environment_and_mounted_files(core, app):
    out, code = _exec(core, app, "env")
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert code == 0 and env["GREETING"] == "hello" and env["POD_NAME"] == "hello-env"
    assert env["HELLO_SERVICE_PORT"] == "80" and env["KUBERNETES_SERVICE_HOST"]
    assert _exec(core, app, "cat", "/etc/config/GREETING") == ("hello", 0)
    assert _exec(core, app, "cat", "/etc/creds/password") == ("s3cret", 0)
    assert _exec(core, app, "printenv", "GREETING") == ("hello\n", 0)
    out, code = _exec(core, app, "df", "-h")
    assert code == 0 and any(line.endswith("/var/lib/data") and " 2G " in line for line in out.splitlines())
    assert _exec(core, app, "hostname") == ("hello-env\n", 0)
    out, code = _exec(core, app, "cat", "/etc/config/NOPE")
    assert (out, code) == ("cat: /etc/config/NOPE: No such file or directory\n", 1)


def test_exec_reaches_a_service_and_answers_like_a_shell(core, app):
    out, code = _exec(core, app, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://hello")
    assert (out, code) == ("403", 0)    # httpd-24's test page without an index.html
    out, code = _exec(core, app, "curl", "-s", "-S", "http://nosuch")
    assert code == 6 and "Could not resolve host: nosuch" in out
    out, code = _exec(core, app, "sh", "-c", "hostname && nosuchcommand")
    assert code == 127 and out == "hello-env\nsh: nosuchcommand: command not found\n"
    assert _exec(core, app, "sh", "-c", "false || echo fallback") == ("fallback\n", 0)


def test_exec_refusals(core, app, cluster):
    from kubernetes.client import ApiException
    from kubernetes.stream import stream
    core.create_namespaced_pod(app, {"metadata": {"name": "bad"}, "spec": {"containers": [
        {"name": "bad", "image": "nosuch.example/none:1"}]}})
    cluster.settle()
    with pytest.raises(ApiException) as exc:
        stream(core.connect_get_namespaced_pod_exec, "bad", app, command=["ls"], stderr=True, stdin=False,
               stdout=True, tty=False)
    # the client reports a refused handshake as status 0 with the answer in ``reason``
    assert "Handshake status 400" in exc.value.reason and 'container not found (\\"bad\\")' in exc.value.reason


# --- exec and logs through kubectl -----------------------------------------------------------------
@pytest.fixture
def kubectl(cluster, app, tmp_path):
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=app)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", "--kubeconfig", str(kc), *args], capture_output=True, text=True, timeout=60)
    run.kc = kc  # type: ignore[attr-defined]
    return run


@needs_kubectl()
def test_kubectl_exec(kubectl):
    r = kubectl("exec", "hello-env", "--", "cat", "/etc/config/GREETING")
    assert (r.returncode, r.stdout) == (0, "hello")
    r = kubectl("exec", "hello-env", "--", "ls", "/etc/config")
    assert (r.returncode, r.stdout) == (0, "GREETING\n")
    r = kubectl("exec", "hello-env", "--", "frobnicate")     # no shell: the runtime refuses (runc via CRI-O)
    assert r.returncode == 126 and 'exec: "frobnicate": executable file not found in $PATH' in r.stderr
    assert "command terminated with exit code 126" in r.stderr
    r = kubectl("exec", "hello-env", "--", "sh", "-c", "frobnicate")
    assert r.returncode == 127 and "sh: frobnicate: command not found" in r.stderr


@needs_kubectl()
def test_kubectl_logs(kubectl, cluster, app):
    cluster.settle()
    assert kubectl("get", "--raw", f"/api/v1/namespaces/{app}/services/hello:80/proxy/x.html").returncode != 0  # a 404 page
    r = kubectl("logs", "hello-env")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("AH00094: Command line: 'httpd -D FOREGROUND'" in ln for ln in lines)
    assert '"GET /x.html HTTP/1.1" 404' in lines[-1]
    r = kubectl("logs", "hello-env", "--tail=1")
    assert r.stdout.splitlines() == lines[-1:]
    r = kubectl("logs", "hello-env", "--previous")
    assert r.returncode == 1 and 'previous terminated container "web" in pod "hello-env" not found' in r.stderr
    kubectl("run", "bad", "--image=nosuch.example/none:1")
    cluster.settle()
    r = kubectl("logs", "bad")
    assert r.returncode == 1 and 'container "bad" in pod "bad" is waiting to start: trying and failing to pull image' in r.stderr


@needs_kubectl()
def test_kubectl_logs_follow_streams_until_the_pod_goes(kubectl, cluster, app):
    follow = subprocess.Popen(["kubectl", "--kubeconfig", str(kubectl.kc), "logs", "-f", "hello-env", "--tail=0"],
                              stdout=subprocess.PIPE, text=True)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(follow.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:   # requests until the stream shows one
        kubectl("get", "--raw", f"/api/v1/namespaces/{app}/services/hello:80/proxy/streamed.html")
        time.sleep(0.3)
    kubectl("delete", "pod", "hello-env", "--wait=false")
    assert follow.wait(timeout=30) == 0
    reader.join(timeout=10)
    assert got and '"GET /streamed.html HTTP/1.1" 404' in got[0]


def test_exec_ls_long_and_requests_reach_the_access_log(core, app):
    out, code = _exec(core, app, "ls", "-l", "/etc/config")
    assert code == 0 and out.splitlines() == ["total 0", "lrwxrwxrwx. 1 root root  15 Nov 28 00:00 GREETING -> ..data/GREETING"]
    out, code = _exec(core, app, "curl", "-s", "-o", "/dev/null", f"http://hello.{app}.svc.cluster.local/from-exec")
    assert code == 0
    log = core.read_namespaced_pod_log("hello-env", app, tail_lines=1)
    assert '"GET /from-exec HTTP/1.1" 404' in log and log.rstrip().endswith('"curl/7.29.0"')


def test_exec_output_is_bounded(core, app):
    """A hostile ``cat`` of one file thousands of times answers at most about a mebibyte."""
    out, code = _exec(core, app, "cat", *(["/etc/config/GREETING"] * 1000))
    assert code == 0 and out == "hello" * 1000
    big = "x" * 600_000
    core.patch_namespaced_config_map("cfg", app, {"data": {"BIG": big}})
    out, code = _exec(core, app, "cat", *(["/etc/config/BIG"] * 20))
    assert code == 0 and 1 << 20 <= len(out) <= (1 << 20) + 1


@needs_kubectl()
def test_port_forward_and_attach_say_what_to_use_instead(kubectl):
    """Not simulated, so answered with a 400 that names the way that works, not a 404 that looks broken."""
    r = kubectl("port-forward", "pod/hello-env", "18080:8080")
    assert r.returncode == 1 and "port-forward is not simulated by grade sandbox" in r.stderr
    assert "could not find the requested resource" not in r.stderr and "--connect-to" in r.stderr
    r = kubectl("attach", "hello-env")
    assert r.returncode == 1 and "kubectl logs -f" in r.stderr
