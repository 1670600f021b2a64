"""ex5 Replication: one check per entry of exercise.yaml; the controller's pods are found by ownerReferences."""
from grader.checks import (PassedWithNote, expect_endpoints_exactly, expect_ready_replicas, expect_replicas,
                           expect_selector_matches_template, expect_service_port, expect_spread,
                           expect_image, need, need_workload, owned_pods)


def _rc(view, params):
    return need_workload(view, params["rc_name"], ("ReplicationController",))


def test_rc_replicas(view, params):
    expect_replicas(view, _rc(view, params), params["replicas"])


def test_rc_selector(view, params):
    expect_selector_matches_template(view, _rc(view, params), params["selector"])


def test_rc_image(view, params):
    expect_image(view, _rc(view, params), params["image_contains"])


def test_rc_ready(view, params):
    expect_ready_replicas(view, _rc(view, params), params["replicas"])


def test_service_port(view, params):
    svc = need(view, "Service", params["service_name"])
    note = expect_service_port(view, svc, params["port"], params["target_port"])
    if note is not None:   # a named targetPort: say how it resolved
        raise PassedWithNote(note)


def test_endpoints(view, params):
    rc = _rc(view, params)
    svc = need(view, "Service", params["service_name"])
    expect_endpoints_exactly(view, svc, owned_pods(view, rc), params["target_port"])


def test_spread(view, params):
    expect_spread(view, owned_pods(view, _rc(view, params)))
