"""The embedded cluster's EndpointSlices, graceful pod deletion and named target ports, read back
over real HTTP with the real clients, compared with what kube-controller-manager writes."""
from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
import requests
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from grader.cluster import EmbeddedCluster

HTTPD = "registry.access.redhat.com/ubi8/httpd-24"     # listens on 8080
LONG_GRACE = 45                                          # longer than any wait below


def until(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (there is no settle while a pod terminates
    for ``LONG_GRACE`` seconds, since settle waits out the grace period too)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def web_pod(name: str, labels: dict, image: str = HTTPD, port: int = 8080, port_name: str = "http",
            **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "web", "image": image,
                                     "ports": [{"containerPort": port, "name": port_name}]}], **spec}}


def web_service(name: str, selector: dict, port: int = 80, target: Any = "http", **extra: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": selector, "ports": [{"name": "web", "port": port, "targetPort": target}], **extra}}


def slice_endpoints(api, ns: str, service: str) -> dict[str, dict]:
    """Pod name -> its endpoint, over every slice of the service."""
    out = {}
    for es in api.list("EndpointSlice", ns, label_selector=f"kubernetes.io/service-name={service}"):
        for ep in es.get("endpoints") or []:
            out[ep["targetRef"]["name"]] = {**ep, "_ports": es.get("ports")}
    return out


def endpoints_pods(api, ns: str, service: str) -> tuple[set[str], set[str]]:
    """(ready, not ready) pod names in the service's v1 Endpoints."""
    ep = api.get("Endpoints", service, ns)
    ready = {a["targetRef"]["name"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
    not_ready = {a["targetRef"]["name"] for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []}
    return ready, not_ready


@pytest.fixture(scope="module")
def core(kubeconfig):
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


@pytest.fixture(scope="module")
def slow():
    """A cluster that honours a pod's grace period up to a minute, so Terminating can be observed
    at leisure on a loaded machine (the shared one ends it after at most 2 s)."""
    with EmbeddedCluster(max_grace=60) as c:
        yield c


@pytest.fixture(scope="module")
def slow_clients(slow, tmp_path_factory):
    from grader.kube import Api
    path = slow.write_kubeconfig(tmp_path_factory.mktemp("slow") / "config")
    api = Api(kubeconfig=str(path))
    yield api, client.CoreV1Api(config.new_client_from_config(config_file=str(path)))
    api.close()


@pytest.fixture
def slow_ns(slow, slow_clients, request):
    """A namespace on the slow cluster, deleted afterwards so its pods' grace periods end with it."""
    name = request.node.name.replace("_", "-")[5:40].strip("-")
    slow.create_namespace(name)
    yield name
    slow_clients[0].delete_namespace(name)


# --- slices -----------------------------------------------------------------------------------
def test_slice_conditions_follow_readiness(cluster, api, fresh_ns):
    """Not ready until the page exists (the readiness probe gets 403 on an empty docroot), then
    ready; shaped like the reconciler's slice throughout."""
    ns = fresh_ns
    probe = {"readinessProbe": {"httpGet": {"path": "/", "port": "http"}}}
    pod = web_pod("page", {"app": "page"}, volumes=[{"name": "html", "configMap": {"name": "html", "optional": True}}])
    pod["spec"]["containers"][0].update(probe, volumeMounts=[{"name": "html", "mountPath": "/var/www/html"}])
    api.create(pod, ns)
    svc = api.create(web_service("page", {"app": "page"}), ns)
    cluster.settle()
    ep = slice_endpoints(api, ns, "page")["page"]
    assert ep["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert endpoints_pods(api, ns, "page") == (set(), {"page"})

    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "html"},
                "data": {"index.html": "<h1>hi</h1>"}}, ns)
    cluster.settle()
    (es,) = api.list("EndpointSlice", ns, label_selector="kubernetes.io/service-name=page")
    (ep,) = es["endpoints"]
    assert ep["conditions"] == {"ready": True, "serving": True, "terminating": False}
    pod = api.get("Pod", "page", ns)
    assert ep["addresses"] == [pod["status"]["podIP"]] and ep["nodeName"] == pod["spec"]["nodeName"]
    assert ep["targetRef"] == {"kind": "Pod", "namespace": ns, "name": "page", "uid": pod["metadata"]["uid"]}
    assert es["addressType"] == "IPv4"
    assert es["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert es["metadata"]["generateName"] == "page-" and es["metadata"]["name"].startswith("page-")
    assert es["metadata"]["labels"] == {"tier": "front", "kubernetes.io/service-name": "page",
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    (owner,) = es["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "v1", "kind": "Service", "name": "page", "uid": svc["metadata"]["uid"],
                     "controller": True, "blockOwnerDeletion": True}
    assert endpoints_pods(api, ns, "page") == ({"page"}, set())


def test_service_without_pods_keeps_an_empty_slice(cluster, api, fresh_ns):
    api.create(web_service("lonely", {"app": "nobody"}), fresh_ns)
    cluster.settle()
    (es,) = api.list("EndpointSlice", fresh_ns, label_selector="kubernetes.io/service-name=lonely")
    assert es.get("endpoints") is None and es["addressType"] == "IPv4"
    assert "subsets" not in api.get("Endpoints", "lonely", fresh_ns)


def test_publish_not_ready_addresses(cluster, api, fresh_ns):
    """publishNotReadyAddresses makes an unready pod ready in both objects; serving stays the truth."""
    pod = web_pod("starting", {"app": "db"})
    pod["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 9999}}
    api.create(pod, fresh_ns)
    api.create(web_service("db", {"app": "db"}, publishNotReadyAddresses=True), fresh_ns)
    cluster.settle()
    assert slice_endpoints(api, fresh_ns, "db")["starting"]["conditions"] == {
        "ready": True, "serving": False, "terminating": False}
    assert endpoints_pods(api, fresh_ns, "db") == ({"starting"}, set())


# --- graceful deletion -------------------------------------------------------------------------
def test_deleted_pod_is_terminating_then_gone(slow, slow_clients, slow_ns):
    api, core = slow_clients
    ns = slow_ns
    api.create(web_pod("old", {"app": "web"}, terminationGracePeriodSeconds=LONG_GRACE), ns)
    api.create(web_pod("new", {"app": "web"}), ns)
    api.create(web_service("web", {"app": "web"}), ns)
    slow.settle()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    answer = core.delete_namespaced_pod("old", ns)
    assert answer.metadata.deletion_grace_period_seconds == LONG_GRACE
    assert (answer.metadata.deletion_timestamp - before).total_seconds() >= LONG_GRACE - 1

    pod = api.get("Pod", "old", ns)         # still there, Terminating, containers still running
    assert pod["metadata"]["deletionTimestamp"] and pod["status"]["phase"] == "Running"
    assert "old" in {p["metadata"]["name"] for p in api.list("Pod", ns)}
    # the slice keeps it, not ready but still serving; v1 Endpoints drop it
    ep = until(lambda: (e := slice_endpoints(api, ns, "web").get("old")) and e["conditions"]["terminating"] and e,
               what="the slice to mark the pod terminating")
    assert ep["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert slice_endpoints(api, ns, "web")["new"]["conditions"]["ready"] is True
    assert until(lambda: endpoints_pods(api, ns, "web") == ({"new"}, set()), what="Endpoints to drop the pod")

    core.delete_namespaced_pod("old", ns)   # a second DELETE without a shorter grace changes nothing
    assert api.get("Pod", "old", ns)["metadata"]["deletionGracePeriodSeconds"] == LONG_GRACE
    # gracePeriodSeconds=0 (kubectl delete --grace-period=0 --force) ends it at once
    core.delete_namespaced_pod("old", ns, body=client.V1DeleteOptions(grace_period_seconds=0))
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("old", ns)
    assert e.value.status == 404
    slow.settle()                            # its grace timer was forgotten with it
    assert set(slice_endpoints(api, ns, "web")) == {"new"}


def test_deleted_pod_ends_within_the_sandbox_grace(cluster, core, api, fresh_ns):
    """On the shared cluster a default (30 s) grace period ends after the sandbox's short one."""
    api.create(web_pod("p", {"app": "p"}), fresh_ns)
    cluster.settle()
    answer = core.delete_namespaced_pod("p", fresh_ns)
    assert answer.metadata.deletion_grace_period_seconds == 30 and answer.metadata.deletion_timestamp
    cluster.settle()
    assert api.list("Pod", fresh_ns) == []


def test_unscheduled_pod_is_deleted_at_once(cluster, core, api, fresh_ns):
    """CheckGracefulDelete: a pod that never got a node has nothing to stop."""
    pod = web_pod("stuck", {"app": "s"}, volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "none"}}])
    api.create(pod, fresh_ns)
    cluster.settle()
    core.delete_namespaced_pod("stuck", fresh_ns)
    assert api.list("Pod", fresh_ns) == []


def test_rc_scale_down_and_replacement_while_terminating(slow, slow_clients, slow_ns):
    api, core = slow_clients
    ns = slow_ns
    template = web_pod("x", {"app": "rc"}, terminationGracePeriodSeconds=LONG_GRACE)
    core.create_namespaced_replication_controller(ns, {"metadata": {"name": "rc"}, "spec": {
        "replicas": 3, "selector": {"app": "rc"}, "template": {"metadata": template["metadata"], "spec": template["spec"]}}})
    slow.settle()
    core.patch_namespaced_replication_controller("rc", ns, {"spec": {"replicas": 1}})

    def split() -> tuple[list[str], list[str]]:
        pods = api.list("Pod", ns)
        return ([p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")],
                [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")])

    until(lambda: [len(x) for x in split()] == [1, 2], what="one active and two terminating pods")
    until(lambda: (api.get("ReplicationController", "rc", ns).get("status") or {}).get("replicas") == 1,
          what="RC status to count active pods only")
    (survivor,), _ = split()
    core.delete_namespaced_pod(survivor, ns)     # replaced while it still terminates
    active, terminating = until(lambda: (s := split()) and len(s[0]) == 1 and survivor in s[1] and s,
                                what="a replacement pod")
    assert survivor not in active and len(terminating) == 3


def test_rc_scale_down_on_the_shared_cluster(cluster, core, api, fresh_ns):
    template = web_pod("x", {"app": "rc"})
    core.create_namespaced_replication_controller(fresh_ns, {"metadata": {"name": "rc"}, "spec": {
        "replicas": 3, "selector": {"app": "rc"}, "template": {"metadata": template["metadata"], "spec": template["spec"]}}})
    cluster.settle()
    core.patch_namespaced_replication_controller("rc", fresh_ns, {"spec": {"replicas": 1}})
    cluster.settle()
    (pod,) = api.list("Pod", fresh_ns)
    assert not pod["metadata"].get("deletionTimestamp")
    assert api.get("ReplicationController", "rc", fresh_ns)["status"]["readyReplicas"] == 1


def test_namespace_with_terminating_pods_is_deleted(slow, slow_clients):
    api, core = slow_clients
    slow.create_namespace("going")
    api.create(web_pod("p", {"app": "p"}, terminationGracePeriodSeconds=LONG_GRACE), "going")
    slow.settle()
    core.delete_namespaced_pod("p", "going")
    api.delete_namespace("going")
    slow.settle()       # nothing left to wait for: the pod went with its namespace
    with pytest.raises(ApiException) as e:
        core.read_namespace("going")
    assert e.value.status == 404


def test_odd_delete_options_are_refused_or_bounded(cluster, api, fresh_ns):
    """A malformed grace period is a 400 from the API, and an absurd one still answers (no crash)."""
    auth = {"Authorization": f"Bearer {cluster.token}"}
    api.create(web_pod("odd", {"app": "o"}, terminationGracePeriodSeconds=10**12), fresh_ns)
    cluster.settle()
    url = f"{cluster.url}/api/v1/namespaces/{fresh_ns}/pods/odd"
    r = requests.delete(url, params={"gracePeriodSeconds": "soon"}, headers=auth, timeout=10)
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    r = requests.delete(url, headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["metadata"]["deletionGracePeriodSeconds"] == 10**12
    cluster.settle()        # the sandbox still ends it after its short grace
    assert api.list("Pod", fresh_ns) == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_delete_waits_until_the_pod_is_gone(cluster, api, fresh_ns, kubeconfig):
    api.create(web_pod("k", {"app": "k"}), fresh_ns)
    cluster.settle()
    r = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "-n", fresh_ns, "delete", "pod", "k"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'pod "k" deleted' in r.stdout and api.list("Pod", fresh_ns) == []


# --- named target ports --------------------------------------------------------------------------
def test_named_target_port_resolves_per_pod(cluster, api, fresh_ns, kubeconfig):
    """`targetPort: http` is 8080 on one pod and 80 on another; a pod without the name is left
    out of Endpoints but kept in a slice with no ports, as the reconciler groups by port set."""
    ns = fresh_ns
    api.create(web_pod("s2i", {"app": "web"}), ns)                                   # http = 8080
    api.create(web_pod("upstream", {"app": "web"}, image="httpd:2.4", port=80), ns)   # http = 80
    api.create(web_pod("unnamed", {"app": "web"}, port_name="other"), ns)
    api.create(web_service("web", {"app": "web"}), ns)
    cluster.settle()
    ep = api.get("Endpoints", "web", ns)
    by_port = {s["ports"][0]["port"]: {a["targetRef"]["name"] for a in s["addresses"]} for s in ep["subsets"]}
    assert by_port == {8080: {"s2i"}, 80: {"upstream"}}
    assert all(s["ports"][0]["name"] == "web" for s in ep["subsets"])
    eps = slice_endpoints(api, ns, "web")
    assert eps["s2i"]["_ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert eps["upstream"]["_ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]
    assert not eps["unnamed"]["_ports"]

    seen = set()
    for _ in range(12):     # both pods answer through the service proxy, each on its own port
        answer = api.service_proxy(ns, "web", 80, "/")
        assert answer.error is None and answer.status in (200, 403)
        seen.add("It works!" in answer.text)
    assert seen == {True, False}

    from kubernetes import client as k8s
    custom = k8s.CustomObjectsApi(config.new_client_from_config(config_file=str(kubeconfig)))
    custom.create_namespaced_custom_object("route.openshift.io", "v1", ns, "routes", {
        "apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "web"},
        "spec": {"to": {"kind": "Service", "name": "web"}, "port": {"targetPort": "web"}}})
    cluster.settle()
    host = api.get("Route", "web", ns)["spec"]["host"]
    codes = {requests.get(f"http://{cluster.router_address}/", headers={"Host": host}, timeout=10).status_code
             for _ in range(6)}
    assert codes <= {200, 403} and codes    # httpd answers 200, the s2i image 403 on an empty docroot


def test_named_target_port_matches_the_protocol(cluster, api, fresh_ns):
    """findPort compares the protocol too: a UDP service port does not take a TCP port's name."""
    api.create(web_pod("p", {"app": "u"}), fresh_ns)
    svc = web_service("u", {"app": "u"})
    svc["spec"]["ports"][0]["protocol"] = "UDP"
    api.create(svc, fresh_ns)
    cluster.settle()
    assert "subsets" not in api.get("Endpoints", "u", fresh_ns)
    assert not slice_endpoints(api, fresh_ns, "u")["p"]["_ports"]
