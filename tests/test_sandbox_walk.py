"""A new student's walk through ex1..ex7 with kubectl against a running ``grade sandbox`` (issue 11):
each command's exit code and key output as a real cluster answers them, then ``grade exN`` at full score."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, ctrl_c_works, needs_kubectl, run_grade

pytestmark = needs_kubectl()
HTTPD = "registry.access.redhat.com/ubi9/httpd-24"

# What a student writes from the instructions (`grade show exN`), file by file.
POD = f"""apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels:
    app: hello
spec:
  containers:
  - name: httpd
    image: {HTTPD}
    ports:
    - containerPort: 8080
"""
# ex6: the same pod with an index.html mounted at httpd's document root
POD_WITH_PAGE = POD + """    volumeMounts:
    - name: page
      mountPath: /var/www/html
  volumes:
  - name: page
    configMap:
      name: hello-page
"""
PVC = """apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 1Gi
"""
HELLO_DB = """apiVersion: v1
kind: Pod
metadata:
  name: hello-db
spec:
  containers:
  - name: redis
    image: registry.redhat.io/rhel9/redis-7
    volumeMounts:
    - name: data
      mountPath: /var/lib/data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: hello-data
"""
HELLO_ENV = f"""apiVersion: v1
kind: Pod
metadata:
  name: hello-env
spec:
  containers:
  - name: httpd
    image: {HTTPD}
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef:
          name: hello-config
          key: GREETING
    - name: PASSWORD
      valueFrom:
        secretKeyRef:
          name: hello-secret
          key: PASSWORD
"""
RC = f"""apiVersion: v1
kind: ReplicationController
metadata:
  name: hello-rc
spec:
  replicas: 3
  selector:
    app: hello-rc
  template:
    metadata:
      labels:
        app: hello-rc
    spec:
      containers:
      - name: httpd
        image: {HTTPD}
        ports:
        - containerPort: 8080
"""
ROUTE = """apiVersion: route.openshift.io/v1
kind: Route
metadata:
  name: {name}
spec:
  to:
    kind: Service
    name: {name}
"""
WEB = f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: httpd
        image: {HTTPD}
        ports:
        - containerPort: 8080
        volumeMounts:
        - name: page
          mountPath: /var/www/html
      volumes:
      - name: page
        configMap:
          name: web-page
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
""" + ROUTE.format(name="web")
DB = PVC.format(name="db-data") + """---
apiVersion: v1
kind: Pod
metadata:
  name: db
spec:
  containers:
  - name: postgresql
    image: registry.redhat.io/rhel9/postgresql-15
    env:
    - name: POSTGRESQL_ADMIN_PASSWORD
      valueFrom:
        secretKeyRef:
          name: db-secret
          key: password
    volumeMounts:
    - name: data
      mountPath: /var/lib/pgsql/data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: db-data
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """``grade sandbox --print-env`` running as the student starts it: its exported variables."""
    tmp = tmp_path_factory.mktemp("sandbox")
    proc = subprocess.Popen([sys.executable, "-m", "grader", "sandbox", "--print-env", "--kubeconfig-out",
                             str(tmp / "sandbox.kubeconfig"), "--namespace", "student"], cwd=tmp,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_works)
    try:
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(4)]
        yield dict(ln[len("export "):].split("=", 1) for ln in lines if ln.startswith("export "))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


class Student:
    """kubectl with the sandbox's kubeconfig, in a project of the student's own (``oc project`` is
    ``kubectl config set-context --current --namespace``), files written where they work."""

    def __init__(self, env: dict[str, str], work: Path, ns: str) -> None:
        self.work, self.ns, self.router = work, ns, env["GRADER_ROUTER"]
        self.kc = work / "kubeconfig"
        shutil.copy(env["KUBECONFIG"], self.kc)
        self.domain = env["GRADER_ROUTE_DOMAIN"]
        self("create", "namespace", ns, out=f"namespace/{ns} created")
        self("config", "set-context", "--current", f"--namespace={ns}", out='Context "sandbox" modified.')

    def __call__(self, *args: str, rc: int = 0, out: str | tuple[str, ...] = (), err: str = "",
                 stdin: str | None = None) -> str:
        """Run ``kubectl ARGS``; assert its exit code, that stdout holds each of ``out`` and stderr ``err``."""
        r = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=90, input=stdin,
                           cwd=self.work, env={**os.environ, "KUBECONFIG": str(self.kc)})
        shown = f"kubectl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert r.returncode == rc, shown
        for want in (out,) if isinstance(out, str) else out:
            assert want in r.stdout, shown
        assert err in r.stderr, shown
        return r.stdout

    def write(self, name: str, text: str) -> str:
        (self.work / name).write_text(text)
        return name

    def curl(self, host: str) -> subprocess.CompletedProcess:
        """The banner's curl line: route hosts reach the sandbox router through --connect-to."""
        if shutil.which("curl") is None:
            pytest.skip("curl is not installed")
        deadline = time.monotonic() + 30     # a router's 503 until the endpoints catch up, as on a cluster
        while True:
            r = subprocess.run(["curl", "-sS", "-i", "--max-time", "20", "--connect-to", f"::{self.router}",
                                f"http://{host}/"], capture_output=True, text=True, timeout=60)
            if not r.stdout.startswith("HTTP/1.1 503") or time.monotonic() > deadline:
                return r
            time.sleep(0.3)

    def grade(self, ex: str) -> str:
        r = run_grade(ex, "--kubeconfig", str(self.kc), "--lang", "en", "--wait", "60", timeout=240)
        score = re.search(r"Score: (\d+)/(\d+)", r.stdout)
        assert r.returncode == 0 and score and score[1] == score[2], r.stdout + r.stderr
        return r.stdout


@pytest.fixture
def student(sandbox, tmp_path, request) -> Student:
    return Student(sandbox, tmp_path, "walk-" + request.node.name.rsplit("_", 1)[-1])


def _hello_pod(k: Student, manifest: str = POD) -> None:
    k("create", "-f", k.write("pod.yaml", manifest), out="pod/hello created")
    k("wait", "--for=condition=Ready", "pod/hello", "--timeout=60s", out="pod/hello condition met")


def test_walk_ex1(student):
    k = student
    _hello_pod(k)
    shown = k("get", "pod", "hello", "--show-labels")
    assert shown.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    assert shown.split("\n")[1].split()[1:3] == ["1/1", "Running"] and "app=hello" in shown
    assert k("get", "pods", "-o", "wide").split("\n")[0].split() == \
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    k("describe", "pod", "hello", out=("Status:           Running", "Port:           8080/TCP",
                                       "Successfully assigned", f'Pulling image "{HTTPD}"', "Started container httpd"))
    k("get", "events", "--field-selector", "involvedObject.name=hello", out=("Scheduled", "pod/hello"))
    k("logs", "hello", out="resuming normal operations")
    assert k("exec", "hello", "--", "ls", "/var/www/html") == ""      # httpd's empty document root
    k("exec", "hello", "--", "frobnicate", rc=126, err="executable file not found in $PATH")
    k("explain", "pod.spec.containers.ports", out="containerPort")
    k.grade("ex1")


def test_walk_ex2(student):
    k = student
    _hello_pod(k)
    k("expose", "pod", "hello", "--port=80", "--target-port=8080", out="service/hello exposed")
    k("get", "service", "hello", out=("ClusterIP", "80/TCP"))
    k("get", "endpointslices", "-l", "kubernetes.io/service-name=hello", out=("IPv4", "8080"))
    k("describe", "service", "hello", out=("TargetPort:        8080/TCP", ":8080"))
    k("exec", "hello", "--", "curl", "-s", "http://hello/", out="Test Page")    # 403 page: no index.html yet
    # a throw-away client pod: runs to its end, kubectl prints its log and removes it
    k("run", "tmp", "--rm", "-i", "--restart=Never", "--image=registry.access.redhat.com/ubi9/ubi", "--",
      "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://hello/", out=("403", 'pod "tmp" deleted'))
    k("run", "typo", "--restart=Never", "--image=busybox", "--", "wget", "-qO-", "http://helo/", out="pod/typo created")
    k("wait", "--for=jsonpath={.status.phase}=Failed", "pod/typo", "--timeout=60s")
    k("logs", "typo", out="wget: bad address 'helo'")
    assert k("get", "pod", "typo").split("\n")[1].split()[1:3] == ["0/1", "Error"]
    k.grade("ex2")


def test_walk_ex3(student):
    k = student
    k("apply", "-f", k.write("pvc.yaml", PVC.format(name="hello-data")),
      out="persistentvolumeclaim/hello-data created")
    k("apply", "-f", k.write("db.yaml", HELLO_DB), out="pod/hello-db created")
    k("wait", "--for=condition=Ready", "pod/hello-db", "--timeout=60s")
    k("get", "pvc", "hello-data", out=("Bound", "1Gi", "RWO"))
    k("describe", "pod", "hello-db", out=("ClaimName:   hello-data", "/var/lib/data from data (rw)"))
    k("describe", "pvc", "hello-data", out=("Used By:       hello-db", "ProvisioningSucceeded"))
    df = k("exec", "hello-db", "--", "df", "-h", "/var/lib/data").splitlines()
    assert len(df) == 2 and df[1].endswith(" /var/lib/data"), df       # only the claim's filesystem
    k.grade("ex3")


def test_walk_ex4(student):
    k = student
    k("create", "configmap", "hello-config", "--from-literal=GREETING=Hello world",
      out="configmap/hello-config created")
    k("create", "secret", "generic", "hello-secret", "--from-literal=PASSWORD=s3cret",
      out="secret/hello-secret created")
    k("apply", "-f", k.write("env.yaml", HELLO_ENV), out="pod/hello-env created")
    k("wait", "--for=condition=Ready", "pod/hello-env", "--timeout=60s")
    k("describe", "configmap", "hello-config", out=("GREETING:", "Hello world"))
    k("describe", "secret", "hello-secret", out=("Type:  Opaque", "PASSWORD:  6 bytes"))
    k("set", "env", "pod/hello-env", "--list", out=("# GREETING from configmap hello-config, key GREETING",
                                                   "# PASSWORD from secret hello-secret, key PASSWORD"))
    assert "generateName" not in k("get", "configmap", "hello-config", "-o", "yaml")
    assert k("get", "secret", "hello-secret", "-o", "jsonpath={.data.PASSWORD}") == "czNjcmV0"
    assert k("exec", "hello-env", "--", "printenv", "GREETING") == "Hello world\n"
    assert k("exec", "hello-env", "--", "sh", "-c", 'echo "$GREETING / ${PASSWORD}"') == "Hello world / s3cret\n"
    assert k("exec", "hello-env", "--", "sh", "-c", "echo '$GREETING'") == "$GREETING\n"
    k.grade("ex4")


def test_walk_ex5(student):
    k = student
    k("create", "-f", k.write("rc.yaml", RC), out="replicationcontroller/hello-rc created")
    k("wait", "--for=jsonpath={.status.readyReplicas}=3", "rc/hello-rc", "--timeout=60s")
    assert k("get", "rc", "hello-rc").split("\n")[1].split()[:4] == ["hello-rc", "3", "3", "3"]
    k("get", "rc", "-o", "wide", out=("CONTAINERS", "IMAGES", "SELECTOR", "app=hello-rc"))
    k("expose", "rc", "hello-rc", "--port=80", "--target-port=8080", out="service/hello-rc exposed")
    wide = k("get", "pods", "-o", "wide")
    assert "node-1" in wide and "node-2" in wide
    k("get", "endpointslices", "-l", "kubernetes.io/service-name=hello-rc", out="8080")
    victim = k("get", "pods", "-l", "app=hello-rc", "-o", "name").split()[0]
    k("delete", victim, out=f'pod "{victim.split("/")[1]}" deleted')
    k("wait", "--for=jsonpath={.status.readyReplicas}=3", "rc/hello-rc", "--timeout=60s")
    assert victim not in k("get", "pods", "-l", "app=hello-rc", "-o", "name")
    k("describe", "rc", "hello-rc", out=("Replicas:     3 current / 3 desired", "Port:          8080/TCP",
                                         "SuccessfulCreate"))
    k("scale", "rc", "hello-rc", "--replicas=3", out="replicationcontroller/hello-rc scaled")
    k.grade("ex5")


def test_walk_ex6(student):
    k = student
    (k.work / "index.html").write_text("<h1>Hello</h1>\n")
    k("create", "configmap", "hello-page", "--from-file=index.html", out="configmap/hello-page created")
    _hello_pod(k, POD_WITH_PAGE)
    k("expose", "pod", "hello", "--port=80", "--target-port=8080", out="service/hello exposed")
    # kubectl has no Route generator: `expose service` makes a Service, as the instructions now say
    k("expose", "service", "hello", rc=1, err='services "hello" already exists')
    k("apply", "-f", k.write("route.yaml", ROUTE.format(name="hello")), out="route.route.openshift.io/hello created")
    host = f"hello-{k.ns}.{k.domain}"
    shown = k("get", "route", "hello")
    assert shown.split("\n")[0].split() == ["NAME", "HOST/PORT", "PATH", "SERVICES", "PORT", "TERMINATION", "WILDCARD"]
    assert host in shown
    k("describe", "route", "hello", out=("Type:                     Admitted", "Status:                   True"))
    page = k.curl(host)
    assert page.returncode == 0 and page.stdout.startswith("HTTP/1.1 200") and "<h1>Hello</h1>" in page.stdout, page
    k("logs", "hello", "--tail=1", out='"GET / HTTP/1.1" 200')
    k.grade("ex6")


def test_walk_ex7(student):
    k = student
    (k.work / "index.html").write_text("<h1>Hello from the capstone</h1>\n")
    k("create", "configmap", "web-page", "--from-file=index.html", out="configmap/web-page created")
    k("apply", "-f", k.write("web.yaml", WEB),
      out=("deployment.apps/web created", "service/web created", "route.route.openshift.io/web created"))
    k("create", "secret", "generic", "db-secret", "--from-literal=password=pgpass", out="secret/db-secret created")
    k("apply", "-f", k.write("db.yaml", DB), out=("persistentvolumeclaim/db-data created", "pod/db created"))
    k("rollout", "status", "deployment/web", "--timeout=60s", out='deployment "web" successfully rolled out')
    k("wait", "--for=condition=Ready", "pod/db", "--timeout=60s")
    k("get", "all", out=("pod/db", "service/web", "deployment.apps/web", "replicaset.apps/web-",
                         "route.route.openshift.io/web"))
    k("get", "route", "web", out=f"web-{k.ns}.{k.domain}")
    page = k.curl(f"web-{k.ns}.{k.domain}")
    assert page.returncode == 0 and "Hello from the capstone" in page.stdout, page
    k("exec", "db", "--", "printenv", "POSTGRESQL_ADMIN_PASSWORD", out="pgpass")
    k.grade("ex7")


def test_walk_typos(student):
    """A student's usual slips, refused with a real cluster's words (not silently taken, not an
    "openapi" failure): a misspelt field, a kind under the wrong apiVersion, a misspelt kind."""
    k = student
    k("apply", "-f", k.write("pod.yaml", POD.replace("containerPort", "containerport")), rc=1,
      err='error when creating "pod.yaml": Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
          'unknown field "spec.containers[0].ports[0].containerport"')
    k("create", "-f", k.write("rc.yaml", RC.replace("    spec:\n      containers:", "    spec:\n      container:")),
      rc=1, err='unknown field "spec.template.spec.container"')
    k("apply", "-f", k.write("wrong-group.yaml", POD.replace("apiVersion: v1", "apiVersion: apps/v1")), rc=1,
      err='no matches for kind "Pod" in version "apps/v1"')
    k("apply", "-f", k.write("wrong-kind.yaml", POD.replace("kind: Pod", "kind: Pods")), rc=1,
      err='no matches for kind "Pods" in version "v1"')
    assert k("get", "pods", "-o", "name") == ""      # nothing was created by any of them
    # without validation the field is dropped, and then the port has no number
    k("apply", "-f", "pod.yaml", "--validate=false", rc=1,
      err='The Pod "hello" is invalid: spec.containers[0].ports[0].containerPort: Required value')
    k("apply", "-f", k.write("policy.yaml", POD.replace("    ports:", "    imagepullpolicy: Never\n    ports:")),
      "--validate=false", out="pod/hello created")
    assert "imagepullpolicy" not in k("get", "pod", "hello", "-o", "jsonpath={.spec.containers[0]}")
