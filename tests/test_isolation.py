"""A malformed object or an unsafe name in one namespace of a batch never changes another namespace's grade.

The class is served by the independent API double (``tests/apidouble.py``) over real HTTP: two
students hold a correct ex1 + ex2 recorded on a real cluster, a third holds objects of shapes a
real API server would never return (metadata a list, metadata.namespace an int, list items that
are not objects). The two must get exactly the grade they get when graded without the third.
"""
from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from grader.batch import grade_batch
from grader.grading import grade_on
from grader.kube import Api, RetryPolicy
from grader.results import Outcome
from grader.settings import Settings
from tests.apidouble import ApiDouble, load_fixture, relocated, status
from tests.loopback import send_page

FIXTURE = Path(__file__).parent / "fixtures" / "real" / "isolation-hello-httpd.yaml"
SETTINGS = Settings(lang="en", wait=0.0, quiet=True)
GOOD = ["alice", "carol"]
BAD = "bob"
EXERCISES = ["ex1", "ex2"]


def _student(namespace: str, n: int) -> list[dict[str, Any]]:
    """The recorded solution, moved to ``namespace`` with a pod IP of its own."""
    return relocated(load_fixture(FIXTURE), namespace, f"10.88.0.{n}")


def _malformed(namespace: str) -> dict[str, list[Any]]:
    """plural → items a hostile or broken server could put in a list for ``namespace``."""
    pod, svc = [copy.deepcopy(o) for o in load_fixture(FIXTURE) if o["kind"] in ("Pod", "Service")]
    pod["metadata"] = [{"name": "hello", "namespace": namespace}]           # metadata not a mapping
    svc["metadata"] = {"name": "hello", "namespace": 12345}                # namespace not a string
    named_int = copy.deepcopy(svc)
    named_int["metadata"] = {"name": ["hello"], "namespace": namespace, "labels": "oops"}  # name not a string
    return {"pods": [pod, "not an object", 42, None, ["hello"]], "services": [svc, named_int, "oops"],
            "endpoints": [{"kind": "Endpoints", "metadata": "hello"}], "endpointslices": [7]}


def _list_of(double: ApiDouble, plural: str, extra: list[Any], namespace: str | None = None):
    """A handler answering the double's own list for ``plural`` plus ``extra`` items."""
    group = "/apis/discovery.k8s.io/v1" if plural == "endpointslices" else "/api/v1"
    path = f"{group}/namespaces/{namespace}/{plural}" if namespace else f"{group}/{plural}"

    def handler(h) -> None:
        if urlsplit(h.path).path != path:          # e.g. the service proxy under the same prefix
            return h.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        code, body = double.answer(path, {})
        body["items"] = [*body["items"], *extra]
        h.send_json(code, body)
    return handler


def _serve_http(h) -> None:
    send_page(h, b"<html><body>It works!</body></html>")


def _double(cluster_wide: bool) -> ApiDouble:
    """The class: GOOD students correct, BAD's objects all malformed. With ``cluster_wide``
    False the grader may not list cluster-wide (403) and reads one namespace at a time."""
    double = ApiDouble([o for n, ns in enumerate(GOOD, 3) for o in _student(ns, n)])
    for ns in GOOD:
        double.route(f"/api/v1/namespaces/{ns}/services/hello:80/proxy", _serve_http)
    for plural, extra in _malformed(BAD).items():
        group = "/apis/discovery.k8s.io/v1" if plural == "endpointslices" else "/api/v1"
        if cluster_wide:
            double.route(f"{group}/{plural}", _list_of(double, plural, extra))
        else:
            double.route(f"{group}/{plural}", lambda h: h.send_json(403, {
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                "message": "forbidden: User \"grader\" cannot list resource at the cluster scope"}))
            double.route(f"{group}/namespaces/{BAD}/{plural}", _list_of(double, plural, extra, BAD))
    return double


def _api(double: ApiDouble, tmp_path: Path) -> Api:
    return Api(kubeconfig=str(double.write_kubeconfig(tmp_path / "kubeconfig")), retry=RetryPolicy(deadline=4.0))


def _outcomes(results, namespace: str) -> dict[tuple[str, str], tuple[Outcome, str | None]]:
    return {(r.exercise_id, c.check_id): (c.outcome, c.message.en if c.message else None)
            for r in results if r.namespace == namespace for c in r.checks}


@pytest.fixture(scope="module")
def alone(tmp_path_factory) -> dict[str, Any]:
    """Each good student's grade without the malformed neighbour: the reference."""
    tmp = tmp_path_factory.mktemp("alone")
    with ApiDouble([o for n, ns in enumerate(GOOD, 3) for o in _student(ns, n)]) as double:
        for ns in GOOD:
            double.route(f"/api/v1/namespaces/{ns}/services/hello:80/proxy", _serve_http)
        api = _api(double, tmp)
        try:
            run = grade_on(api, SETTINGS, [SETTINGS.exercise(e) for e in EXERCISES], GOOD, student=False, wait=0)
        finally:
            api.close()
    return {ns: _outcomes(run.results, ns) for ns in GOOD}


def test_the_reference_class_passes_everything(alone):
    for ns in GOOD:
        assert alone[ns], ns
        assert {o for o, _ in alone[ns].values()} == {Outcome.PASSED}, alone[ns]


@pytest.mark.parametrize("cluster_wide", [True, False], ids=["cluster-wide-list", "per-namespace-lists"])
def test_malformed_neighbour_changes_no_other_grade(alone, tmp_path, cluster_wide):
    with _double(cluster_wide) as double:
        api = _api(double, tmp_path)
        try:
            run = grade_on(api, SETTINGS, [SETTINGS.exercise(e) for e in EXERCISES], [GOOD[0], BAD, GOOD[1]],
                           student=False, wait=0)
        finally:
            api.close()
        if cluster_wide:
            assert any(r.startswith("/api/v1/pods?limit=") for r in double.requests), double.requests   # one page size or another
        else:
            assert any(r.startswith(f"/api/v1/namespaces/{BAD}/pods") for r in double.requests)
    for ns in GOOD:
        assert _outcomes(run.results, ns) == alone[ns], ns
    bad = _outcomes(run.results, BAD)
    assert len(bad) == 10
    # The malformed objects read as absent: the student is told what is missing, not that the grader broke.
    assert {o for (ex, _), (o, _) in bad.items() if ex == "ex1"} == {Outcome.FAILED}, bad
    if cluster_wide:   # nothing says which namespace they are in: no one is given them
        assert {o for o, _ in bad.values()} == {Outcome.FAILED}, bad
    else:              # bob's own list: his service (odd namespace field) is still his
        assert bad[("ex2", "service-exists")][0] is Outcome.PASSED
        assert bad[("ex2", "endpoints")][0] is Outcome.FAILED
    assert not any("internal grader error" in (m or "") for _, m in bad.values()), bad


UNSAFE = ["..", ".", "a/b", "/etc", "../../escape", "a\x00b", "x" * 300, "Upper", "ok\n", "\x1b]0;evil\x07",
          "", "-lead"]


def test_batch_reports_isolate_malformed_and_unsafe_namespaces(alone, tmp_path, capsys):
    out = tmp_path / "reports" / "DIR"
    with _double(True) as double:
        api = _api(double, tmp_path)
        try:
            code = grade_batch(api, SETTINGS, [SETTINGS.exercise(e) for e in EXERCISES],
                               [GOOD[0], *UNSAFE, BAD, GOOD[1]], out)
        finally:
            api.close()
        assert not any("\x00" in r or "escape" in r or "/etc" in r for r in double.requests), double.requests
    printed = capsys.readouterr().out
    assert code == 1                                   # bob failed; the unsafe names are errors
    assert "\x1b" not in printed and "\x00" not in printed
    # Nothing was written outside DIR, and inside it only the real namespaces have a directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubeconfig", "reports"]
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["DIR"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted([*GOOD, BAD])
    for ns in GOOD:
        doc = json.loads((out / ns / "results.json").read_text(encoding="utf-8"))
        assert doc["score"] == 20, ns
        assert {t["extra_data"]["outcome"] for t in doc["tests"]} == {"passed"}
    assert json.loads((out / BAD / "results.json").read_text(encoding="utf-8"))["score"] == 0
    rows = {r["namespace"]: r for r in csv.DictReader(io.StringIO((out / "gradebook.csv").read_text(encoding="utf-8")))}
    for ns in GOOD:
        assert (rows[ns]["ex1"], rows[ns]["ex2"], rows[ns]["total"], rows[ns]["errors"]) == ("10", "10", "20", "")
    unsafe_rows = {k: v for k, v in rows.items() if k not in (*GOOD, BAD)}
    assert len(unsafe_rows) == len(UNSAFE)              # one ERROR row each, none merged into a real one
    for name, row in unsafe_rows.items():
        assert row["errors"] == "ex1 ex2" and row["total"] == "", (name, row)
        assert "\x00" not in name and "\x1b" not in name and "\n" not in name and len(name) < 100


def test_an_unsafe_name_outside_a_batch_is_an_error_for_it_alone(alone, tmp_path):
    """``grade`` without --out (names from a pattern or selector come from the API server): a name
    that is not a namespace name is never put in a URL, and is an ERROR for itself only."""
    names = [GOOD[0], "a/b", "..", "a\x00b", GOOD[1]]
    with _double(True) as double:
        api = _api(double, tmp_path)
        try:
            run = grade_on(api, SETTINGS, [SETTINGS.exercise(e) for e in EXERCISES], names, student=False, wait=0)
        finally:
            api.close()
        assert not any("/a/b" in r or "/../" in r or "/namespaces/../" in r or "\x00" in r for r in double.requests)
    for ns in GOOD:
        assert _outcomes(run.results, ns) == alone[ns], ns
    for ns in names[1:4]:
        got = _outcomes(run.results, ns)
        assert got and {o for o, _ in got.values()} == {Outcome.ERROR}, (ns, got)
        assert all("is not a namespace name" in m for _, m in got.values())
