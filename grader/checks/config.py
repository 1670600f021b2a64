"""Checks on configuration (ex4, ex7): config map and secret keys, secret types, and environment
variables taken from them. Secret values never appear in a message."""
from __future__ import annotations

import base64 as _base64
import binascii as _binascii
from typing import Any

from .base import _q, _what, as_dict, as_list, containers, dig, fail, kind_of, name_of, oc
from ..i18n import Raw, Text, t
from ..kube import RESOURCES
from ..snapshot import Obj, View


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
