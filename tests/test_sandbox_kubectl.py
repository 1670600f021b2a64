"""What a student types in the sandbox, answered as a real cluster answers: scale, get all, -o wide
columns, events in describe/get events (issue 11), with kubectl and the kubernetes client."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import needs_kubectl

HTTPD = "quay.io/centos7/httpd-24-centos7"
RC = f"""apiVersion: v1
kind: ReplicationController
metadata: {{name: hello-rc}}
spec:
  replicas: 2
  selector: {{app: hello}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      containers: [{{name: httpd, image: {HTTPD}, ports: [{{containerPort: 8080}}]}}]
"""


@pytest.fixture
def kubectl(cluster, fresh_ns, tmp_path):
    """kubectl against the sandbox in a fresh namespace: ``kubectl(*args, ok=True) -> CompletedProcess``."""
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=fresh_ns)

    def run(*args: str, ok: bool = True, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run(["kubectl", "--kubeconfig", str(kc), *args], capture_output=True, text=True,
                           timeout=60, input=stdin, env=env)
        if ok:
            assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
        return r
    run.ns = fresh_ns  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def k8s(kubeconfig):
    """A kubernetes ApiClient for the session's sandbox."""
    from kubernetes import config
    return config.new_client_from_config(config_file=str(kubeconfig))


def _header(out: str) -> list[str]:
    return out.splitlines()[0].split()


# --- scale -----------------------------------------------------------------------------------
@needs_kubectl()
def test_kubectl_scale_rc_and_deployment(kubectl, cluster):
    kubectl("apply", "-f", "-", stdin=RC)
    r = kubectl("scale", "rc", "hello-rc", "--replicas=3")
    assert "replicationcontroller/hello-rc scaled" in r.stdout
    kubectl("create", "deployment", "web", f"--image={HTTPD}")
    assert "deployment.apps/web scaled" in kubectl("scale", "deployment", "web", "--replicas=2").stdout
    cluster.settle()
    rc = json.loads(kubectl("get", "rc", "hello-rc", "-o", "json").stdout)
    assert rc["spec"]["replicas"] == 3 and rc["status"]["replicas"] == 3
    assert json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)["status"]["readyReplicas"] == 2
    described = kubectl("describe", "deploy", "web").stdout
    assert "ScalingReplicaSet" in described and "from 1 to 2" in described


def test_scale_subresource_is_an_autoscaling_v1_scale(k8s, cluster, fresh_ns):
    from kubernetes import client
    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    import yaml
    core.create_namespaced_replication_controller(fresh_ns, yaml.safe_load(RC))
    cluster.settle()
    s = core.read_namespaced_replication_controller_scale("hello-rc", fresh_ns)
    assert (s.kind, s.api_version, s.spec.replicas, s.status.replicas, s.status.selector) == \
        ("Scale", "autoscaling/v1", 2, 2, "app=hello")
    s = core.patch_namespaced_replication_controller_scale("hello-rc", fresh_ns, {"spec": {"replicas": 4}})
    assert s.spec.replicas == 4
    assert core.read_namespaced_replication_controller("hello-rc", fresh_ns).spec.replicas == 4
    apps.create_namespaced_deployment(fresh_ns, {"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web", "tier": "front"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                     "spec": {"containers": [{"name": "httpd", "image": HTTPD}]}}}})
    s = apps.replace_namespaced_deployment_scale("web", fresh_ns, {"metadata": {"name": "web"}, "spec": {"replicas": 3}})
    assert (s.spec.replicas, s.status.selector) == (3, "app=web,tier=front")
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment_scale("web", fresh_ns, {"spec": {"replicas": -1}})
    assert exc.value.status == 422 and "must be greater than or equal to 0" in json.loads(exc.value.body)["message"]
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"{cluster.url}/api/v1/namespaces/{fresh_ns}/pods/x/scale",
                                 headers={"Authorization": f"Bearer {cluster.token}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 404     # pods have no /scale


def test_discovery_lists_scale_and_categories(k8s):
    from kubernetes import client
    core = {r.name: r for r in client.CoreV1Api(k8s).get_api_resources().resources}
    apps = {r.name: r for r in client.AppsV1Api(k8s).get_api_resources().resources}
    for res in (core["replicationcontrollers/scale"], apps["deployments/scale"], apps["replicasets/scale"]):
        assert (res.group, res.version, res.kind, sorted(res.verbs)) == ("autoscaling", "v1", "Scale", ["get", "patch", "update"])
    assert core["pods"].categories == ["all"] and core["services"].categories == ["all"]
    assert core["replicationcontrollers"].categories == ["all"] and apps["deployments"].categories == ["all"]
    assert not core["configmaps"].categories and not core["endpoints"].categories


# --- get all and columns -----------------------------------------------------------------------
@needs_kubectl()
def test_kubectl_get_all_and_wide_columns(kubectl, cluster):
    kubectl("apply", "-f", "-", stdin=RC)
    kubectl("expose", "rc", "hello-rc", "--port=80", "--target-port=8080", "--name=hello")
    cluster.settle()
    out = kubectl("get", "all").stdout
    for name in ("pod/hello-rc-", "replicationcontroller/hello-rc", "service/hello"):
        assert name in out
    assert "endpoints/" not in out and "configmap/" not in out
    # printers.go: pods NAME READY STATUS RESTARTS AGE, then the wide ones after AGE
    assert _header(kubectl("get", "pods").stdout) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert kubectl("get", "pods", "-o", "wide").stdout.splitlines()[0].split() == \
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    wide = kubectl("get", "rc", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["httpd", HTTPD, "app=hello"]
    assert _header(kubectl("get", "svc", "-o", "wide").stdout) == \
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    kubectl("create", "configmap", "cfg", "--from-literal=a=b")
    assert _header(kubectl("get", "cm", "cfg").stdout) == ["NAME", "DATA", "AGE"]


# --- events ------------------------------------------------------------------------------------
@needs_kubectl()
def test_kubectl_events_in_describe_and_get(kubectl, cluster):
    kubectl("run", "bad", "--image=nosuch.example/none:1")
    kubectl("apply", "-f", "-", stdin=RC)
    cluster.settle()
    kubectl("scale", "rc", "hello-rc", "--replicas=1")
    cluster.settle()
    described = kubectl("describe", "pod", "bad").stdout
    events = described[described.index("Events:"):]
    for reason in ("Scheduled", "Pulling", "Failed", "BackOff"):
        assert reason in events
    assert "Error: ErrImagePull" in events and 'Back-off pulling image "nosuch.example/none:1"' in events
    assert events.index("Scheduled") < events.index("Pulling")   # in the order they happened
    rc = kubectl("describe", "rc", "hello-rc").stdout
    assert "SuccessfulCreate" in rc and "SuccessfulDelete" in rc and "Deleted pod: hello-rc-" in rc
    got = kubectl("get", "events", "--field-selector", "involvedObject.name=bad").stdout
    assert _header(got) == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert all("pod/bad" in line for line in got.splitlines()[1:]) and len(got.splitlines()) > 3


def test_pod_events_through_both_event_apis(k8s, cluster, fresh_ns):
    from kubernetes import client
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(fresh_ns, {"metadata": {"name": "web"}, "spec": {"containers": [
        {"name": "httpd", "image": HTTPD, "readinessProbe": {"httpGet": {"port": 9999, "path": "/"}}}]}})
    core.create_namespaced_pod(fresh_ns, {"metadata": {"name": "cfg"}, "spec": {
        "containers": [{"name": "httpd", "image": HTTPD}],
        "volumes": [{"name": "config", "configMap": {"name": "missing"}}]}})
    core.create_namespaced_persistent_volume_claim(fresh_ns, {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    cluster.settle()
    evs = core.list_namespaced_event(fresh_ns).items
    by = {(e.involved_object.name, e.reason): e for e in evs}
    assert by[("web", "Started")].message == "Started container httpd"
    assert by[("web", "Created")].message == "Created container: httpd"
    assert by[("web", "Started")].involved_object.field_path == "spec.containers{httpd}"
    assert by[("web", "Started")].source.component == "kubelet" and by[("web", "Started")].source.host
    assert by[("web", "Unhealthy")].type == "Warning" and "connection refused" in by[("web", "Unhealthy")].message
    assert by[("cfg", "FailedMount")].message == 'MountVolume.SetUp failed for volume "config" : configmap "missing" not found'
    assert by[("data", "ProvisioningSucceeded")].source.component == "persistentvolume-controller"
    new = client.EventsV1Api(k8s).list_namespaced_event(fresh_ns, field_selector="regarding.name=web").items
    assert {e.reason for e in new} >= {"Scheduled", "Pulling", "Pulled", "Created", "Started", "Unhealthy"}
    assert all(e.regarding.kind == "Pod" and e.note for e in new)
    core.delete_namespaced_pod("web", fresh_ns)
    cluster.settle()
    assert any(e.reason == "Killing" and e.message == "Stopping container httpd"
               for e in core.list_namespaced_event(fresh_ns, field_selector="involvedObject.name=web").items)


def test_events_per_namespace_are_bounded(k8s, cluster, fresh_ns):
    """A hostile loop of pods that never start cannot grow the event store without bound."""
    from grader.cluster.events import MAX_PER_NAMESPACE
    from kubernetes import client
    core = client.CoreV1Api(k8s)
    for i in range(MAX_PER_NAMESPACE // 3 + 5):
        core.create_namespaced_pod(fresh_ns, {"metadata": {"name": f"p{i}"}, "spec": {
            "containers": [{"name": "c", "image": "nosuch.example/none:1"}]}})
    cluster.settle()
    n = len(core.list_namespaced_event(fresh_ns).items)
    assert MAX_PER_NAMESPACE - 10 <= n <= MAX_PER_NAMESPACE
    assert len(client.EventsV1Api(k8s).list_namespaced_event(fresh_ns).items) <= MAX_PER_NAMESPACE


# --- OpenAPI -------------------------------------------------------------------------------------
def test_openapi_v3_schemas_come_from_the_client_models(cluster):
    import urllib.request
    req = urllib.request.Request(f"{cluster.url}/openapi/v3/api/v1", headers={"Authorization": f"Bearer {cluster.token}"})
    doc = json.loads(urllib.request.urlopen(req, timeout=30).read())
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]}
    assert (containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]) == ("name", "merge")
    assert "image" in schemas["io.k8s.api.core.v1.Container"]["properties"]
    assert "containers" in schemas["io.k8s.api.core.v1.PodSpec"]["required"]
    v2 = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{cluster.url}/openapi/v2", headers={"Authorization": f"Bearer {cluster.token}", "Accept": "application/json"}), timeout=30).read())
    assert v2["swagger"] == "2.0" and "io.k8s.api.core.v1.ReplicationController" in v2["definitions"]


@needs_kubectl()
def test_kubectl_explain(kubectl):
    out = kubectl("explain", "pod.spec.containers").stdout
    assert "FIELD: containers <[]Container>" in out and "image\t<string>" in out
    out = kubectl("explain", "deployment.spec.replicas").stdout
    assert "GROUP:      apps" in out and "replicas <integer>" in out
    out = kubectl("explain", "route.spec.tls").stdout
    assert "FIELD: tls <TLSConfig>" in out and "termination\t<string> -required-" in out


@needs_kubectl()
def test_kubectl_apply_still_merges_lists_by_key(kubectl):
    """Serving schemas does not change how kubectl apply patches: the PATCH operations declare no
    request body, so kubectl computes strategic merge patches from its compiled-in types even with
    KUBECTL_OPENAPIV3_PATCH; containers merge by name, and an env var another client added
    survives a re-apply that changes the image."""
    import os
    env = {**os.environ, "KUBECTL_OPENAPIV3_PATCH": "true"}
    manifest = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: httpd, image: IMAGE, env: [{name: A, value: "1"}]}]
"""
    kubectl("apply", "-f", "-", stdin=manifest.replace("IMAGE", HTTPD), env=env)
    kubectl("set", "env", "deployment/web", "B=2")
    assert "configured" in kubectl("apply", "-f", "-", stdin=manifest.replace("IMAGE", HTTPD + ":latest"), env=env).stdout
    c = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)["spec"]["template"]["spec"]["containers"]
    assert [x["image"] for x in c] == [HTTPD + ":latest"]
    assert {e["name"]: e["value"] for e in c[0]["env"]} == {"A": "1", "B": "2"}
