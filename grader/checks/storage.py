"""Checks on storage and configuration (ex3, ex4, ex7): quantities, claims, mounts, config maps,
secrets and environment variables. Secret values never appear in a message."""
from __future__ import annotations

import base64 as _base64
import binascii as _binascii
import re as _re
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import (_describe, _q, _what, as_dict, as_list, containers, dig, fail, kind_of, name_of, oc,
                          pod_spec)
from ..i18n import Raw, Text, t
from ..kube import RESOURCES
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
    pv = next((v for v in view.list("PersistentVolume") if name_of(v) == volume), None)
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


# --- config maps and secrets -----------------------------------------------------------------
def _decoded(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return _base64.b64decode(value, validate=True)
    except (_binascii.Error, ValueError):
        return None


def expect_key_nonempty(view: View, obj: Obj, key: str, secret: bool = False) -> None:
    """``key`` is present with a non-empty value. For a Secret the value is decoded only to
    test emptiness and never appears in a message: messages name keys, never values."""
    name = name_of(obj)
    kind = "Secret" if secret else "ConfigMap"
    data = as_dict(obj.get("data"))
    extra = as_dict(obj.get("binaryData" if not secret else "stringData"))
    keys = sorted(str(k) for k in {**data, **extra})
    cmd = oc(view, f"describe {'secret' if secret else 'configmap'} {name}")
    if key not in data and key not in extra:
        fail(t("{kind} {name} にキー {key} がありません (あるキー: {keys})。",
               "{kind} {name} has no key {key} (its keys: {keys}).",
               kind=Raw(kind), name=name, key=Raw(key), keys=Raw(", ".join(_q(k) for k in keys[:10]) or "-")), cmd)
    if secret:
        value = data.get(key)
        if key in data:
            raw = _decoded(value)
            if raw is None:
                fail(t("Secret {name} のキー {key} の値が base64 として読めません (値は表示しません)。",
                       "the value of key {key} in Secret {name} is not valid base64 (the value is not shown).",
                       name=name, key=Raw(key)), cmd)
            empty = len(raw) == 0
        else:
            empty = not (isinstance(extra.get(key), str) and extra.get(key))
    else:
        value = data.get(key, extra.get(key))
        empty = not isinstance(value, str) or value == ""
    if empty:
        fail(t("{kind} {name} のキー {key} の値が空です。", "key {key} of {kind} {name} is empty.",
               kind=Raw(kind), name=name, key=Raw(key)), cmd)


def expect_secret_type(view: View, secret: Obj, wanted: str = "Opaque") -> None:
    got = secret.get("type") or "Opaque"
    if got != wanted:
        fail(t("Secret {name} のタイプは {want} であるべきですが {got} です。",
               "Secret {name} should be of type {want}, not {got}.", name=name_of(secret), want=Raw(wanted), got=got),
             oc(view, f"get secret {name_of(secret)}"))


_REF_FIELDS = {"ConfigMap": ("configMapKeyRef", "configMapRef"), "Secret": ("secretKeyRef", "secretRef")}


def _env_source(value_from: dict[str, Any]) -> Text:
    """Where a ``valueFrom`` takes its value, in words (names and keys only, never values)."""
    for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        ref = value_from.get(field)
        if isinstance(ref, dict):
            return t("{kind} {n} のキー {k}", "key {k} of {kind} {n}", kind=Raw(kind),
                     n=str(ref.get("name", "")), k=str(ref.get("key", "")))
    for field in ("fieldRef", "resourceFieldRef"):
        if field in value_from:
            return t("valueFrom.{f}", "valueFrom.{f}", f=Raw(field))
    return t("別の参照元", "another source")


def expect_env_from(view: View, obj: Obj, var: str, kind: str, name: str, key: str) -> None:
    """Some container gets ``var`` from key ``key`` of the ConfigMap/Secret ``name``: through
    ``env[].valueFrom`` or ``envFrom`` (whose variables are prefix + key). Env values are never
    quoted: a literal value is where students paste passwords."""
    key_ref, all_ref = _REF_FIELDS[kind]
    literal = False
    prefixed: str | None = None
    other: list[Text] = []
    for c in containers(obj):
        for e in as_list(c.get("env")):
            if not isinstance(e, dict) or e.get("name") != var:
                continue
            ref = dig(e, "valueFrom", key_ref)
            if isinstance(ref, dict) and ref.get("name") == name and ref.get("key") == key:
                return
            if isinstance(ref, dict):
                other.append(t("{kind} {n} のキー {k}", "key {k} of {kind} {n}", kind=Raw(kind),
                               n=str(ref.get("name", "")), k=str(ref.get("key", ""))))
            elif "value" in e:
                literal = True
            else:
                other.append(_env_source(as_dict(e.get("valueFrom"))))
        for ef in as_list(c.get("envFrom")):
            ref = dig(ef, all_ref)
            prefix = dig(ef, "prefix", default="")
            if isinstance(ref, dict) and ref.get("name") == name and isinstance(prefix, str) and prefix + key == var:
                return
            if isinstance(ref, dict) and ref.get("name") == name and isinstance(prefix, str) and prefix:
                prefixed = prefix + key
    kind_name = kind_of(obj)
    cmd = oc(view, f"set env {kind_name.lower() if kind_name in RESOURCES else 'pod'}/{name_of(obj)} --list")
    if literal:
        fail(t("{what} の環境変数 {var} は値を直接書いています (値は表示しません)。valueFrom.{ref} で {kind} {name} のキー {key} から取得してください。",
               "{what} sets {var} to a literal value (not shown); take it from key {key} of {kind} {name} with valueFrom.{ref}.",
               what=_what(obj), var=Raw(var), ref=Raw(key_ref), kind=Raw(kind), name=Raw(name), key=Raw(key)), cmd)
    if prefixed is not None and not other:
        fail(t("{what} の envFrom は {kind} {name} に接頭辞を付けるため、変数名は {var} ではなく {got} になります。",
               "the envFrom of {what} adds a prefix to {kind} {name}: the variable is {got}, not {var}.",
               what=_what(obj), kind=Raw(kind), name=Raw(name), var=Raw(var), got=prefixed), cmd)
    if other:
        fail(t("{what} の環境変数 {var} は {kind} {name} のキー {key} ではなく {got} から取得しています。",
               "{what} takes {var} from {got}, not from key {key} of {kind} {name}.",
               what=_what(obj), var=Raw(var), kind=Raw(kind), name=Raw(name), key=Raw(key), got=other[0]), cmd)
    fail(t("{what} に {kind} {name} のキー {key} から取得する環境変数 {var} がありません。",
           "{what} has no environment variable {var} taken from key {key} of {kind} {name}.",
           what=_what(obj), var=Raw(var), kind=Raw(kind), name=Raw(name), key=Raw(key)), cmd)
