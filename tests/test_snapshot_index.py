"""View.get through the snapshot's name index: the object a scan would find, for a class of 1,000."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from grader.checks import storage
from grader.checks.base import name_of
from grader.errors import CheckFailed
from grader.kube import Api
from grader.snapshot import Snapshot, View, metadata_of
from tests.apidouble import ApiDouble, load_fixture

FIXTURE = Path(__file__).parent / "fixtures" / "real" / "ex7-complete-namespace.yaml"
CLASS = 1000


def _recorded(kind: str) -> dict[str, Any]:
    return next(o for o in load_fixture(FIXTURE) if o.get("kind") == kind)


def _student(k: int, pv_shape: dict[str, Any], pvc_shape: dict[str, Any]) -> list[dict[str, Any]]:
    """Student k's claim "db-data", bound to volume pv-k, which points back at it (as recorded)."""
    ns, uid = f"student-{k:04d}", f"uid-{k:04d}"
    pvc, pv = copy.deepcopy(pvc_shape), copy.deepcopy(pv_shape)
    pvc["metadata"].update(namespace=ns, uid=uid)
    pvc["spec"]["volumeName"] = f"pv-{k:04d}"
    pv["metadata"]["name"] = f"pv-{k:04d}"
    pv["spec"]["claimRef"].update(namespace=ns, uid=uid)
    return [pvc, pv]


def _outcome(view: View, pvc: dict[str, Any]) -> str | None:
    try:
        storage.expect_pvc_bound(view, pvc)
        return None
    except CheckFailed as e:
        return f"{e.message.ja}|{e.message.en}|{e.command}"


def _scan(view: View, name: Any) -> dict[str, Any] | None:
    """What expect_pvc_bound found before the index: the first PV whose name_of equals."""
    return next((v for v in view.list("PersistentVolume") if name_of(v) == name), None)


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory):
    pv, pvc = _recorded("PersistentVolume"), _recorded("PersistentVolumeClaim")
    objects = [o for k in range(CLASS) for o in _student(k, pv, pvc)]
    odd = [  # malformed names and a duplicate, among the class's volumes
        {"kind": "PersistentVolume", "metadata": "junk"},
        {"kind": "PersistentVolume"},
        {"kind": "PersistentVolume", "metadata": {"name": {"nested": "pv-0007"}}},
        {"kind": "PersistentVolume", "metadata": {"name": ["pv-0008"]}},
        {"kind": "PersistentVolume", "metadata": {"name": "pv-dup"}, "spec": {"capacity": {"storage": "9Gi"}}},
        {"kind": "PersistentVolume", "metadata": {"name": "pv-dup"}, "spec": {"capacity": {"storage": "1Mi"}}},
    ]
    with ApiDouble(odd[:3] + objects + odd[3:]) as double:
        api = Api(kubeconfig=str(double.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")))
        yield double, Snapshot(api, [f"student-{k:04d}" for k in range(CLASS)])


def test_every_student_gets_their_own_volume_and_the_same_outcome_as_a_scan(klass) -> None:
    double, snap = klass
    for k in range(CLASS):
        view = snap.view(f"student-{k:04d}")
        pv = view.get("PersistentVolume", f"pv-{k:04d}")
        assert metadata_of(pv)["name"] == f"pv-{k:04d}" and pv is _scan(view, f"pv-{k:04d}")
        pvc = view.get("PersistentVolumeClaim", "db-data")
        assert metadata_of(pvc)["namespace"] == f"student-{k:04d}"
        assert _outcome(view, pvc) is None
    assert sum("persistentvolumes" in r for r in double.requests) == 1   # listed once for the class


def test_missing_wrong_and_duplicate_volumes_fail_as_before(klass) -> None:
    _, snap = klass
    view = snap.view("student-0003")
    pvc = copy.deepcopy(view.get("PersistentVolumeClaim", "db-data"))
    for volume in ("pv-gone", "pv-0004", "pv-dup", "pv-0007", "pv-0008"):
        pvc["spec"]["volumeName"] = volume
        assert view.get("PersistentVolume", volume) is _scan(view, volume)
        outcome = _outcome(view, pvc)
        assert outcome is not None, volume
    assert view.get("PersistentVolume", "pv-dup")["spec"]["capacity"]["storage"] == "9Gi"   # the first of two
    pvc["spec"]["volumeName"] = "pv-gone"
    assert "pv-gone" in _outcome(view, pvc) and "does not exist" in _outcome(view, pvc)
    assert view.get("PersistentVolume", {"nested": "pv-0007"}) is not None   # a non-string name: compared as before
    assert view.get("PersistentVolume", "") is None


def test_refresh_reads_and_indexes_again(klass) -> None:
    double, snap = klass
    view = snap.view("student-0001")
    assert view.get("PersistentVolume", "pv-late") is None
    double.add({"kind": "PersistentVolume", "metadata": {"name": "pv-late"}})
    assert view.get("PersistentVolume", "pv-late") is None   # same observation
    snap.refresh()
    assert metadata_of(view.get("PersistentVolume", "pv-late"))["name"] == "pv-late"
    assert view.get("PersistentVolume", "pv-0001") is _scan(view, "pv-0001")
