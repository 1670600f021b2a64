"""ex4 ConfigMap and Secret: one check per entry of exercise.yaml. No check ever quotes a Secret's value."""
from grader.checks import expect_env_from, expect_key_nonempty, expect_pod_ready, expect_secret_type, need


def test_configmap_key(view, params):
    expect_key_nonempty(view, need(view, "ConfigMap", params["configmap_name"]), params["configmap_key"])


def test_secret_key(view, params):
    secret = need(view, "Secret", params["secret_name"])
    expect_secret_type(view, secret, params["secret_type"])
    expect_key_nonempty(view, secret, params["secret_key"], secret=True)


def test_env_from_configmap(view, params):
    key = params["configmap_key"]
    expect_env_from(view, need(view, "Pod", params["pod_name"]), key, "ConfigMap", params["configmap_name"], key)


def test_env_from_secret(view, params):
    key = params["secret_key"]
    expect_env_from(view, need(view, "Pod", params["pod_name"]), key, "Secret", params["secret_name"], key)


def test_pod_ready(view, params):
    expect_pod_ready(view, need(view, "Pod", params["pod_name"]))
