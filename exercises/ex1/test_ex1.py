"""ex1 Pod: one check per entry of exercise.yaml; fixtures come from the grader's runner."""
from grader.checks import expect_container_port, expect_image, expect_labels, expect_pod_ready, need


def test_pod_exists(view, params):
    need(view, "Pod", params["pod_name"])


def test_pod_label(view, params):
    expect_labels(view, need(view, "Pod", params["pod_name"]), params["labels"])


def test_pod_image(view, params):
    expect_image(view, need(view, "Pod", params["pod_name"]), params["image_contains"])


def test_pod_port(view, params):
    expect_container_port(view, need(view, "Pod", params["pod_name"]), params["container_port"])


def test_pod_ready(view, params):
    expect_pod_ready(view, need(view, "Pod", params["pod_name"]))
