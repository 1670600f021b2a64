"""ex3 Storage: one check per entry of exercise.yaml; fixtures come from the grader's runner."""
from grader.checks import expect_mount, expect_pod_ready, expect_pvc_bound, expect_pvc_request, need


def test_pvc_exists(view, params):
    need(view, "PersistentVolumeClaim", params["pvc_name"])


def test_pvc_request(view, params):
    pvc = need(view, "PersistentVolumeClaim", params["pvc_name"])
    expect_pvc_request(view, pvc, params["pvc_size"], params["access_mode"])


def test_pvc_bound(view, params):
    expect_pvc_bound(view, need(view, "PersistentVolumeClaim", params["pvc_name"]))


def test_pod_mount(view, params):
    expect_mount(view, need(view, "Pod", params["pod_name"]), params["pvc_name"], params["mount_path"])


def test_pod_ready(view, params):
    expect_pod_ready(view, need(view, "Pod", params["pod_name"]))
