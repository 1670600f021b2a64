"""Admission the sandbox now does as a real cluster does (issue 11): a bound claim's spec is
immutable but for growth where allowed, immutable ConfigMaps/Secrets, and pvc-protection."""
from __future__ import annotations

import json

import pytest

HTTPD = "quay.io/centos7/httpd-24-centos7"


@pytest.fixture(scope="module")
def core(kubeconfig):
    from kubernetes import client, config
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _refused(call, *args) -> tuple[int, str]:
    from kubernetes.client import ApiException
    with pytest.raises(ApiException) as exc:
        call(*args)
    return exc.value.status, json.loads(exc.value.body)["message"]


def _claim(core, ns: str, name: str = "data") -> None:
    core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})


def test_bound_claim_spec_is_immutable(core, cluster, fresh_ns):
    _claim(core, fresh_ns)
    cluster.settle()
    assert core.read_namespaced_persistent_volume_claim("data", fresh_ns).status.phase == "Bound"
    code, msg = _refused(core.patch_namespaced_persistent_volume_claim, "data", fresh_ns,
                         {"spec": {"accessModes": ["ReadWriteMany"]}})
    assert code == 422 and msg == ('PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after '
                                   "creation except resources.requests and volumeAttributesClassName for bound claims")
    code, msg = _refused(core.patch_namespaced_persistent_volume_claim, "data", fresh_ns,
                         {"spec": {"resources": {"requests": {"storage": "500Mi"}}}})
    assert code == 422 and "field can not be less than previous value" in msg
    code, msg = _refused(core.patch_namespaced_persistent_volume_claim, "data", fresh_ns,
                         {"spec": {"resources": {"requests": {"storage": "2Gi"}}}})
    assert code == 403 and "the storageclass that provisions the pvc must support resize" in msg


def test_immutable_configmap_and_secret(core, fresh_ns):
    core.create_namespaced_config_map(fresh_ns, {"metadata": {"name": "cfg"}, "data": {"a": "1"}, "immutable": True})
    code, msg = _refused(core.patch_namespaced_config_map, "cfg", fresh_ns, {"data": {"a": "2"}})
    assert code == 422 and msg == 'ConfigMap "cfg" is invalid: data: Forbidden: field is immutable when `immutable` is set'
    code, msg = _refused(core.patch_namespaced_config_map, "cfg", fresh_ns, {"immutable": False})
    assert code == 422 and "immutable: Forbidden" in msg
    core.patch_namespaced_config_map("cfg", fresh_ns, {"metadata": {"labels": {"x": "y"}}})   # metadata may change
    core.create_namespaced_secret(fresh_ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}, "immutable": True})
    code, _ = _refused(core.patch_namespaced_secret, "s", fresh_ns, {"stringData": {"k": "w"}})
    assert code == 422


def test_claim_in_use_waits_for_its_pod(core, cluster, fresh_ns):
    _claim(core, fresh_ns)
    core.create_namespaced_pod(fresh_ns, {"metadata": {"name": "db"}, "spec": {
        "containers": [{"name": "c", "image": HTTPD, "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
    cluster.settle()
    assert core.read_namespaced_persistent_volume_claim("data", fresh_ns).metadata.finalizers == ["kubernetes.io/pvc-protection"]
    core.delete_namespaced_persistent_volume_claim("data", fresh_ns)
    cluster.settle()
    pvc = core.read_namespaced_persistent_volume_claim("data", fresh_ns)   # still there, Terminating
    assert pvc.metadata.deletion_timestamp is not None
    core.delete_namespaced_pod("db", fresh_ns, grace_period_seconds=0)
    cluster.settle()
    assert [c.metadata.name for c in core.list_namespaced_persistent_volume_claim(fresh_ns).items] == []


def test_bound_volume_waits_for_its_claim(core, cluster, fresh_ns):
    """pv-protection: a deleted volume stays while a claim holds it, and goes once released."""
    pv_name = f"pv-{fresh_ns}"
    core.create_persistent_volume({"metadata": {"name": pv_name}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "", "hostPath": {"path": "/tmp/x"}}})
    core.create_namespaced_persistent_volume_claim(fresh_ns, {"metadata": {"name": "data"}, "spec": {
        "storageClassName": "", "volumeName": pv_name, "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}})
    cluster.settle()
    pv = core.read_persistent_volume(pv_name)
    assert pv.status.phase == "Bound" and pv.metadata.finalizers == ["kubernetes.io/pv-protection"]
    core.delete_persistent_volume(pv_name)
    cluster.settle()
    assert core.read_persistent_volume(pv_name).metadata.deletion_timestamp is not None   # Terminating
    core.delete_namespaced_persistent_volume_claim("data", fresh_ns)
    cluster.settle()
    assert pv_name not in [v.metadata.name for v in core.list_persistent_volume().items]
