"""ex6 External access: Route on clusters serving route.openshift.io, Ingress elsewhere (API discovery)."""
from grader.checks import expect_admitted, expect_exposes_service, expect_host, expect_page, route_or_ingress


def _exposure(view, params):
    return route_or_ingress(view, params["route_name"])


def test_route_exists(view, params):
    _exposure(view, params)


def test_route_service(view, params):
    expect_exposes_service(view, _exposure(view, params), params["service_name"])


def test_route_admitted(view, params):
    expect_admitted(view, _exposure(view, params))


def test_route_host(view, params):
    expect_host(view, _exposure(view, params))


def test_page_answers(view, params, probe):
    expect_page(view, probe, _exposure(view, params), params["path"], params["expected_text"])
