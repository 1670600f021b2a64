"""Checks on storage (ex3, ex7): quantities, claims and their binding, volume mounts. Config maps,
secrets and environment variables are in ``config``."""
from __future__ import annotations

import re as _re
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import _describe, _q, _what, as_dict, as_list, containers, dig, fail, name_of, oc, pod_spec
from ..i18n import Raw, t
from ..snapshot import Obj, View

# --- quantities ------------------------------------------------------------------------------
_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIX = {"": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6),
                   "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)}
_QUANTITY = _re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|m|k|M|G|T|P|E)?$")


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource.Quantity ("1Gi", "1.5Gi", "500M", "1e9", 1073741824) as a number;
    None when it is not one, so a typo such as "1GB" or "1 Gi" fails a check instead of crashing.
    Decimal, not float: "1Gi" must compare equal to 1073741824 exactly."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip()) if value.strip() == value else None
    if m is None:
        return None
    try:
        number = Decimal(m.group(1))
        suffix = m.group(2) or ""
        if suffix in _BINARY_SUFFIX:
            return number * _BINARY_SUFFIX[suffix]
        if suffix[:1] in ("e", "E"):
            return number.scaleb(int(suffix[1:]))
        return number * _DECIMAL_SUFFIX[suffix]
    except (InvalidOperation, ValueError, OverflowError):
        return None


def _size_text(value: Any) -> Any:
    """A student's size as they wrote it, for a message (quoted by ``t``)."""
    return value if isinstance(value, str) else Raw(str(value)) if isinstance(value, int) else Raw("-")


# --- persistent volume claims ----------------------------------------------------------------
def pvc_request(pvc: Obj) -> Any:
    return dig(pvc, "spec", "resources", "requests", "storage")


def expect_pvc_request(view: View, pvc: Obj, min_size: str, access_mode: str) -> None:
    """The claim asks for at least ``min_size`` with ``access_mode``; judged on the spec (what the
    student asked), not on what a provisioner happened to give."""
    want = parse_quantity(min_size)
    assert want is not None, f"bad size parameter {min_size!r}"
    asked = pvc_request(pvc)
    size = parse_quantity(asked)
    cmd = oc(view, f"get pvc {name_of(pvc)} -o jsonpath='{{.spec.resources.requests.storage}} {{.spec.accessModes}}'")
    if size is None:
        fail(t("PVC {name} の spec.resources.requests.storage が容量として読めません (実際: {got})。{want} 以上を指定してください。",
               "the storage request of PVC {name} is not a valid quantity (found {got}); ask for at least {want}.",
               name=name_of(pvc), got=_size_text(asked), want=Raw(min_size)), cmd)
    if size < want:
        fail(t("PVC {name} の要求容量 {got} は {want} 未満です。",
               "PVC {name} asks for {got}, less than {want}.",
               name=name_of(pvc), got=_size_text(asked), want=Raw(min_size)), cmd)
    modes = [str(m) for m in as_list(dig(pvc, "spec", "accessModes"))]
    if access_mode not in modes:
        fail(t("PVC {name} のアクセスモードに {want} がありません (実際: {got})。",
               "PVC {name} does not request access mode {want} (it requests {got}).",
               name=name_of(pvc), want=Raw(access_mode), got=Raw(", ".join(_q(m) for m in modes) or "-")), cmd)


def expect_pvc_bound(view: View, pvc: Obj) -> None:
    """Bound, and where the grader may read PersistentVolumes, bound to a volume that really
    covers the request and points back at this claim. A student's account usually cannot list
    PVs (cluster-scoped): then the claim's own status is all there is to judge."""
    name = name_of(pvc)
    phase = dig(pvc, "status", "phase", default="Pending")
    if phase != "Bound":
        fail(t("PVC {name} が Bound ではありません (状態: {phase})。StorageClass と要求容量・アクセスモードを確認してください。",
               "PVC {name} is not Bound (phase {phase}); check its storage class, size and access mode.",
               name=name, phase=phase), oc(view, f"describe pvc {name}"))
    volume = dig(pvc, "spec", "volumeName")
    if not isinstance(volume, str) or not volume:
        fail(t("PVC {name} は Bound ですが spec.volumeName がありません。", "PVC {name} is Bound but names no volume.",
               name=name), oc(view, f"get pvc {name} -o yaml"))
    if not view.can_read("PersistentVolume"):
        return
    pv = view.get("PersistentVolume", volume)   # by the snapshot's name index: no scan of every PV per student
    if pv is None:
        fail(t("PVC {name} の PV {pv} が存在しません。", "the volume {pv} of PVC {name} does not exist.",
               name=name, pv=volume), f"oc get pv {volume}")
    ref = as_dict(dig(pv, "spec", "claimRef"))
    uid = dig(pvc, "metadata", "uid")
    if ref.get("name") != name or ref.get("namespace") != view.namespace or (uid and ref.get("uid") not in (None, uid)):
        fail(t("PV {pv} は PVC {name} を指していません (claimRef: {ref})。",
               "volume {pv} does not point back at PVC {name} (its claimRef is {ref}).",
               pv=volume, name=name, ref=f"{ref.get('namespace', '-')}/{ref.get('name', '-')}"), f"oc get pv {volume} -o yaml")
    capacity = dig(pv, "spec", "capacity", "storage")
    have, want = parse_quantity(capacity), parse_quantity(pvc_request(pvc))
    if have is None or (want is not None and have < want):
        fail(t("PV {pv} の容量 {cap} は PVC {name} の要求 {req} を満たしません。",
               "volume {pv} holds {cap}, less than PVC {name} asks ({req}).",
               pv=volume, cap=_size_text(capacity), name=name, req=_size_text(pvc_request(pvc))), f"oc get pv {volume}")


# --- volumes and mounts ----------------------------------------------------------------------
_SOURCE_FIELDS = {"PersistentVolumeClaim": ("persistentVolumeClaim", "claimName"),
                  "ConfigMap": ("configMap", "name"), "Secret": ("secret", "secretName")}


def _volume_source(volume: dict[str, Any]) -> tuple[str, str] | None:
    for kind, (field, key) in _SOURCE_FIELDS.items():
        src = volume.get(field)
        if isinstance(src, dict):
            return kind, str(src.get(key, ""))
    return None


def mounts(obj: Obj) -> list[tuple[str, str, tuple[str, str] | None]]:
    """(container, mount path, (source kind, source name) or None) for every volume mount."""
    volumes = {str(v.get("name")): v for v in as_list(pod_spec(obj).get("volumes")) if isinstance(v, dict)}
    out = []
    for c in containers(obj):
        for m in as_list(c.get("volumeMounts")):
            if not isinstance(m, dict):
                continue
            path = str(m.get("mountPath", ""))
            source = _volume_source(as_dict(volumes.get(str(m.get("name")))))
            out.append((str(c.get("name", "?")), path.rstrip("/") or "/", source))
    return out


def expect_mount(view: View, obj: Obj, source: str, path: str, kind: str = "PersistentVolumeClaim") -> None:
    """A container of the pod (or pod template) mounts the ``kind`` ``source`` at ``path``."""
    want_path = path.rstrip("/") or "/"
    found = mounts(obj)
    if any(p == want_path and s == (kind, source) for _, p, s in found):
        return
    at_path = [s for _, p, s in found if p == want_path]
    elsewhere = [p for _, p, s in found if s == (kind, source)]
    if elsewhere:
        seen = t("{src} は {paths} にマウントされています", "{src} is mounted at {paths}",
                 src=source, paths=Raw(", ".join(_q(p) for p in elsewhere)))
    elif at_path:
        what = at_path[0]
        seen = t("{path} には別のボリューム ({what}) がマウントされています", "{path} holds another volume ({what})",
                 path=Raw(want_path), what=Raw("emptyDir/other") if what is None else t("{k} {n}", "{k} {n}", k=Raw(what[0]), n=what[1]))
    elif found:
        seen = t("マウント先は {paths} だけです", "it mounts only {paths}",
                 paths=Raw(", ".join(_q(p) for _, p, _ in found[:5])))
    else:
        seen = t("volumeMounts がありません", "it has no volumeMounts")
    fail(t("{what} は {kind} {src} を {path} にマウントしていません ({seen})。",
           "{what} does not mount {kind} {src} at {path} ({seen}).",
           what=_what(obj), kind=Raw(kind), src=source, path=Raw(want_path), seen=seen), _describe(view, obj))
