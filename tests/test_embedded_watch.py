"""Watch streams of the embedded cluster, read with the real client's ``watch.Watch().stream`` and
``kubectl get -w`` over real HTTP: events, resourceVersions, 410s, bookmarks, timeouts, faults."""
from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests
import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from grader.cluster import EmbeddedCluster
from grader.cluster.apiport import RequestAttributes

from .conftest import ROOT


@pytest.fixture(scope="module")
def ec():
    with EmbeddedCluster() as c:
        yield c


@pytest.fixture(scope="module")
def core(ec, tmp_path_factory):
    kc = ec.write_kubeconfig(tmp_path_factory.mktemp("watch") / "config")
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kc)))


_n = iter(range(10_000))


@pytest.fixture
def ns(ec):
    name = f"w{next(_n)}"
    ec.create_namespace(name)
    return name


def cm(name, labels=None, **data):
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


def later(fn, delay=0.3):
    """Run ``fn`` in a thread once the watch below it is open (the watch starts at a fixed
    resourceVersion, so nothing is lost if it runs first)."""
    t = threading.Thread(target=lambda: (time.sleep(delay), fn()), daemon=True)
    t.start()
    return t


def collect(it, until, limit=50):
    """Events from a watch generator until ``until(event)`` is true (or ``limit`` events)."""
    out = []
    for ev in it:
        out.append(ev)
        if until(ev) or len(out) >= limit:
            break
    return out


def raw_watch(ec, path, **params):
    """The stream's lines as sent, through plain HTTP (what the client parses)."""
    q = "&".join(f"{k}={v}" for k, v in {"watch": "true", **params}.items())
    r = requests.get(f"{ec.url}{path}?{q}", headers={"Authorization": f"Bearer {ec.token}"},
                     stream=True, timeout=30)
    return r


# --- events ----------------------------------------------------------------------------------
def test_added_modified_deleted_are_seen_with_kind_set(core, ns):
    rv = core.list_namespaced_config_map(ns).metadata.resource_version

    def change():
        core.create_namespaced_config_map(ns, cm("a", x="1"))
        core.patch_namespaced_config_map("a", ns, {"data": {"x": "2"}})
        core.delete_namespaced_config_map("a", ns)
    later(change)
    w = watch.Watch()
    evs = collect(w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=30),
                  lambda e: e["type"] == "DELETED")
    w.stop()
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
    assert {(e["raw_object"]["kind"], e["raw_object"]["apiVersion"]) for e in evs} == {("ConfigMap", "v1")}
    assert [e["object"].data["x"] for e in evs] == ["1", "2", "2"]
    rvs = [int(e["object"].metadata.resource_version) for e in evs]
    assert rvs == sorted(set(rvs)) and rvs[0] > int(rv), "each event at its own, later resourceVersion"


def test_without_a_resource_version_current_objects_come_first_as_added(core, ns):
    core.create_namespaced_config_map(ns, cm("old1"))
    core.create_namespaced_config_map(ns, cm("old2"))
    later(lambda: core.create_namespaced_config_map(ns, cm("new")))
    w = watch.Watch()
    evs = collect(w.stream(core.list_namespaced_config_map, ns, timeout_seconds=30),
                  lambda e: e["object"].metadata.name == "new")
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [
        ("ADDED", "old1"), ("ADDED", "old2"), ("ADDED", "new")]


def test_cluster_wide_watch_with_selectors_follows_what_matches(core, ns, ec):
    """A label selector watch sees an object that stops matching as DELETED and one that starts
    matching as ADDED (as the real cacher does); another namespace's objects pass a cluster-wide
    watch; a metadata.namespace field selector keeps them out."""
    other = f"{ns}-x"
    ec.create_namespace(other)
    rv = core.list_config_map_for_all_namespaces().metadata.resource_version

    def change():
        core.create_namespaced_config_map(ns, cm("a", {"tier": "web"}))
        core.create_namespaced_config_map(ns, cm("b", {"tier": "db"}))
        core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"tier": "db"}}})
        core.patch_namespaced_config_map("b", ns, {"metadata": {"labels": {"tier": "web"}}})
        core.create_namespaced_config_map(other, cm("c", {"tier": "web"}))
    later(change)
    w = watch.Watch()
    evs = collect(w.stream(core.list_config_map_for_all_namespaces, label_selector="tier=web",
                           resource_version=rv, timeout_seconds=30),
                  lambda e: e["object"].metadata.name == "c")
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [
        ("ADDED", "a"), ("DELETED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert evs[1]["object"].metadata.labels == {"tier": "web"}, "DELETED carries the state that matched"

    w = watch.Watch()
    evs = list(w.stream(core.list_config_map_for_all_namespaces, resource_version=rv, timeout_seconds=1,
                        field_selector=f"metadata.namespace={other},metadata.name=c"))
    assert [(e["type"], e["object"].metadata.namespace) for e in evs] == [("ADDED", other)]


def test_a_namespace_watch_sees_only_its_namespace(ec, core, ns):
    other = f"{ns}-o"
    ec.create_namespace(other)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(other, cm("elsewhere"))
    core.create_namespaced_config_map(ns, cm("here"))
    lines = raw_watch(ec, f"/api/v1/namespaces/{ns}/configmaps", watch="1", resourceVersion=rv,
                      timeoutSeconds=1).text.splitlines()
    assert [(json.loads(x)["type"], json.loads(x)["object"]["metadata"]["name"]) for x in lines] == [("ADDED", "here")]


def test_a_watch_resumed_from_a_lists_resource_version_loses_no_change(core, ns):
    listed = core.list_namespaced_config_map(ns)
    core.create_namespaced_config_map(ns, cm("between"))   # after the list, before the watch
    w = watch.Watch()
    evs = collect(w.stream(core.list_namespaced_config_map, ns, resource_version=listed.metadata.resource_version,
                           timeout_seconds=30), lambda e: True)
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [("ADDED", "between")]


def test_every_kind_can_be_watched(ec, core, ns):
    """Each kind the cluster serves streams its objects with its kind set (in parallel: each
    stream lasts its timeoutSeconds)."""
    from concurrent.futures import ThreadPoolExecutor
    core.create_namespaced_service(ns, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})

    def kinds_seen(rt):
        base = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
        r = raw_watch(ec, f"{base}/{rt.plural}", timeoutSeconds=1)
        assert r.status_code == 200 and r.headers["Transfer-Encoding"] == "chunked", (rt.plural, r.text)
        return rt.key, (rt.kind, {json.loads(x)["object"]["kind"] for x in r.text.splitlines()})
    with ThreadPoolExecutor(8) as pool:
        seen = dict(pool.map(kinds_seen, ec.server.resources))
    assert len(seen) == len(ec.server.resources) > 10
    assert all(kinds <= {kind} for kind, kinds in seen.values()), seen
    assert all(seen[k][1] == {seen[k][0]} for k in ("services", "namespaces", "nodes")), "what exists is streamed"


# --- resourceVersions and errors -------------------------------------------------------------
def test_a_resource_version_older_than_the_window_is_410_expired(ec, core, ns):
    hub = ec.server.watch
    hub.window, before = 5, hub.window
    try:
        first = core.create_namespaced_config_map(ns, cm("c0")).metadata.resource_version
        for i in range(1, 8):
            core.create_namespaced_config_map(ns, cm(f"c{i}"))
        with pytest.raises(ApiException) as exc:
            list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=first,
                                      timeout_seconds=5))
        assert exc.value.status == 410 and exc.value.reason.startswith("Expired: too old resource version:")
        # the event itself, shaped as a real server's (wso2/apk#571)
        lines = raw_watch(ec, f"/api/v1/namespaces/{ns}/configmaps", resourceVersion=first).text.splitlines()
        assert len(lines) == 1
        ev = json.loads(lines[0])
        assert ev["type"] == "ERROR" and list(ev["object"]) == ["kind", "apiVersion", "metadata", "status",
                                                                  "message", "reason", "code"]
        assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
    finally:
        hub.window = before


def test_bad_and_future_resource_versions_are_refused_before_the_stream(ec, ns):
    assert raw_watch(ec, f"/api/v1/namespaces/{ns}/pods", resourceVersion="abc").status_code == 400
    r = raw_watch(ec, f"/api/v1/namespaces/{ns}/pods", resourceVersion="99999999")
    assert r.status_code == 504 and "Too large resource version" in r.json()["message"]


def test_watch_is_authorized_as_its_own_verb(ec, ns):
    ec.server.add_user("list-only", "lister", lambda a: a.verb == "list")
    try:
        h = {"Authorization": "Bearer list-only"}
        url = f"{ec.url}/api/v1/namespaces/{ns}/pods"
        assert requests.get(url, headers=h, timeout=10).status_code == 200
        r = requests.get(url + "?watch=true&timeoutSeconds=1", headers=h, timeout=10)
        assert r.status_code == 403 and 'cannot watch resource "pods"' in r.json()["message"]
    finally:
        ec.server.remove_user("list-only")


def test_rbac_grants_watch_wherever_it_grants_list():
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()))
    rules = [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"]]
    listed = [r for r in rules if "list" in r["verbs"]]
    assert listed and all("watch" in r["verbs"] for r in listed)
    assert any("pods" in r["resources"] and "watch" in r["verbs"] for r in rules)


# --- bookmarks, timeouts, initial events -----------------------------------------------------
def test_bookmarks_carry_only_the_resource_version(ec, core, ns):
    hub = ec.server.watch
    hub.bookmark_interval, before = 0.2, hub.bookmark_interval
    try:
        made = core.create_namespaced_config_map(ns, cm("a")).metadata.resource_version
        w = watch.Watch()
        evs = collect(w.stream(core.list_namespaced_config_map, ns, allow_watch_bookmarks=True, timeout_seconds=30),
                      lambda e: e["type"] == "BOOKMARK")
        w.stop()
        assert [e["type"] for e in evs] == ["ADDED", "BOOKMARK"]
        mark = evs[-1]["raw_object"]
        assert set(mark) == {"kind", "apiVersion", "metadata"} and mark["kind"] == "ConfigMap"
        assert list(mark["metadata"]) == ["resourceVersion"] and int(mark["metadata"]["resourceVersion"]) >= int(made)
        assert w.resource_version == mark["metadata"]["resourceVersion"], "the client resumes from it"
        plain = list(watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1))
        assert [e["type"] for e in plain] == ["ADDED"], "no bookmarks unless asked for"
    finally:
        hub.bookmark_interval = before


def test_timeout_seconds_ends_the_stream_cleanly(core, ns):
    started = time.monotonic()
    evs = list(watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1))
    took = time.monotonic() - started
    assert evs == [] and 1.0 <= took < 30


def test_send_initial_events_ends_with_an_annotated_bookmark(ec, core, ns):
    core.create_namespaced_config_map(ns, cm("a"))
    lines = raw_watch(ec, f"/api/v1/namespaces/{ns}/configmaps", sendInitialEvents="true",
                      allowWatchBookmarks="true", resourceVersionMatch="NotOlderThan",
                      timeoutSeconds=1).text.splitlines()
    evs = [json.loads(x) for x in lines]
    assert [e["type"] for e in evs] == ["ADDED", "BOOKMARK"]
    assert evs[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert raw_watch(ec, f"/api/v1/namespaces/{ns}/configmaps", sendInitialEvents="true").status_code == 422


# --- faults, slow clients, shutdown ----------------------------------------------------------
def _watch_in_thread(fn, *args, **kwargs):
    """(events queue, thread): a watch read in a thread; the queue ends with ("END", exception)."""
    q: queue.Queue = queue.Queue()

    def run():
        try:
            for ev in watch.Watch().stream(fn, *args, **kwargs):
                q.put((ev["type"], ev))
            q.put(("END", None))
        except Exception as exc:  # what the fault makes the client raise
            q.put(("END", exc))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return q, t


def _wait_open(ec, resource, n=1):
    deadline = time.monotonic() + 30
    while ec.faults.open_watches(resource) < n:
        assert time.monotonic() < deadline, "the watch never opened"
        time.sleep(0.02)


def _until_end(q, timeout=30):
    out = []
    while True:
        kind, ev = q.get(timeout=timeout)
        out.append((kind, ev))
        if kind == "END":
            return out


def test_an_injected_410_ends_the_stream_and_a_relist_resumes(ec, core, ns):
    listed = core.list_namespaced_secret(ns).metadata.resource_version
    q, t = _watch_in_thread(core.list_namespaced_secret, ns, resource_version=listed, timeout_seconds=60)
    _wait_open(ec, "secrets")
    core.create_namespaced_secret(ns, {"metadata": {"name": "before"}})
    assert q.get(timeout=30)[0] == "ADDED"
    assert ec.faults.expire_watches("secrets") == 1
    got = _until_end(q)
    exc = got[-1][1]
    assert isinstance(exc, ApiException) and exc.status == 410 and exc.reason.startswith("Expired")
    core.create_namespaced_secret(ns, {"metadata": {"name": "after"}})
    relisted = core.list_namespaced_secret(ns)
    assert sorted(s.metadata.name for s in relisted.items) == ["after", "before"]
    assert ec.faults.open_watches("secrets") == 0


def test_a_dropped_stream_breaks_the_client_and_resuming_loses_nothing(ec, core, ns):
    rv = core.list_namespaced_persistent_volume_claim(ns).metadata.resource_version
    fn = core.list_namespaced_persistent_volume_claim
    q, t = _watch_in_thread(fn, ns, resource_version=rv, timeout_seconds=60)
    _wait_open(ec, "persistentvolumeclaims")
    pvc = {"metadata": {"name": "a"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                "resources": {"requests": {"storage": "1Gi"}}}}
    core.create_namespaced_persistent_volume_claim(ns, pvc)
    seen = q.get(timeout=30)[1]["object"].metadata.resource_version
    assert ec.faults.drop_watches() >= 1
    exc = _until_end(q)[-1][1]
    assert isinstance(exc, (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)), exc
    core.create_namespaced_persistent_volume_claim(ns, {**pvc, "metadata": {"name": "b"}})  # while away
    evs = list(watch.Watch().stream(fn, ns, resource_version=seen, timeout_seconds=1))
    assert [e["object"].metadata.name for e in evs if e["type"] == "ADDED"] == ["b"]


def test_a_client_that_stops_reading_is_ended_with_410_not_buffered(ec, core, ns):
    hub = ec.server.watch
    hub.queue_size, before = 4, hub.queue_size
    s = _stuck_watch(ec, f"/api/v1/namespaces/{ns}/configmaps")
    try:
        _wait_open(ec, "configmaps")
        big = "x" * 60_000
        for i in range(120):   # ~7 MB, far more than the socket buffers hold
            core.create_namespaced_config_map(ns, cm(f"c{i}", v=big))
        s.settimeout(30)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            chunk = s.recv(1 << 20)
            assert chunk, "the server closed without ending the stream"
            data += chunk
        body = data.split(b"\r\n\r\n", 1)[1]
        lines = [ln for ln in body.split(b"\n") if ln.startswith(b'{"type"')]
        last = json.loads(lines[-1])
        assert last["type"] == "ERROR" and last["object"]["code"] == 410
        assert 0 < len(lines) - 1 < 120, "some events were sent, the rest not held for the client"
    finally:
        s.close()
        hub.queue_size = before


def test_stopping_the_server_ends_open_streams():
    """A reading client sees its stream end; one that reads nothing (its server thread blocked
    writing) has its connection cut, so no thread outlives the server."""
    with EmbeddedCluster() as c:
        api = client.CoreV1Api(client.ApiClient(_conf(c)))
        q, t = _watch_in_thread(api.list_namespace)   # no timeout: it would last 30 minutes
        _wait_open(c, "namespaces")
        c.create_namespace("stuck")
        stuck = _stuck_watch(c, "/api/v1/namespaces/stuck/configmaps")
        _wait_open(c, "configmaps")
        big = "x" * 60_000
        for i in range(60):
            c.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}, "data": {"v": big}}],
                    "stuck")
    t.join(timeout=30)
    assert not t.is_alive(), "the watch outlived the server"
    gone = time.monotonic() + 10    # a cut stream's thread deregisters once scheduled (a loaded machine)
    while c.faults.open_watches() and time.monotonic() < gone:
        time.sleep(0.05)
    assert c.faults.open_watches() == 0
    stuck.settimeout(30)   # a connection left open would time this out
    try:
        while stuck.recv(1 << 20):
            pass   # what was sent, then the end of the connection
    except ConnectionResetError:
        pass       # or cut hard: either way, closed
    finally:
        stuck.close()


def _stuck_watch(c, path):
    """A raw watch connection with a tiny receive window, never read by the test until the end."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = c.url.split("//")[1].split(":")
    s.connect((host, int(port)))
    s.sendall(f"GET {path}?watch=true&timeoutSeconds=600 HTTP/1.1\r\n"
              f"Host: x\r\nAuthorization: Bearer {c.token}\r\n\r\n".encode())
    return s


def _conf(c):
    conf = client.Configuration()
    conf.host = c.url
    conf.api_key = {"authorization": f"Bearer {c.token}"}
    return conf


# --- kubectl ---------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("flags, change", [
    ((), r"p1\s+\S+\s+Terminating"),
    (("--output-watch-events",), r"MODIFIED\s+p1\s+\S+\s+Terminating"),
], ids=["get-pods-w", "output-watch-events"])
def test_kubectl_get_pods_w_streams_a_change(ec, core, ns, tmp_path, flags, change):
    """``kubectl get pods -w`` asks for Table events (it used to die on the first one with
    "Object 'Kind' is missing"); a pod deleted while it runs is printed as Terminating."""
    import re
    ec.apply([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"},
               "spec": {"containers": [{"name": "c", "image": "registry.access.redhat.com/ubi8/httpd-24"}]}}], ns)
    ec.settle()
    kc = ec.write_kubeconfig(tmp_path / "kc", namespace=ns)
    p = subprocess.Popen(["kubectl", "--kubeconfig", str(kc), "get", "pods", "-w", *flags],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True).start()

    def read_until(pattern):
        deadline, out = time.monotonic() + 30, ""
        while not re.search(pattern, out):
            assert time.monotonic() < deadline, (out, p.stderr.read() if p.poll() is not None else "")
            try:
                out += lines.get(timeout=1)
            except queue.Empty:
                pass
        return out
    try:
        read_until(r"p1\s+1/1\s+Running")   # the list: the watch starts at its resourceVersion
        core.delete_namespaced_pod("p1", ns)
        read_until(change)
        assert p.poll() is None, "kubectl keeps watching"
    finally:
        p.kill()
        p.wait(timeout=30)
