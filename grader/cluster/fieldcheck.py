"""``fieldValidation=Strict``, which kubectl 1.27+ sends with ``create -f`` and ``apply -f``: a
field the kind does not have (``containerport``, a ``volumeMounts`` indented one level off) is
refused with kube-apiserver's 400, as a student meets it on a cluster::

    Error from server (BadRequest): error when creating "pod.yaml": Pod in version "v1" cannot be
    handled as a Pod: strict decoding error: unknown field "spec.containers[0].volumeMount",
    unknown field "spec.volumes[0].presistentVolumeClaim"

(shape as recorded in public transcripts of kubectl against real clusters; the paths are
the JSON paths in document order). The fields known are the ``kubernetes`` client's models (the
same metadata ``openapi`` builds the schemas from); a kind it has no model of (Route) is not
checked. Under any other setting ("Warn", the default without the parameter, or "Ignore", which
``--validate=false`` sends) the unknown fields are dropped and the object taken, as the real
server's decoder does (the "Warning:" header "Warn" adds is not sent)."""
from __future__ import annotations

import re
from typing import Any

from .apitypes import ApiStatus, ResourceType
from .openapi import model_for

_MAX_REPORTED = 50


def strict_fields(rt: ResourceType | None, obj: dict, params: dict[str, str]) -> dict:
    """``obj`` unchanged, or the 400 a real server gives under ``fieldValidation=Strict``."""
    model = model_for(rt) if rt is not None else None
    if model is None:
        return obj
    unknown: list[str] = []
    strict = params.get("fieldValidation") == "Strict"
    _walk(obj, model, "", unknown, drop=not strict)
    if unknown and strict:
        raise ApiStatus(400, "BadRequest", f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                        "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown))
    return obj


def _fields(model: str) -> dict[str, str] | None:
    from kubernetes.client import models
    cls = getattr(models, model, None)
    if cls is None or not hasattr(cls, "attribute_map"):
        return None
    return {cls.attribute_map[a]: t for a, t in cls.openapi_types.items()}


def _walk(value: Any, t: str, path: str, out: list[str], drop: bool) -> None:
    if len(out) >= _MAX_REPORTED and not drop:
        return
    t = t.strip()
    m = re.match(r"^(?:List|list)\[(.*)\]$", t)
    if m:
        for i, v in enumerate(value if isinstance(value, list) else []):
            _walk(v, m.group(1), f"{path}[{i}]", out, drop)
        return
    m = re.match(r"^(?:Dict\[str,\s*(.*)\]|dict\(str,\s*(.*)\))$", t)
    if m:
        for k, v in (value.items() if isinstance(value, dict) else ()):
            _walk(v, m.group(1) or m.group(2), f"{path}[{k}]", out, drop)
        return
    fields = _fields(t)
    if fields is None or not isinstance(value, dict):
        return                        # a primitive, IntOrString, Quantity or a raw object
    for key, v in list(value.items()):
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            out.append(where)
            if drop:
                del value[key]
        else:
            _walk(v, fields[key], where, out, drop)
