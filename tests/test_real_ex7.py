"""ex7 (the capstone) graded on a complete namespace recorded as a real OpenShift 4.x API server returns it (tests/fixtures/real/ex7-*.yaml), served over HTTP by the API double to the real client: full marks, a rollout's terminating pod, Endpoints forbidden, an unresolvable named targetPort, and the database password never shown."""
from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from grader.grading import grade_on
from grader.kube import Api, RetryPolicy
from grader.reports import render_console, to_json
from grader.results import Outcome, RunResult
from grader.settings import Settings
from tests.apidouble import ApiDouble, load_fixture
from tests.loopback import LoopbackServer, send_page

FIXTURES = Path(__file__).parent / "fixtures" / "real"
COMPLETE = "ex7-complete-namespace.yaml"
ROLLOUT = "ex7-rollout-old-pod-terminating.yaml"
HOST = "web-student.apps.example.com"
PAGE_TEXT = "Hello from the capstone"
SENTINEL = "Sentinel-db-pass-9Qx7Lm"    # db-secret's password in the fixture
CHECKS = ["front-replicas", "front-page-mount", "front-service", "front-route", "front-page",
          "db-secret", "db-env", "db-storage", "db-ready"]
Graded = dict[str, tuple[Outcome, str]]


def fixture(*names: str) -> list[dict[str, Any]]:
    return [o for name in names for o in load_fixture(FIXTURES / name)]


def _kind(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def router_answering(status: int = 200) -> LoopbackServer:
    """A loopback stand-in for the cluster's default router: answers the route's host with the
    ConfigMap's page (as httpd serves it from the mount), or a 503 when it has no endpoint."""
    if status == 200:
        body = ("<!DOCTYPE html>\n<html><head><title>Capstone</title></head>\n"
                f"<body><h1>{PAGE_TEXT}</h1></body></html>\n").encode()
    else:   # what the OpenShift router answers for a route without ready endpoints
        body = b"<html><body><h1>Application is not available</h1></body></html>"
    return LoopbackServer(lambda h: send_page(h, body, status))


@pytest.fixture
def router() -> Iterator[LoopbackServer]:
    with router_answering() as r:
        yield r


def run(tmp_path: Path, objects: list[dict[str, Any]], router: LoopbackServer, *,
        setup: Callable[[ApiDouble], None] = lambda d: None, requests: list[str] | None = None) -> RunResult:
    """ex7 graded on namespace "student" of the double, the route's page through ``router``."""
    settings = Settings(lang="en", wait=0.0, router=router.address, route_domain="apps.example.com")
    with ApiDouble(objects) as double:
        setup(double)
        kc = double.write_kubeconfig(tmp_path / "kubeconfig", namespace="student")
        api = Api(kubeconfig=str(kc), retry=RetryPolicy(deadline=3.0))
        try:
            result = grade_on(api, settings, [settings.exercise("ex7")], ["student"], student=False, wait=0)
        finally:
            api.close()
        if requests is not None:
            requests.extend(double.requests)
    [one] = result.results
    assert one.error is None, one.error
    return result


def graded(result: RunResult) -> Graded:
    """check id → (outcome, English message)."""
    return {c.check_id: (c.outcome, c.message.en if c.message else "") for c in result.results[0].checks}


def assert_full_marks(result: RunResult) -> Graded:
    got = graded(result)
    assert list(got) == CHECKS
    assert {k: o for k, (o, _) in got.items()} == {k: Outcome.PASSED for k in CHECKS}, got
    r = result.results[0]
    assert r.score == r.max_score == 18
    assert result.exit_code == 0
    return got


RESOLVED = "targetPort “http” resolves to 8080 on pod “web-6d9f7c8b5b-x2k4p”, “web-6d9f7c8b5b-q7n9z”."


# --- the complete namespace ------------------------------------------------------------------
def test_complete_namespace_gets_full_marks(tmp_path, router):
    requests: list[str] = []
    got = assert_full_marks(run(tmp_path, fixture(COMPLETE), router, requests=requests))
    assert got["front-service"][1] == RESOLVED
    assert router.seen == [HOST]
    paths = [r.split("?")[0] for r in requests]
    assert "/apis/discovery.k8s.io/v1/namespaces/student/endpointslices" in paths
    assert "/api/v1/namespaces/student/endpoints" not in paths   # slices first; Endpoints never needed
    assert "/api/v1/persistentvolumes" in paths                    # the PV's claimRef and size judged too


def test_rollout_tail_with_an_old_replicaset_pod_terminating_gets_full_marks(tmp_path, router):
    """The old ReplicaSet's last pod is Terminating (deletionTimestamp, still Ready) and its
    endpoint ready=false/serving=true/terminating=true in a second slice: it is neither one of the
    front end's replicas nor expected in the endpoints, so the rollout's tail is not a fault."""
    objects = fixture(COMPLETE, ROLLOUT)
    assert sum(1 for o in objects if o["kind"] == "Pod" and o["metadata"]["labels"].get("app") == "web") == 3
    got = assert_full_marks(run(tmp_path, objects, router))
    assert got["front-service"][1] == RESOLVED            # the terminating pod is not among those resolved


def test_rollout_terminating_pod_still_routed_fails_front_service(tmp_path, router):
    """Control for the test above: were the terminating pod's endpoint still ready, the service
    would route to a pod being deleted, which the grader shows as an extra endpoint."""
    objects = fixture(COMPLETE, ROLLOUT)
    _kind(objects, "EndpointSlice", "web-tz4mv")["endpoints"][0]["conditions"] = {
        "ready": True, "serving": True, "terminating": False}
    outcome, message = graded(run(tmp_path, objects, router))["front-service"]
    assert outcome is Outcome.FAILED
    want, are = message.split(" but are ")
    assert "(EndpointSlice) should be 10.128.2.41:8080, 10.131.0.23:8080" in want
    assert "10.129.2.48:8080" in are and "10.129.2.48" not in want


def test_endpoints_forbidden_still_full_marks(tmp_path, router):
    def setup(double: ApiDouble) -> None:
        double.deny("endpoints", 403)

    requests: list[str] = []
    got = assert_full_marks(run(tmp_path, fixture(COMPLETE), router, setup=setup, requests=requests))
    assert got["front-service"][1] == RESOLVED
    assert any("/endpointslices" in r for r in requests)


# --- a named targetPort the pods do not have -------------------------------------------------
def _pods_name_their_port(objects: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The front end's containerPort 8080 named ``name`` everywhere (Deployment, ReplicaSets, pods),
    while the Service still says ``targetPort: http``. The EndpointSlice controller cannot resolve
    the port on any pod, so it writes the endpoints with no port (kubernetes/kubernetes
    pkg/controller/endpointslice: getEndpointPorts skips a port FindPort cannot resolve)."""
    objects = copy.deepcopy(objects)
    for o in objects:
        spec = o.get("spec") or {}
        pod_spec = spec if o["kind"] == "Pod" else (spec.get("template") or {}).get("spec")
        for c in (pod_spec or {}).get("containers", []):
            for p in c.get("ports", []):
                if p.get("containerPort") == 8080:
                    p["name"] = name
    _kind(objects, "EndpointSlice", "web-8kq2r")["ports"] = []
    _kind(objects, "Endpoints", "web")["subsets"] = []
    return objects


def test_pods_naming_their_port_web_fail_front_service_saying_http_cannot_be_resolved(tmp_path):
    dead = router_answering(503)            # the router has no endpoint to send the page request to
    try:
        result = run(tmp_path, _pods_name_their_port(fixture(COMPLETE), "web"), dead)
    finally:
        dead.close()
    got = graded(result)
    outcome, message = got["front-service"]
    assert outcome is Outcome.FAILED
    assert message.startswith("service “web” does not forward 80→8080: ")
    assert ("targetPort “http” cannot be resolved: no containerPort (TCP) of the selected pods is named so "
            "(2 live pods selected).") in message
    outcome, message = got["front-page"]
    assert outcome is Outcome.FAILED and "does not answer HTTP 200 (status 503" in message
    assert {k for k, (o, _) in got.items() if o is not Outcome.PASSED} == {"front-service", "front-page"}
    assert result.exit_code == 1


def _service_port_unnamed(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same namespace with the Service's port left unnamed (its targetPort still "http"), as
    `oc create service`/`kubectl expose` without --name write it; the route keeps
    ``targetPort: http``, which is what `oc expose svc web` writes for it (the service's targetPort
    when the port has no name). The controllers then write port name "" in slices and Endpoints."""
    objects = copy.deepcopy(objects)
    del _kind(objects, "Service", "web")["spec"]["ports"][0]["name"]
    _kind(objects, "EndpointSlice", "web-8kq2r")["ports"][0]["name"] = ""
    del _kind(objects, "Endpoints", "web")["subsets"][0]["ports"][0]["name"]
    return objects


def test_route_target_port_naming_only_the_services_target_port_fails_front_route(tmp_path):
    dead = router_answering(503)            # what the real router answers: no endpoint matches "http"
    try:
        got = graded(run(tmp_path, _service_port_unnamed(fixture(COMPLETE)), dead))
    finally:
        dead.close()
    assert got["front-page"][0] is Outcome.FAILED           # holds today
    assert got["front-service"][0] is Outcome.PASSED        # the service itself is right
    assert got["front-route"][0] is Outcome.FAILED          # the router has no endpoint port named "http"
    assert "matches neither a port name of service" in got["front-route"][1]


def test_route_target_port_as_the_pods_port_number_passes_when_the_service_names_it(tmp_path, router):
    """``targetPort: 8080`` on the route matches the endpoints' number, which the service's
    ``targetPort: http`` resolves to: the router serves it, and so does the grader."""
    objects = _service_port_unnamed(fixture(COMPLETE))
    _kind(objects, "Route", "web")["spec"]["port"]["targetPort"] = 8080
    assert_full_marks(run(tmp_path, objects, router))


# --- the database password is never shown ------------------------------------------------------
def _leaks(result: RunResult) -> list[str]:
    """Every report form in which the sentinel (or its base64 form) appears."""
    encoded = base64.b64encode(SENTINEL.encode()).decode()
    forms = {f"console-{lang}": render_console(result.results, lang, color=False) for lang in ("en", "ja")}
    forms["json"] = json.dumps(to_json(result.results, "en"), ensure_ascii=False)
    return [k for k, text in forms.items() if SENTINEL in text or encoded in text]


def test_secret_value_never_appears_in_console_or_json(tmp_path, router):
    objects = fixture(COMPLETE)
    assert SENTINEL in json.dumps(_kind(objects, "Secret", "db-secret"))    # the server does return it
    result = run(tmp_path, objects, router)
    assert_full_marks(result)
    assert _leaks(result) == []


def test_password_pasted_as_a_literal_env_value_fails_without_showing_it(tmp_path, router):
    """The student pastes the password under value: instead of secretKeyRef; the failure says so
    without quoting the value, and the Secret checks that still pass do not show it either."""
    objects = fixture(COMPLETE)
    env = _kind(objects, "Pod", "db")["spec"]["containers"][0]["env"]
    env[0] = {"name": "POSTGRESQL_ADMIN_PASSWORD", "value": SENTINEL}
    result = run(tmp_path, objects, router)
    got = graded(result)
    assert got["db-env"][0] is Outcome.FAILED
    assert "POSTGRESQL_ADMIN_PASSWORD" in got["db-env"][1]
    assert {k for k, (o, _) in got.items() if o is not Outcome.PASSED} == {"db-env"}
    assert _leaks(result) == []
