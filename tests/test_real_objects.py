"""Grading on objects recorded from real clusters (tests/fixtures/real), served over HTTP by the API double: EndpointSlices first, Endpoints denied or not served, dual stack, named target ports, terminating pods, readiness gates, routes on clusters with several routers."""
from __future__ import annotations

import copy
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from grader.grading import grade_on
from grader.kube import Api, RetryPolicy
from grader.results import Outcome
from grader.settings import Settings
from tests.apidouble import ApiDouble, load_fixture
from tests.loopback import LoopbackServer, send_page

FIXTURES = Path(__file__).parent / "fixtures" / "real"
SETTINGS = Settings(lang="en", wait=0.0)
Graded = dict[str, tuple[Outcome, str]]


def fixture(name: str) -> list[dict[str, Any]]:
    return load_fixture(FIXTURES / name)


def _page(handler: BaseHTTPRequestHandler) -> None:
    """What the student's httpd answers (through the service proxy, or through a router)."""
    send_page(handler, b"<html><body>Hello from httpd</body></html>")


def grade(tmp_path: Path, objects: list[dict[str, Any]], exercise: str, *,
          setup: Callable[[ApiDouble], None] = lambda d: None, settings: Settings = SETTINGS,
          requests: list[str] | None = None) -> Graded:
    """check id → (outcome, English message) of ``exercise`` graded on namespace "student"."""
    with ApiDouble(objects) as double:
        double.route("/api/v1/namespaces/student/services/hello:80/proxy", _page)
        setup(double)
        kc = double.write_kubeconfig(tmp_path / "kubeconfig", namespace="student")
        api = Api(kubeconfig=str(kc), retry=RetryPolicy(deadline=3.0))
        try:
            run = grade_on(api, settings, [settings.exercise(exercise)], ["student"], student=False, wait=0)
        finally:
            api.close()
        if requests is not None:
            requests.extend(double.requests)
    [result] = run.results
    assert result.error is None, result.error
    return {c.check_id: (c.outcome, c.message.en if c.message else "") for c in result.checks}


def outcomes(graded: Graded) -> dict[str, Outcome]:
    return {k: v[0] for k, v in graded.items()}


def all_pass(graded: Graded) -> bool:
    return all(o is Outcome.PASSED for o in outcomes(graded).values())


def _kind(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


# --- EndpointSlices first, Endpoints only as a fallback ------------------------------------------
EX2 = "ex2-service-endpointslice.yaml"


@pytest.mark.parametrize("endpoints_access", ["served", "not-served-404", "forbidden-403"])
def test_ex2_full_marks_from_slices_whatever_endpoints_say(tmp_path, endpoints_access):
    def setup(double: ApiDouble) -> None:
        if endpoints_access == "not-served-404":
            double.unserve("endpoints")
        elif endpoints_access == "forbidden-403":
            double.deny("endpoints", 403)

    requests: list[str] = []
    graded = grade(tmp_path, fixture(EX2), "ex2", setup=setup, requests=requests)
    assert all_pass(graded), graded
    assert len(graded) == 5
    assert any("/apis/discovery.k8s.io/v1/namespaces/student/endpointslices" in r for r in requests)
    assert not any("/endpoints" in r.split("?")[0].rsplit("/", 1)[-1] for r in requests)   # never needed


def test_ex2_endpoints_are_compared_on_the_slices(tmp_path):
    """The slice, not the Endpoints object, is what is judged: a stale Endpoints is ignored, a
    slice pointing elsewhere fails and says it read EndpointSlices."""
    objects = fixture(EX2)
    _kind(objects, "Endpoints")["subsets"][0]["addresses"][0]["ip"] = "10.128.9.99"
    assert all_pass(grade(tmp_path, objects, "ex2"))

    objects = fixture(EX2)
    _kind(objects, "EndpointSlice")["endpoints"][0]["addresses"] = ["10.128.9.99"]
    outcome, message = grade(tmp_path, objects, "ex2")["endpoints"]
    assert outcome is Outcome.FAILED
    assert "(EndpointSlice) should be 10.128.2.15:8080 but are 10.128.9.99:8080" in message


def test_ex2_ready_absent_counts_as_ready(tmp_path):
    """conditions.ready absent (nil) means ready, per the EndpointSlice API."""
    objects = fixture(EX2)
    del _kind(objects, "EndpointSlice")["endpoints"][0]["conditions"]
    assert outcomes(grade(tmp_path, objects, "ex2"))["endpoints"] is Outcome.PASSED


@pytest.mark.parametrize("slices", ["forbidden-403", "not-served-404"])
def test_ex2_falls_back_to_endpoints_where_slices_cannot_be_read(tmp_path, slices):
    def setup(double: ApiDouble) -> None:
        if slices == "forbidden-403":
            double.deny("endpointslices", 403)
        else:
            double.unserve("endpointslices")

    requests: list[str] = []
    graded = grade(tmp_path, fixture(EX2), "ex2", setup=setup, requests=requests)
    assert all_pass(graded), graded
    assert any(r.startswith("/api/v1/namespaces/student/endpoints") for r in requests)

    objects = fixture(EX2)
    _kind(objects, "Endpoints")["subsets"][0]["ports"][0]["port"] = 80
    outcome, message = grade(tmp_path, objects, "ex2", setup=setup)["endpoints"]
    assert outcome is Outcome.FAILED and "(Endpoints) should be 10.128.2.15:8080 but are 10.128.2.15:80" in message


def test_ex2_neither_slices_nor_endpoints_readable_is_an_error(tmp_path):
    def setup(double: ApiDouble) -> None:
        double.deny("endpointslices", 403)
        double.deny("endpoints", 403)

    graded = grade(tmp_path, fixture(EX2), "ex2", setup=setup)
    outcome, message = graded["endpoints"]
    assert outcome is Outcome.ERROR
    assert "cannot read the endpoints of service “hello”" in message
    assert "EndpointSlice" in message and "Endpoints" in message
    others = {k: o for k, o in outcomes(graded).items() if k != "endpoints"}
    assert set(others.values()) == {Outcome.PASSED}


# --- dual stack ----------------------------------------------------------------------------------
def test_ex2_dual_stack_service_with_a_slice_per_family(tmp_path):
    assert all_pass(grade(tmp_path, fixture("ex2-dual-stack.yaml"), "ex2"))

    objects = [o for o in fixture("ex2-dual-stack.yaml")
               if not (o["kind"] == "EndpointSlice" and o["addressType"] == "IPv6")]
    outcome, message = grade(tmp_path, objects, "ex2")["endpoints"]
    assert outcome is Outcome.FAILED
    assert "should be 10.244.1.6:8080, [fd00:10:244:1::6]:8080 but are 10.244.1.6:8080" in message


def test_single_stack_service_on_dual_stack_pods_compares_its_own_family(tmp_path):
    objects = [o for o in fixture("ex2-dual-stack.yaml")
               if not (o["kind"] == "EndpointSlice" and o["addressType"] == "IPv6")]
    svc = _kind(objects, "Service")
    svc["spec"].update(ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", clusterIPs=[svc["spec"]["clusterIP"]])
    assert all_pass(grade(tmp_path, objects, "ex2"))


# --- named target ports ----------------------------------------------------------------------------
def _named(objects: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The recorded service with ``targetPort: <name>`` (the pod's containerPort 8080 is named http)."""
    objects = copy.deepcopy(objects)
    _kind(objects, "Service")["spec"]["ports"][0]["targetPort"] = name
    return objects


def test_ex2_named_target_port_resolves_through_the_pods(tmp_path):
    graded = grade(tmp_path, _named(fixture(EX2), "http"), "ex2")
    assert all_pass(graded), graded
    assert graded["service-port"][1] == "targetPort “http” resolves to 8080 on pod “hello”."


def test_ex2_unresolvable_named_target_port_fails_saying_so(tmp_path):
    outcome, message = grade(tmp_path, _named(fixture(EX2), "web"), "ex2")["service-port"]
    assert outcome is Outcome.FAILED
    assert "targetPort “web” cannot be resolved: no containerPort (TCP) of the selected pods is named so" in message


# --- terminating pods, slices split over several objects, named ports in ex5 ---------------------
EX5 = "ex5-scale-down-terminating-split-slices.yaml"


def test_ex5_mid_scale_down_passes(tmp_path):
    graded = grade(tmp_path, fixture(EX5), "ex5")
    assert all_pass(graded), graded
    assert graded["service-port"][1] == ("targetPort “http” resolves to 8080 on pod “hello-rc-4xk8d”, "
                                         "“hello-rc-9pl2v”, “hello-rc-c7m4q”.")


def test_ex5_terminating_pod_still_ready_in_the_slice_fails(tmp_path):
    """A slice that still routes to the pod being deleted is not what the controller writes:
    the terminating pod is no longer expected, so it shows as an extra endpoint."""
    objects = fixture(EX5)
    slice_ = _kind(objects, "EndpointSlice", "hello-rc-q5n7r")
    slice_["endpoints"][1]["conditions"] = {"ready": True, "serving": True, "terminating": False}
    outcome, message = grade(tmp_path, objects, "ex5")["endpoints"]
    assert outcome is Outcome.FAILED and "10.128.2.22:8080" in message.split("but are")[1]
    assert "10.128.2.22" not in message.split("but are")[0]


def test_ex5_ready_replicas_message_names_a_live_pod(tmp_path):
    objects = fixture(EX5)
    _kind(objects, "ReplicationController")["status"]["readyReplicas"] = 2
    pod = _kind(objects, "Pod", "hello-rc-c7m4q")
    pod["status"]["conditions"][1].update(status="False", reason="ContainersNotReady")
    outcome, message = grade(tmp_path, objects, "ex5")["rc-ready"]
    assert outcome is Outcome.FAILED and "has 2/3 ready replicas" in message
    assert "hello-rc-c7m4q" in message and "hello-rc-tz6wn" not in message


# --- readiness is the Ready condition ------------------------------------------------------------
def test_ex1_readiness_gate_false_is_not_ready(tmp_path):
    graded = grade(tmp_path, fixture("ex1-readiness-gate-false.yaml"), "ex1")
    outcome, message = graded["pod-ready"]
    assert outcome is Outcome.FAILED
    assert "readiness gate “www.example.com/feature-1” is False" in message
    assert "ReadinessGatesNotReady" in message
    assert {k for k, o in outcomes(graded).items() if o is not Outcome.PASSED} == {"pod-ready"}


def test_ex2_pod_held_by_a_readiness_gate_is_not_expected_in_the_endpoints(tmp_path):
    objects = [o for o in fixture(EX2) if o["kind"] != "Pod"] + fixture("ex1-readiness-gate-false.yaml")
    for ep in _kind(objects, "EndpointSlice")["endpoints"]:
        ep["conditions"] = {"ready": False, "serving": False, "terminating": False}
    outcome, message = grade(tmp_path, objects, "ex2")["endpoints"]
    assert outcome is Outcome.FAILED and "no ready pod is behind service “hello”" in message


# --- routes on clusters with several routers --------------------------------------------------------
@pytest.fixture
def router() -> Iterator[LoopbackServer]:
    """A loopback stand-in for the cluster's router, answering the student's page."""
    with LoopbackServer(_page) as r:
        yield r


def test_ex6_admitted_by_the_default_router_while_a_shard_refuses(tmp_path, router):
    settings = Settings(lang="en", wait=0.0, router=router.address, route_domain="apps.example.com")
    graded = grade(tmp_path, fixture("ex6-route-two-routers.yaml"), "ex6", settings=settings)
    assert all_pass(graded), graded
    assert router.seen == ["hello-student.apps.example.com"]


def test_ex6_refused_for_an_older_route_in_the_same_namespace(tmp_path, router):
    """The router gives the host to the namespace's own older route: "hello" is not admitted (and
    the message no longer blames another namespace), while the host is served by the student's own
    namespace, so its page is judged."""
    settings = Settings(lang="en", wait=0.0, router=router.address, route_domain="apps.example.com")
    graded = grade(tmp_path, fixture("ex6-route-refused-older-route-same-namespace.yaml"), "ex6", settings=settings)
    outcome, message = graded["route-admitted"]
    assert outcome is Outcome.FAILED
    assert ("router “default” refused it: “HostAlreadyClaimed”: "
            "“route student/hello-old has host hello-student.apps.example.com”") in message
    assert "another namespace" not in message
    assert graded["page-answers"][0] is Outcome.PASSED
    assert router.seen == ["hello-student.apps.example.com"]


def test_ex6_refused_by_every_router_names_each_router_and_never_requests_the_host(tmp_path, router):
    objects = fixture("ex6-route-two-routers.yaml")
    default = _kind(objects, "Route")["status"]["ingress"][0]
    default["conditions"] = [{"lastTransitionTime": "2024-05-14T10:00:00Z", "status": "False", "type": "Admitted",
                              "reason": "HostAlreadyClaimed",
                              "message": "a route in another namespace holds host hello-student.apps.example.com"}]
    settings = Settings(lang="en", wait=0.0, router=router.address, route_domain="apps.example.com")
    graded = grade(tmp_path, objects, "ex6", settings=settings)
    outcome, message = graded["route-admitted"]
    assert outcome is Outcome.FAILED
    assert "router “default” refused it: “HostAlreadyClaimed”" in message
    assert "router “internal” refused it: “HostAlreadyClaimed”" in message
    outcome, message = graded["page-answers"]
    assert outcome is Outcome.FAILED
    assert "is already claimed: router “default” did not admit it" in message
    assert router.seen == []
