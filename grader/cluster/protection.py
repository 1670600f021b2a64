"""Admission a real cluster does to storage and configuration objects after they exist.

- A bound claim's spec is immutable except ``resources.requests`` (pkg/apis/core/validation
  ``ValidatePersistentVolumeClaimUpdate``: ``spec: Forbidden: spec is immutable after creation
  except resources.requests and volumeAttributesClassName for bound claims``); a request may not
  shrink (``field can not be less than previous value``), and may grow only where the claim's
  StorageClass has ``allowVolumeExpansion`` (the PersistentVolumeClaimResize admission plugin:
  ``only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc
  must support resize``).
- ConfigMaps and Secrets with ``immutable: true`` keep their data and stay immutable
  (``ValidateConfigMapUpdate``/``ValidateSecretUpdate``: ``field is immutable when `immutable` is
  set``).
- Claims carry the ``kubernetes.io/pvc-protection`` finalizer (the StorageObjectInUseProtection
  admission plugin adds it); a claim deleted while a pod uses it stays, Terminating with its
  ``deletionTimestamp``, until the last such pod is gone (pkg/controller/volume/pvcprotection),
  then it goes; volumes likewise carry ``kubernetes.io/pv-protection`` and a deleted volume stays
  while it is Bound (pkg/controller/volume/pvprotection). The store honours finalizers generally
  (``apistore``).
"""
from __future__ import annotations

from typing import Any

from .apitypes import ApiStatus, ResourceType, invalid
from .ctlutil import quantity

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def admit(store: Any) -> Any:
    """The admission hook ``(rt, obj, old)`` for ``store``."""
    def hook(rt: ResourceType, obj: dict, old: dict | None) -> None:
        if rt.key == "persistentvolumeclaims":
            _claim(store, rt, obj, old)
        elif rt.key == "persistentvolumes" and old is None:
            fins = obj["metadata"].setdefault("finalizers", [])
            if isinstance(fins, list) and PV_PROTECTION not in fins:
                fins.append(PV_PROTECTION)
        elif rt.key in ("configmaps", "secrets") and old is not None and old.get("immutable") is True:
            _immutable(rt, obj, old)
    return hook


def _immutable(rt: ResourceType, obj: dict, old: dict) -> None:
    name = obj["metadata"]["name"]
    fields = ("data", "binaryData") if rt.key == "configmaps" else ("data", "type")
    for f in fields:
        if (obj.get(f) or None) != (old.get(f) or None):
            raise invalid(rt, name, f, "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set")
    if obj.get("immutable") is not True:
        raise invalid(rt, name, "immutable", "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set")


def _claim(store: Any, rt: ResourceType, obj: dict, old: dict | None) -> None:
    meta = obj["metadata"]
    if old is None:
        fins = meta.setdefault("finalizers", [])
        if isinstance(fins, list) and PVC_PROTECTION not in fins:
            fins.append(PVC_PROTECTION)
        return
    if (old.get("status") or {}).get("phase") != "Bound":
        return
    spec, was = obj.get("spec") or {}, old.get("spec") or {}
    strip = lambda s: {k: v for k, v in s.items() if k not in ("resources", "volumeAttributesClassName")}  # noqa: E731
    if strip(spec) != strip(was):
        raise invalid(rt, meta["name"], "spec", "FieldValueForbidden",
                      "Forbidden: spec is immutable after creation except resources.requests and "
                      "volumeAttributesClassName for bound claims")
    new_size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    old_size = ((was.get("resources") or {}).get("requests") or {}).get("storage")
    if new_size == old_size:
        return
    try:
        grow = quantity(new_size) - quantity(old_size)
    except (TypeError, ValueError):
        return   # the quantity check of the main admission refuses it
    if grow < 0:
        raise invalid(rt, meta["name"], "spec.resources.requests.storage", "FieldValueForbidden",
                      "Forbidden: field can not be less than previous value")
    cls = spec.get("storageClassName") or ""
    sc_rt = next((r for r in store.resources if r.key == "storageclasses.storage.k8s.io"), None)
    sc = store.get(sc_rt, "", cls) if sc_rt is not None and cls else None
    if not (sc or {}).get("allowVolumeExpansion"):
        raise ApiStatus(403, "Forbidden", f'persistentvolumeclaims "{meta["name"]}" is forbidden: only dynamically '
                        "provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
                        {"name": meta["name"], "kind": "persistentvolumeclaims"})


def release_claims(store: Any, ns: str) -> None:
    """Drop ``pvc-protection`` from deleted claims no pod of ``ns`` uses any more (they then go)."""
    claims = store.list(store.rt("persistentvolumeclaims"), ns)[0]
    dying = [c for c in claims if c["metadata"].get("deletionTimestamp") and PVC_PROTECTION in (c["metadata"].get("finalizers") or [])]
    if not dying:
        return
    used = set()
    for pod in store.list(store.rt("pods"), ns)[0]:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for v in (pod.get("spec") or {}).get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName") if isinstance(v, dict) else None
            if claim:
                used.add(claim)
    for c in dying:
        if c["metadata"]["name"] not in used:
            c["metadata"]["finalizers"] = [f for f in c["metadata"]["finalizers"] if f != PVC_PROTECTION]
            store.put(store.rt("persistentvolumeclaims"), c)


def release_volumes(store: Any) -> None:
    """Drop ``pv-protection`` from deleted volumes that no claim holds any more (they then go)."""
    rt = store.rt("persistentvolumes")
    for pv in store.list(rt)[0]:
        meta = pv["metadata"]
        if not meta.get("deletionTimestamp") or PV_PROTECTION not in (meta.get("finalizers") or []):
            continue
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        claim = store.get(store.rt("persistentvolumeclaims"), ref.get("namespace", ""), ref.get("name", "")) if ref else None
        held = (pv.get("status") or {}).get("phase") == "Bound" and claim is not None \
            and claim["metadata"].get("uid") == ref.get("uid", claim["metadata"].get("uid"))
        if not held:
            meta["finalizers"] = [f for f in meta["finalizers"] if f != PV_PROTECTION]
            store.put(rt, pv)
