"""ex7 Capstone: the check library composed over a front end (Deployment or RC) and a database pod."""
import posixpath

from grader.checks import (PassedWithNote, expect_admitted, expect_endpoints_exactly, expect_env_from, expect_exposes_service,
                           expect_host, expect_key_nonempty, expect_mount, expect_page, expect_pod_ready,
                           expect_pvc_bound, expect_pvc_request, expect_ready_replicas, expect_replicas,
                           expect_service_port, mounts, need, need_workload, owned_pods, route_or_ingress)


def _front(view, params):
    return need_workload(view, params["front_name"])


def test_front_replicas(view, params):
    front = _front(view, params)
    expect_replicas(view, front, params["front_replicas"])
    expect_ready_replicas(view, front, params["front_replicas"])


def test_front_page_mount(view, params):
    front = _front(view, params)
    page = posixpath.join(params["docroot"], params["page_key"])   # a subPath mount of the one file is fine too
    if (page, ("ConfigMap", params["page_configmap"])) not in [(p, s) for _, p, s in mounts(front)]:
        expect_mount(view, front, params["page_configmap"], params["docroot"], kind="ConfigMap")
    expect_key_nonempty(view, need(view, "ConfigMap", params["page_configmap"]), params["page_key"])


def test_front_service(view, params):
    svc = need(view, "Service", params["service_name"])
    pods = owned_pods(view, _front(view, params))
    note = expect_service_port(view, svc, params["port"], params["target_port"])
    expect_endpoints_exactly(view, svc, pods, params["target_port"])
    if note is not None:   # a named targetPort: say how it resolved, once everything passed
        raise PassedWithNote(note)


def test_front_route(view, params):
    route = route_or_ingress(view, params["route_name"])
    expect_exposes_service(view, route, params["service_name"])
    expect_admitted(view, route)
    expect_host(view, route)


def test_front_page(view, params, probe):
    expect_page(view, probe, route_or_ingress(view, params["route_name"]), params["path"], params["page_text"])


def test_db_secret(view, params):
    expect_key_nonempty(view, need(view, "Secret", params["db_secret"]), params["db_secret_key"], secret=True)


def test_db_env(view, params):
    expect_env_from(view, need(view, "Pod", params["db_pod"]), params["db_password_var"], "Secret",
                    params["db_secret"], params["db_secret_key"])


def test_db_storage(view, params):
    pvc = need(view, "PersistentVolumeClaim", params["db_pvc"])
    expect_pvc_request(view, pvc, params["db_pvc_size"], params["db_access_mode"])
    expect_pvc_bound(view, pvc)
    expect_mount(view, need(view, "Pod", params["db_pod"]), params["db_pvc"], params["db_data_path"])


def test_db_ready(view, params):
    expect_pod_ready(view, need(view, "Pod", params["db_pod"]))
