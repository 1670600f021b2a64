"""The watching snapshot: events keep it current, 410s and drops resume without losing a change, bursts are one change, faulty servers are never spun on."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest

from grader.errors import InfraError
from grader.kube import Api
from grader.kubewatch import Dropped, Stream
from grader.watch import Changes, LiveSnapshot
from tests.apidouble import ApiDouble, status
from tests.conftest import FakeClock


def pod(ns: str, name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "httpd"}]}, "status": {"phase": "Running"}}


def names(live: LiveSnapshot, ns: str, kind: str = "Pod") -> list[str]:
    return [o["metadata"]["name"] for o in live.view(ns).list(kind)]


def until(predicate: Any, seconds: float = 15.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def double(tmp_path):
    with ApiDouble([pod("alice", "web"), pod("bob", "web")]) as d:
        d.api = Api(kubeconfig=str(d.write_kubeconfig(tmp_path / "kubeconfig")))
        yield d
        d.api.close()


@pytest.fixture
def live(double):
    snapshot = LiveSnapshot(double.api, ["alice", "bob"])
    yield snapshot
    snapshot.stop()


def test_events_keep_the_snapshot_current_and_name_their_namespace(double, live):
    assert names(live, "alice") == ["web"]
    assert until(lambda: double.watches_started == 1)
    double.change("ADDED", pod("bob", "db"))
    assert live.changes.take(10) == {"bob"}
    assert names(live, "bob") == ["db", "web"] and names(live, "alice") == ["web"]
    double.change("MODIFIED", pod("alice", "web", app="hello"))
    assert live.changes.take(10) == {"alice"}
    assert live.view("alice").get("Pod", "web")["metadata"]["labels"] == {"app": "hello"}
    double.change("DELETED", pod("bob", "web"))
    assert live.changes.take(10) == {"bob"}
    assert names(live, "bob") == ["db"]
    pods_lists = [r for r in double.requests if r.startswith("/api/v1/pods?") and "watch" not in r]
    assert len(pods_lists) == 1, "a change is read from the stream, never by listing again"


def test_a_namespace_outside_the_class_is_not_a_change(double, live):
    names(live, "alice")
    assert until(lambda: double.watches_started == 1)
    double.change("ADDED", pod("mallory", "x"))
    double.change("ADDED", pod("alice", "db"))
    assert live.changes.take(10) == {"alice"}


@pytest.mark.parametrize("fault", ["expire", "drop"])
def test_a_410_or_a_dropped_stream_mid_way_resumes_without_losing_a_change(double, live, fault):
    names(live, "alice")
    assert until(lambda: double.watches_started == 1)
    getattr(double, fault)()
    double.change("ADDED", pod("alice", "db"))     # made while no watch is open
    assert until(lambda: "db" in names(live, "alice"))
    assert live.changes.take(10) >= {"alice"}
    assert live.feeds[0].relists == 1
    assert until(lambda: double.watches_started == 2)
    double.change("ADDED", pod("bob", "db"))       # and the new watch follows on
    assert until(lambda: "db" in names(live, "bob"))


@pytest.mark.parametrize("fault", ["expire_watches", "drop_watches"])
def test_embedded_cluster_410_or_drop_resumes_without_losing_a_change(cluster, api, fault):
    a, b = f"w-{fault[:4]}-a", f"w-{fault[:4]}-b"
    for ns in (a, b):
        cluster.create_namespace(ns)
    live = LiveSnapshot(api, [a, b])
    try:
        assert names(live, a, "ConfigMap") == []
        assert until(lambda: cluster.server.faults.open_watches("configmaps") >= 1)
        assert getattr(cluster.server.faults, fault)("configmaps") >= 1
        api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}, "data": {}}, a)
        assert until(lambda: "after" in names(live, a, "ConfigMap"))
    finally:
        live.stop()


def test_a_burst_of_changes_is_one_change(double, live):
    names(live, "alice")
    assert until(lambda: double.watches_started == 1)
    for i in range(6):
        double.change("ADDED", pod("alice" if i % 2 else "bob", f"p{i}"))
    assert live.changes.take(10) == {"alice", "bob"}
    assert live.changes.take(0.6) == set()


def test_applying_a_directory_is_one_change(cluster, api, tmp_path, fresh_ns):
    from grader.apply import apply_files, manifest_files
    for i in range(5):
        (tmp_path / f"cm{i}.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n  k: v\n")
    live = LiveSnapshot(api, [fresh_ns])
    try:
        assert names(live, fresh_ns, "ConfigMap") == []
        assert until(lambda: cluster.server.faults.open_watches("configmaps") >= 1)
        assert apply_files(api, manifest_files(tmp_path), fresh_ns, kinds=cluster.kinds()) == []
        assert live.changes.take(10) == {fresh_ns}
        assert live.changes.take(0.6) == set(), "five objects applied together are one re-grading"
        assert names(live, fresh_ns, "ConfigMap") == [f"cm{i}" for i in range(5)]
    finally:
        live.stop()


def test_changes_settle_a_steady_trickle_at_the_longest_wait():
    changes = Changes(quiet=0.15, longest=0.3)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            changes.add({"alice"})
            time.sleep(0.02)
    threading.Thread(target=trickle, daemon=True).start()
    try:
        assert changes.take(5) == {"alice"}     # returned although changes never paused
    finally:
        stop.set()


class _Sleeps:
    """A fake sleep for the feeds: records each backoff and stops the watcher after ``limit``."""

    def __init__(self, limit: int) -> None:
        self.clock = FakeClock()
        self.limit = limit
        self.done = threading.Event()

    def __call__(self, seconds: float) -> bool:
        self.clock.sleep(seconds)
        if len(self.clock.slept) >= self.limit:
            self.done.set()
            return False
        return True


@pytest.mark.parametrize("answer", ["500", "ends-at-once"])
def test_a_faulty_server_is_never_spun_on(double, answer):
    def watch_fails(h: Any) -> None:
        if "watch=true" not in h.path:
            code, body = h.owner.answer(h.path.split("?")[0], {})
            return h.send_json(code, body)
        if answer == "500":
            return h.send_json(500, status(500, "InternalError", "etcd is down"))
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "0")
        h.end_headers()
    double.route("/api/v1/pods", watch_fails)
    sleeps = _Sleeps(limit=8)
    live = LiveSnapshot(double.api, ["alice", "bob"], sleep=sleeps)
    try:
        assert names(live, "alice") == ["web"]
        assert sleeps.done.wait(30)
        watches = sum("watch=true" in r for r in double.requests)
        assert watches <= len(sleeps.clock.slept) + 1, "every failed watch is followed by a backoff"
        assert max(sleeps.clock.slept[-3:]) > 4 * max(sleeps.clock.slept[:2]), "the backoff grows"
    finally:
        live.stop()


def _watch_forbidden(user: str) -> Callable[[Any], None]:
    """A route that lists pods but answers a watch of them with RBAC's 403 for ``user``."""
    def answer(h: Any) -> None:
        if "watch=true" in h.path:
            return h.send_json(403, status(403, "Forbidden", f'pods is forbidden: User "{user}" cannot watch resource "pods"'))
        code, body = h.owner.answer(h.path.split("?")[0], {})
        h.send_json(code, body)
    return answer


def test_cluster_wide_watch_forbidden_falls_back_to_one_watch_per_namespace(double, live):
    double.route("/api/v1/pods", _watch_forbidden("ta"))
    names(live, "alice")
    assert until(lambda: sum("/namespaces/" in r and "watch=true" in r for r in double.requests) >= 2)
    double.change("ADDED", pod("bob", "db"))
    assert until(lambda: "db" in names(live, "bob"))


def test_a_new_namespace_is_followed(double, live):
    names(live, "alice")
    double.change("ADDED", pod("carol", "web"))
    assert live.changes.take(1.0) == set()     # not in the class yet
    assert live.add_namespace("carol") is True
    assert names(live, "carol") == ["web"]


def test_an_oversized_event_line_is_a_drop_not_a_buffer(double):
    double.change("ADDED", {**pod("alice", "big"), "data": "x" * 5000})
    stream = Stream(double.api, "Pod", None, "1", timeout_seconds=5, max_line=1000)
    with pytest.raises(Dropped) as e:
        for _ in stream.events():
            pass
    assert isinstance(e.value, InfraError) and "1000" in e.value.message.en


def test_a_route_change_renews_the_map_of_claimed_hosts(tmp_path):
    route = {"apiVersion": "route.openshift.io/v1", "kind": "Route",
             "metadata": {"name": "hello", "namespace": "alice"}, "spec": {"host": "a.apps.example.com"}}
    with ApiDouble([route]) as d:
        api = Api(kubeconfig=str(d.write_kubeconfig(tmp_path / "kubeconfig")))
        live = LiveSnapshot(api, ["alice", "bob"])
        try:
            assert [r["spec"]["host"] for r in live.view("alice").list("Route")] == ["a.apps.example.com"]
            assert until(lambda: d.watches_started == 1)
            seen = live.generation
            d.change("ADDED", {**route, "metadata": {"name": "hello", "namespace": "bob"}})
            assert live.changes.take(10) == {"bob"}
            assert live.generation > seen, "Probe.claim_problem keys its host map on the generation"
        finally:
            live.stop()
            api.close()


def test_a_namespace_that_may_be_listed_but_not_watched_is_listed_again(double):
    double.route("/api/v1/namespaces/alice/pods", _watch_forbidden("student"))
    live = LiveSnapshot(double.api, ["alice"], sleep=lambda s: not time.sleep(min(s, 0.05)))
    try:
        assert names(live, "alice") == ["web"]
        double.change("ADDED", pod("alice", "db"))
        assert until(lambda: "db" in names(live, "alice")), "the change is seen by listing again"
        assert live.changes.take(5) == {"alice"}
    finally:
        live.stop()
