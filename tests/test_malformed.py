"""Malformed student objects (missing status, empty lists, wrong types anywhere) fail checks with a message; never a crash or an ERROR.

The embedded API server validates some shapes on create, as a real one does; a real cluster can
still hold odd shapes (CRD-less fields, old objects, lenient servers), and checks must not trust
them. So each malformed copy of a settled reference solution is written straight into
``cluster.server.store`` (under its lock, without notifying the controllers, which would rightly
choke on them) -- and the grader still reads it over HTTP through the real client.
"""
from __future__ import annotations

import copy
from typing import Any, Iterator

import pytest

from grader.apply import apply_files, manifest_files, solution_dir
from grader.grading import grade_on
from grader.kube import Api, RetryPolicy
from grader.results import Outcome
from grader.settings import Settings

SETTINGS = Settings(lang="en", wait=0.0)
EXERCISES = [ex for ex in SETTINGS.available() if solution_dir(ex).is_dir()]
_GONE = object()


def _wrong(value: Any) -> list[Any]:
    """Values of the wrong shape for a field that holds ``value``."""
    if isinstance(value, dict):
        return ["oops", _GONE]
    if isinstance(value, list):
        return ["oops", {}, []] if value else ["oops"]
    return [{}, _GONE]


def mutations(obj: dict, path: tuple = (), depth: int = 0) -> Iterator[tuple[tuple, Any]]:
    """(path, replacement) for every field down to depth 3 (metadata: labels/annotations only,
    so the object keeps its name and namespace)."""
    if depth > 3:
        return
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, value in items:
        if depth == 0 and key in ("apiVersion", "kind"):
            continue
        if depth == 0 and key == "metadata":
            for sub in ("labels", "annotations"):
                for wrong in (["oops"], {"k": {"nested": 1}}):
                    yield ("metadata", sub), wrong
            continue
        for wrong in _wrong(value):
            yield (*path, key), wrong
        if isinstance(value, (dict, list)):
            yield from mutations(value, (*path, key), depth + 1)


def _apply(obj: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(obj)
    cur = out
    for key in path[:-1]:
        cur = cur[key]
    if value is _GONE:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return out


def _store(cluster, namespace: str, objects: list[tuple[Any, dict]]) -> None:
    """Write objects into the store as they are: no validation, no admission, no controllers."""
    store = cluster.server.store
    with store._lock:
        for rt, obj in objects:
            obj = copy.deepcopy(obj)
            obj["metadata"]["namespace"] = namespace
            store._objs[rt.key][(namespace if rt.namespaced else "", obj["metadata"]["name"])] = obj


@pytest.fixture(scope="module")
def private():
    """A cluster of its own: malformed objects must not reach the shared one's controllers."""
    from grader.cluster import EmbeddedCluster

    with EmbeddedCluster() as c:
        yield c


@pytest.fixture(scope="module")
def graded(private, tmp_path_factory):
    """exercise → [(namespace, what was broken, ExerciseResult)]: every mutation of every settled
    solution object, each in its own namespace, graded as one batch per exercise."""
    cluster = private
    kc = cluster.write_kubeconfig(tmp_path_factory.mktemp("malformed") / "config")
    api = Api(kubeconfig=str(kc))
    fast = Api(kubeconfig=str(kc), retry=RetryPolicy(deadline=3.0))
    out = {}
    store = cluster.server.store
    try:
        for ex in EXERCISES:
            base_ns = f"mal-{ex}-base"
            cluster.create_namespace(base_ns)
            assert apply_files(api, manifest_files(solution_dir(ex)), base_ns) == []
            cluster.settle()
            settled = [(rt, o) for rt in store.resources if rt.namespaced and rt.plural != "events"   # the cluster's record, not the student's objects
                       for o in store.list(rt, base_ns)[0]]
            namespaces, what = [], {}
            n = 0
            for i, (rt, obj) in enumerate(settled):
                for path, value in mutations(obj):
                    n += 1
                    ns = f"mal-{ex}-{n}"
                    broken = _apply(obj, path, value)
                    _store(cluster, ns, [(r, o) for j, (r, o) in enumerate(settled) if j != i] + [(rt, broken)])
                    namespaces.append(ns)
                    what[ns] = f"{rt.kind} {obj['metadata']['name']}: {'.'.join(map(str, path))} = " \
                               f"{'(deleted)' if value is _GONE else repr(value)}"
            run = grade_on(fast, SETTINGS, [SETTINGS.exercise(ex)], namespaces, student=False, wait=0)
            out[ex] = [(r.namespace, what[r.namespace], r) for r in run.results]
    finally:
        fast.close()
        api.close()
    return out


def _embedded_proxy_crash(message: str | None) -> bool:
    """The embedded cluster's service proxy (not the grader) trips over a malformed pod and
    answers 500 "internal error"; the grader rightly reports that as the API server's ERROR.
    kube-apiserver never stores such pods, so this cannot happen on a real cluster."""
    return bool(message) and "kept answering 500" in message and "internal error" in message


@pytest.mark.parametrize("ex", EXERCISES)
def test_malformed_objects_fail_with_a_message_never_error(graded, ex):
    cases = graded[ex]
    assert len(cases) > 20
    errors = [(what, c.check_id, c.message.en if c.message else None)
              for _, what, r in cases for c in r.checks if c.outcome is Outcome.ERROR
              and not _embedded_proxy_crash(c.message.en if c.message else None)]
    assert errors == []
    unexplained = [(what, c.check_id) for _, what, r in cases for c in r.checks
                   if c.outcome is Outcome.FAILED and not (c.message and c.message.en and c.message.ja)]
    assert unexplained == []
    # the mutations did bite: many namespaces lost points
    assert sum(1 for _, _, r in cases if r.score < r.max_score) > len(cases) // 10


def test_named_shapes_from_the_issue(graded):
    """The shapes named in the issue, on ex1's pod, fail the checks that read them."""
    by_what = {what: r for _, what, r in graded["ex1"]}

    def failed(what: str) -> dict[str, str]:
        r = by_what[what]
        return {c.check_id: c.message.en for c in r.checks if c.outcome is Outcome.FAILED}

    oops = failed("Pod hello: spec.containers = 'oops'")
    assert {"pod-image", "pod-port"} <= set(oops), oops
    assert "no container image" in oops["pod-image"]
    ports = failed("Pod hello: spec.containers.0.ports = {}")
    assert set(ports) == {"pod-port"} and "declares no containerPort" in ports["pod-port"]
    labels = failed("Pod hello: metadata.labels = ['oops']")
    assert set(labels) == {"pod-label"}
    status = failed("Pod hello: status = (deleted)")
    assert set(status) == {"pod-ready"} and "not Running and Ready" in status["pod-ready"]
