"""The embedded cluster through the real ``kubernetes`` client and ``kubectl`` over real HTTP."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from grader.cluster import EmbeddedCluster

HTTPD = "registry.access.redhat.com/ubi8/httpd-24"


@pytest.fixture(scope="module")
def ec():
    with EmbeddedCluster() as c:
        yield c


@pytest.fixture(scope="module")
def kcfg(ec, tmp_path_factory):
    return ec.write_kubeconfig(tmp_path_factory.mktemp("ec") / "config", namespace="default")


@pytest.fixture(scope="module")
def core(kcfg):
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kcfg)))


@pytest.fixture(scope="module")
def apis(kcfg):
    return config.new_client_from_config(config_file=str(kcfg))


_n = iter(range(10_000))


@pytest.fixture
def ns(ec):
    name = f"t{next(_n)}"
    ec.create_namespace(name)
    return name


def pod(name, image=HTTPD, labels=None, **spec):
    c = {"name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]}
    c.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"containers": [c], **spec}}


def svc(name, selector, port=8080, target="http"):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "web", "port": port, "targetPort": target}]}}


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


# --- REST basics -----------------------------------------------------------------------------
def test_crud_and_conflicts(ec, core, ns):
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert cm.metadata.uid and cm.metadata.resource_version
    got = core.read_namespaced_config_map("c", ns)
    got.data["a"] = "2"
    core.replace_namespaced_config_map("c", ns, got)
    with pytest.raises(ApiException) as e:      # stale resourceVersion
        core.replace_namespaced_config_map("c", ns, got)
    assert e.value.status == 409 and status_of(e.value)["reason"] == "Conflict"
    core.patch_namespaced_config_map("c", ns, {"data": {"b": "3"}})
    assert core.read_namespaced_config_map("c", ns).data == {"a": "2", "b": "3"}
    # a list body is sent as application/json-patch+json (RFC 6902)
    core.patch_namespaced_config_map("c", ns, [{"op": "replace", "path": "/data/a", "value": "4"},
                                               {"op": "remove", "path": "/data/b"}])
    assert core.read_namespaced_config_map("c", ns).data == {"a": "4"}
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("c", ns, [{"op": "test", "path": "/data/a", "value": "5"}])
    assert e.value.status == 422
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})
    assert e.value.status == 409 and status_of(e.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(ns, {"metadata": {}})
    assert e.value.status == 422 and "name or generateName is required" in status_of(e.value)["message"]
    gen = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "x-"}})
    assert gen.metadata.name.startswith("x-") and len(gen.metadata.name) == 7
    core.delete_namespaced_config_map("c", ns)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("c", ns)
    body = status_of(e.value)
    assert e.value.status == 404 and body["message"] == 'configmaps "c" not found'
    assert body["kind"] == "Status" and body["details"] == {"name": "c", "kind": "configmaps"}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "c"}})
    assert e.value.status == 404 and "namespaces \"no-such-ns\" not found" in status_of(e.value)["message"]


@pytest.mark.parametrize("body", [
    {"metadata": {"name": ["a"]}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    {"metadata": {"name": "a"}, "spec": "junk"},
], ids=["name-is-a-list", "spec-is-a-string"])
def test_a_body_of_the_wrong_shape_is_a_bad_request_not_a_server_error(ec, ns, body):
    """A real API server's decoder refuses it with 400 before anything else runs (sent raw: the
    client's own models would refuse to send it)."""
    r = requests.post(f"{ec.url}/api/v1/namespaces/{ns}/pods", json={"apiVersion": "v1", "kind": "Pod", **body},
                      headers={"Authorization": f"Bearer {ec.token}"}, timeout=30)
    doc = r.json()
    assert r.status_code == 400 and doc["reason"] == "BadRequest", doc
    assert doc["message"].startswith('Pod in version "v1" cannot be handled as a Pod')


def test_selectors_and_pagination(core, ns):
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"c{i}", "labels": {"n": str(i), "even": str(i % 2 == 0).lower()}}})
    names = lambda r: [o.metadata.name for o in r.items]  # noqa: E731
    assert names(core.list_namespaced_config_map(ns, label_selector="even=true")) == ["c0", "c2", "c4", "c6"]
    assert names(core.list_namespaced_config_map(ns, label_selector="n in (1,3),even!=true")) == ["c1", "c3"]
    assert names(core.list_namespaced_config_map(ns, label_selector="n notin (0,1,2,3,4,5)")) == ["c6"]
    assert names(core.list_namespaced_config_map(ns, label_selector="!n")) == []
    assert names(core.list_namespaced_config_map(ns, field_selector="metadata.name=c5")) == ["c5"]
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(ns, label_selector="n", limit=3, _continue=token)
        seen += names(page)
        pages += 1
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(seen)
    assert seen == [f"c{i}" for i in range(7)] and pages == 3
    assert any(o.metadata.namespace == ns for o in core.list_config_map_for_all_namespaces().items)


def test_auth_401_403(ec, kcfg, tmp_path):
    def authorize(a):
        return a.verb in ("get", "list") and a.resource == "pods" and a.namespace == "default"
    ec.server.add_user("student-token", "system:serviceaccount:grader:grader", authorize)
    kc = ec.write_kubeconfig(tmp_path / "k", token="student-token")
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kc)))
    api.list_namespaced_pod("default")
    with pytest.raises(ApiException) as e:
        api.list_namespaced_pod("kube-system")
    assert e.value.status == 403
    assert status_of(e.value)["message"] == ('pods is forbidden: User "system:serviceaccount:grader:grader" cannot '
                                             'list resource "pods" in API group "" in the namespace "kube-system"')
    bad = client.CoreV1Api(config.new_client_from_config(config_file=str(ec.write_kubeconfig(tmp_path / "b", token="nope"))))
    with pytest.raises(ApiException) as e:
        bad.list_namespaced_pod("default")
    assert e.value.status == 401 and status_of(e.value)["reason"] == "Unauthorized"


def test_a_kubeconfig_written_over_an_old_one_is_its_owners_only_and_leaves_no_temp_file(ec, tmp_path):
    path = tmp_path / "kc"
    path.write_text("an old one")
    path.chmod(0o644)
    assert ec.write_kubeconfig(path, namespace="student") == path
    assert path.stat().st_mode & 0o777 == 0o600             # it holds a token
    assert config.new_client_from_config(config_file=str(path)).configuration.host.startswith("http")
    assert os.listdir(tmp_path) == ["kc"]                    # no temp file left beside it


def test_an_answer_comes_in_one_tls_record_as_from_a_go_server(apis, ns):
    """kube-apiserver (Go net/http) writes a small answer's head and body together: one TLS
    record, read whole by one ``recv``. The embedded server wrote them apart, which made every
    client (and the benchmarks) read twice."""
    cfg = apis.configuration
    url = urlsplit(cfg.host)
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    headers = {}
    apis.update_params_for_auth(headers, [], ["BearerToken"], "/", "GET", None)
    request = (f"GET /api/v1/namespaces/{ns} HTTP/1.1\r\nHost: {url.netloc}\r\n"
               f"Authorization: {headers['authorization']}\r\nAccept: application/json\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=url.hostname) as tls:
        tls.sendall(request)
        first = tls.recv(65536)
    head, sep, body = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and sep, first[:200]
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    assert len(body) == length > 0
    assert json.loads(body)["metadata"]["name"] == ns


# --- workloads -------------------------------------------------------------------------------
def test_pod_runs_and_failures(ec, core, ns):
    core.create_namespaced_pod(ns, pod("good"))
    core.create_namespaced_pod(ns, pod("typo", image="htppd"))
    core.create_namespaced_pod(ns, pod("cfg", container={"env": [{"name": "GREETING", "valueFrom": {
        "configMapKeyRef": {"name": "settings", "key": "GREETING"}}}]}))
    core.create_namespaced_pod(ns, pod("claim", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}]))
    core.create_namespaced_pod(ns, pod("unready", container={"readinessProbe": {"httpGet": {"path": "/", "port": 9090}}}))
    ec.settle()
    good = core.read_namespaced_pod("good", ns)
    assert good.status.phase == "Running" and good.status.pod_ip.startswith("10.12")
    assert {c.type: c.status for c in good.status.conditions}["Ready"] == "True"
    assert good.status.container_statuses[0].ready and good.spec.node_name in ("node-1", "node-2")
    typo = core.read_namespaced_pod("typo", ns).status
    assert typo.phase == "Pending" and typo.container_statuses[0].state.waiting.reason in ("ErrImagePull", "ImagePullBackOff")
    w = core.read_namespaced_pod("cfg", ns).status.container_statuses[0].state.waiting
    assert w.reason == "CreateContainerConfigError" and w.message == 'configmap "settings" not found'
    core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"OTHER": "x"}})
    ec.settle()
    w = core.read_namespaced_pod("cfg", ns).status.container_statuses[0].state.waiting
    assert w.message == f"couldn't find key GREETING in ConfigMap {ns}/settings"
    core.patch_namespaced_config_map("settings", ns, {"data": {"GREETING": "hi"}})
    ec.settle()
    assert core.read_namespaced_pod("cfg", ns).status.phase == "Running"
    claim = core.read_namespaced_pod("claim", ns).status
    assert claim.phase == "Pending" and claim.conditions[0].reason == "Unschedulable"
    assert 'persistentvolumeclaim "nope" not found' in claim.conditions[0].message
    unready = core.read_namespaced_pod("unready", ns).status
    assert unready.phase == "Running" and not unready.container_statuses[0].ready


def test_replication_controller_spreads_and_scales(ec, apis, core, ns):
    rc = {"metadata": {"name": "hello"}, "spec": {"replicas": 3, "selector": {"app": "hello"},
          "template": {"metadata": {"labels": {"app": "hello"}}, "spec": pod("x")["spec"]}}}
    core.create_namespaced_replication_controller(ns, rc)
    ec.settle()
    pods = core.list_namespaced_pod(ns, label_selector="app=hello").items
    assert len(pods) == 3 and {p.spec.node_name for p in pods} == {"node-1", "node-2"}
    assert all(p.metadata.name.startswith("hello-") and p.metadata.owner_references[0].kind == "ReplicationController" for p in pods)
    assert core.read_namespaced_replication_controller("hello", ns).status.ready_replicas == 3
    core.patch_namespaced_replication_controller("hello", ns, {"spec": {"replicas": 1}})
    ec.settle()
    assert len(core.list_namespaced_pod(ns, label_selector="app=hello").items) == 1
    bad = {"metadata": {"name": "bad"}, "spec": {"selector": {"app": "x"}, "template": {"metadata": {"labels": {"app": "y"}}, "spec": pod("x")["spec"]}}}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_replication_controller(ns, bad)
    assert e.value.status == 422 and "selector` does not match template `labels`" in status_of(e.value)["message"]
    core.delete_namespaced_replication_controller("hello", ns)
    ec.settle()
    assert core.list_namespaced_pod(ns, label_selector="app=hello").items == []
    apps = client.AppsV1Api(apis)
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod("x", image="nginx:1.25")["spec"]}}})
    ec.settle()
    d = apps.read_namespaced_deployment("web", ns)
    assert d.status.ready_replicas == 2 and d.status.available_replicas == 2
    assert len(apps.list_namespaced_replica_set(ns).items) == 1


def test_endpoints_follow_readiness(ec, apis, core, ns):
    core.create_namespaced_pod(ns, pod("a", labels={"app": "web"}))
    core.create_namespaced_pod(ns, pod("b", labels={"app": "web"}, container={"readinessProbe": {"tcpSocket": {"port": 9999}}}))
    core.create_namespaced_service(ns, svc("web", {"app": "web"}))
    ec.settle()
    s = core.read_namespaced_service("web", ns)
    assert s.spec.cluster_ip.startswith("172.30.") and s.spec.ports[0].target_port == "http"
    ep = core.read_namespaced_endpoints("web", ns)
    assert [a.target_ref.name for a in ep.subsets[0].addresses] == ["a"]
    assert [a.target_ref.name for a in ep.subsets[0].not_ready_addresses] == ["b"]
    assert ep.subsets[0].ports[0].port == 8080 and ep.subsets[0].ports[0].name == "web"
    slices = client.DiscoveryV1Api(apis).list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web").items
    assert sorted((e.target_ref.name, e.conditions.ready) for e in slices[0].endpoints) == [("a", True), ("b", False)]


def test_pvc_binding(ec, core, ns):
    core.create_persistent_volume({"metadata": {"name": f"pv-{ns}"}, "spec": {
        "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
        "hostPath": {"path": "/tmp/x"}}})
    core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "static"}, "spec": {
        "storageClassName": "manual", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "dyn"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}})
    core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "never"}, "spec": {
        "storageClassName": "gold", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    ec.settle()
    static = core.read_namespaced_persistent_volume_claim("static", ns)
    assert static.status.phase == "Bound" and static.spec.volume_name == f"pv-{ns}"
    assert core.read_persistent_volume(f"pv-{ns}").status.phase == "Bound"
    dyn = core.read_namespaced_persistent_volume_claim("dyn", ns)
    assert dyn.status.phase == "Bound" and dyn.spec.storage_class_name == "standard"
    assert dyn.spec.volume_name == f"pvc-{dyn.metadata.uid}" and dyn.status.capacity == {"storage": "2Gi"}
    assert core.read_namespaced_persistent_volume_claim("never", ns).status.phase == "Pending"


# --- routes, router, proxy -------------------------------------------------------------------
def _web_app(ec, core, apis, ns, with_page=True):
    volume = {}
    if with_page:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "page"}, "data": {"index.html": "<h1>Hello from CM</h1>"}})
        volume = {"volumes": [{"name": "html", "configMap": {"name": "page"}}],
                  "container": {"volumeMounts": [{"name": "html", "mountPath": "/var/www/html"}]}}
    core.create_namespaced_pod(ns, pod("web", labels={"app": "web"}, **volume))
    core.create_namespaced_service(ns, svc("web", {"app": "web"}))
    client.CustomObjectsApi(apis).create_namespaced_custom_object(
        "route.openshift.io", "v1", ns, "routes",
        {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "web"},
         "spec": {"to": {"kind": "Service", "name": "web"}}})
    ec.settle()


def test_route_router_and_proxy(ec, apis, core, ns):
    _web_app(ec, core, apis, ns)
    route = client.CustomObjectsApi(apis).get_namespaced_custom_object("route.openshift.io", "v1", ns, "routes", "web")
    host = f"web-{ns}.apps.sandbox.local"
    ing = route["status"]["ingress"][0]
    assert route["spec"]["host"] == host and ing["conditions"][0] == {**ing["conditions"][0], "type": "Admitted", "status": "True"}
    r = requests.get(f"http://{ec.router_address}/", headers={"Host": host + ":80"}, timeout=5)
    assert r.status_code == 200 and r.text == "<h1>Hello from CM</h1>"
    r = requests.get(f"http://{ec.router_address}/", headers={"Host": "unknown.apps.sandbox.local"}, timeout=5)
    assert r.status_code == 503 and "Application is not available" in r.text
    auth = {"Authorization": f"Bearer {ec.token}"}
    r = requests.get(f"{ec.url}/api/v1/namespaces/{ns}/services/web:web/proxy/", headers=auth, timeout=5)
    assert r.status_code == 200 and "Hello from CM" in r.text
    # the real client's proxy call too
    body = core.connect_get_namespaced_service_proxy_with_path("web:8080", ns, "index.html")
    assert "Hello from CM" in body
    core.create_namespaced_service(ns, svc("empty", {"app": "none"}))
    core.create_namespaced_service(ns, svc("wrongport", {"app": "web"}, target=9999))
    ec.settle()
    r = requests.get(f"{ec.url}/api/v1/namespaces/{ns}/services/empty/proxy/", headers=auth, timeout=5)
    assert r.status_code == 503 and r.json()["message"] == 'no endpoints available for service "empty"'
    r = requests.get(f"{ec.url}/api/v1/namespaces/{ns}/services/wrongport/proxy/", headers=auth, timeout=5)
    assert r.status_code == 502 and "connect: connection refused" in r.json()["message"]
    core.delete_namespaced_pod("web", ns)
    ec.settle()
    r = requests.get(f"http://{ec.router_address}/", headers={"Host": host}, timeout=5)
    assert r.status_code == 503


def test_default_pages(ec, apis, core, ns):
    core.create_namespaced_pod(ns, pod("hub", image="httpd:2.4", labels={"app": "hub"}, container={"ports": [{"containerPort": 80}]}))
    core.create_namespaced_service(ns, svc("hub", {"app": "hub"}, port=80, target=80))
    ec.settle()
    r = requests.get(f"{ec.url}/api/v1/namespaces/{ns}/services/hub/proxy/", headers={"Authorization": f"Bearer {ec.token}"}, timeout=5)
    assert r.status_code == 200 and "It works!" in r.text


# --- faults ----------------------------------------------------------------------------------
def test_fault_injection(ec, core):
    ec.server.reset_requests()
    ec.server.faults.fail_next(1, status=503)
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod("default", _request_timeout=5)
    assert e.value.status == 503 and status_of(e.value)["kind"] == "Status"
    core.list_namespaced_pod("default")
    ec.server.faults.latency = 0.2
    try:
        t0 = time.monotonic()
        core.list_namespaced_pod("default")
        assert time.monotonic() - t0 >= 0.2
    finally:
        ec.server.faults.latency = 0.0
    log = [r for r in ec.server.requests if r.resource == "pods"]
    assert [r.status for r in log][:2] == [503, 200] and log[0].verb == "list" and log[0].user == "system:admin"


def test_route_api_absent():
    with EmbeddedCluster(route_api=False) as c:
        auth = {"Authorization": f"Bearer {c.token}"}
        groups = requests.get(f"{c.url}/apis", headers=auth, timeout=5).json()["groups"]
        assert "route.openshift.io" not in {g["name"] for g in groups}
        assert requests.get(f"{c.url}/apis/route.openshift.io/v1/namespaces/default/routes", headers=auth, timeout=5).status_code == 404


# --- kubectl ---------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl(ec, ns, tmp_path):
    kc = ec.write_kubeconfig(tmp_path / "kc", namespace=ns)
    (tmp_path / "app.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\n  labels: {app: hello}\nspec:\n  containers:\n"
        f"  - name: web\n    image: {HTTPD}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: hello\n"
        "spec:\n  selector: {app: hello}\n  ports: [{port: 8080}]\n")

    def kubectl(*args):
        r = subprocess.run(["kubectl", "--kubeconfig", str(kc), *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert "pod/hello created" in kubectl("create", "-f", str(tmp_path / "app.yaml"))
    ec.settle()
    out = kubectl("get", "pods")
    assert out.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert out.split("\n")[1].split()[:3] == ["hello", "1/1", "Running"]
    assert json.loads(kubectl("get", "pod", "hello", "-o", "json"))["status"]["phase"] == "Running"
    assert "172.30." in kubectl("get", "svc")
    assert "pod/hello configured" in kubectl("apply", "-f", str(tmp_path / "app.yaml"))


def _subset(want, got, path="") -> list[str]:
    """Where ``got`` differs from ``want`` on the fields ``want`` sets (empty ones skipped)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {got!r}"]
        return [d for k, v in want.items() if v not in (None, {}, []) for d in _subset(v, got.get(k), f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r}"]
        return [d for i, (w, g) in enumerate(zip(want, got)) for d in _subset(w, g, f"{path}[{i}]")]
    return [] if want == got else [f"{path}: want {want!r}, got {got!r}"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_imperative_commands(ec, core, ns, tmp_path):
    """What students type in the lessons: kubectl's generators (sent as protobuf) create exactly
    the object `--dry-run=client -o json` shows; `run`, `expose`, `label`, `describe` work; an
    unsupported protobuf kind gets a clear 415."""
    kc = ec.write_kubeconfig(tmp_path / "kc", namespace=ns)

    def kubectl(*args, ok=True):
        r = subprocess.run(["kubectl", "--kubeconfig", str(kc), *args], capture_output=True, text=True, timeout=30)
        assert (r.returncode == 0) == ok, r.stderr
        return r.stdout + r.stderr

    generators = [
        ("configmap", "hello-config", ["--from-literal=GREETING=konnichiwa", "--from-literal=B=2"]),
        ("secret", "hello-secret", ["generic", "--from-literal=PASSWORD=s3cret"]),
        ("deployment", "web", [f"--image={HTTPD}", "--replicas=2", "--port=8080"]),
        ("service", "front", ["clusterip", "--tcp=80:8080"]),
        ("service", "edge", ["nodeport", "--tcp=80:http"]),
        ("namespace", f"{ns}-extra", []),
    ]
    for kind, name, args in generators:
        sub = [kind, args[0], name, *args[1:]] if kind in ("secret", "service") else [kind, name, *args]
        want = json.loads(kubectl("create", *sub, "--dry-run=client", "-o", "json"))
        kubectl("create", *sub)
        got = json.loads(kubectl("get", kind, name, "-o", "json"))
        want.pop("status", None)
        assert _subset(want, got) == [], (kind, name)
    assert base64.b64decode(core.read_namespaced_secret("hello-secret", ns).data["PASSWORD"]) == b"s3cret"
    kubectl("run", "hello", f"--image={HTTPD}", "--port=8080", "--labels=app=hello")
    kubectl("expose", "pod", "hello", "--port=80", "--target-port=8080")
    kubectl("label", "pod", "hello", "tier=web")
    assert core.read_namespaced_pod("hello", ns).metadata.labels == {"app": "hello", "tier": "web"}
    assert core.read_namespaced_service("hello", ns).spec.ports[0].target_port == 8080
    ec.settle()
    described = kubectl("describe", "service", "hello")     # reads EndpointSlices; used to panic
    assert "Endpoints:" in described and ":8080" in described
    assert "Status:" in kubectl("describe", "pod", "hello")
    want = json.loads(kubectl("create", "ingress", "www", "--rule=www.example.com/=hello:80", "--dry-run=client", "-o", "json"))
    kubectl("create", "ingress", "www", "--rule=www.example.com/=hello:80")
    got = json.loads(kubectl("get", "ingress", "www", "-o", "json"))
    assert _subset(want["spec"], got["spec"]) == [] and got["spec"]["rules"][0]["http"]["paths"][0]["backend"] == \
        {"service": {"name": "hello", "port": {"number": 80}}}
    out = kubectl("create", "role", "reader", "--verb=get", "--resource=pods", ok=False)
    assert "does not decode protobuf bodies for Role" in out and "kubectl create -f" in out


def test_protobuf_envelope_decoding():
    """The decoder on a hand-encoded ConfigMap, and refusals for what it does not know."""
    from grader.cluster import apiproto

    def field(n: int, payload: bytes) -> bytes:
        return bytes([n << 3 | 2, len(payload)]) + payload

    meta = field(1, b"cm") + field(11, field(1, b"app") + field(2, b"web"))
    raw = field(1, meta) + field(2, field(1, b"K") + field(2, b"v")) + bytes([4 << 3, 1])
    body = apiproto.MAGIC + field(1, field(1, b"v1") + field(2, b"ConfigMap")) + field(2, raw)
    assert apiproto.decode(body) == {"apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
                                     "metadata": {"name": "cm", "labels": {"app": "web"}}, "data": {"K": "v"}}
    with pytest.raises(apiproto.Unsupported):
        apiproto.decode(b"{}")
    with pytest.raises(apiproto.Unsupported):
        apiproto.decode(apiproto.MAGIC + field(1, field(1, b"rbac.authorization.k8s.io/v1") + field(2, b"Role")))
    with pytest.raises(apiproto.Unsupported):
        apiproto.decode(apiproto.MAGIC + bytes([1 << 3 | 2, 50]) + b"short")


def test_the_tls_port_leaves_nothing_in_the_temp_directory(tmp_path):
    """A process that ran the embedded cluster (every test worker, every `grade demo`) once left
    its self-signed key behind in the temp directory; a killed one still could."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: the embedded cluster serves plain HTTP only")
    script = ("from grader.cluster import EmbeddedCluster\n"
              "import socket, ssl\n"
              "with EmbeddedCluster() as c:\n"
              "    ctx = ssl.create_default_context(cadata=c.server.ca_pem)\n"
              "    host, port = c.server.https_url.removeprefix('https://').rsplit(':', 1)\n"
              "    with ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host) as s:\n"
              "        print(s.version() is not None)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"   # a verified TLS handshake
    assert list(tmp_path.iterdir()) == []
