"""ex2 Service: one check per entry of exercise.yaml; fixtures come from the grader's runner."""
from grader.checks import (PassedWithNote, expect_endpoints_exactly, expect_http_answer,
                           expect_selects_running_pod, expect_service_port, expect_service_type, need,
                           selected_pods)
from grader.i18n import t


def _service(view, params):
    return need(view, "Service", params["service_name"])


def test_service_exists(view, params):
    expect_service_type(view, _service(view, params), params["service_type"])


def test_service_port(view, params):
    note = expect_service_port(view, _service(view, params), params["port"], params["target_port"])
    if note is not None:   # a named targetPort: say how it resolved
        raise PassedWithNote(note)


def test_selector_matches(view, params):
    expect_selects_running_pod(view, _service(view, params))


def test_endpoints(view, params):
    svc = _service(view, params)
    expect_endpoints_exactly(view, svc, selected_pods(view, svc), params["target_port"])


def test_service_answers(view, params, probe):
    name, port, path = params["service_name"], params["port"], params["proxy_path"]
    _service(view, params)
    answer = probe.service(view.namespace, name, port, path)
    expect_http_answer(answer, t("Service {s}:{p}", "service {s}:{p}", s=name, p=port),
                   f"oc get --raw /api/v1/namespaces/{view.namespace}/services/{name}:{port}/proxy{path}")
