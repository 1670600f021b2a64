"""OpenAPI v3 (and v2) documents for the served kinds, so ``kubectl explain`` works.

The schemas are generated, not written: each kind's model in the ``kubernetes`` client
(``kubernetes.client.models.V1Pod`` …) carries the API's own field names (``attribute_map``),
types (``openapi_types``: ``str``, ``int``, ``List[V1Container]``, ``Dict[str, str]``, a model
name) and descriptions (the pydantic field descriptions of newer clients, the property
docstrings of older ones), all generated from kube-apiserver's OpenAPI document. They are laid
out as kube-apiserver lays them out (``/openapi/v3/api/v1`` with ``components.schemas`` named
``io.k8s.api.core.v1.Pod``, references wrapped in ``allOf``, each kind tagged with
``x-kubernetes-group-version-kind``, which is how kubectl finds a kind's schema).

The lists that merge by key on a real server carry the same ``x-kubernetes-patch-strategy``/
``x-kubernetes-patch-merge-key`` as there (the client's models do not have them; the table below
is from the API's ``+patchStrategy``/``+patchMergeKey`` tags in k8s.io/api core/v1 and apps/v1
types.go), for tools that read them. ``kubectl apply`` itself keeps computing its patches from
its compiled-in types: the PATCH operations here declare no request body, and kubectl uses a v3
schema for patches only where the operation lists ``application/strategic-merge-patch+json``.

Route, which the client has no model of, has a written-out schema (``routeschema``).

``/openapi/v2`` is served as JSON only: kubectl asks for it as protobuf, which is not spoken here,
and gets the 404 it handles (its callers fall back to v3 or to compiled-in types).
"""
from __future__ import annotations

import functools
import re
from typing import Any, Iterable

from .apitypes import ResourceType
from .routeschema import route_schemas

_PATCH: dict[tuple[str, str], tuple[str, str]] = {
    ("V1PodSpec", "containers"): ("merge", "name"), ("V1PodSpec", "initContainers"): ("merge", "name"),
    ("V1PodSpec", "ephemeralContainers"): ("merge", "name"), ("V1PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("V1PodSpec", "imagePullSecrets"): ("merge", "name"), ("V1PodSpec", "hostAliases"): ("merge", "ip"),
    ("V1Container", "env"): ("merge", "name"), ("V1Container", "ports"): ("merge", "containerPort"),
    ("V1Container", "volumeMounts"): ("merge", "mountPath"), ("V1Container", "volumeDevices"): ("merge", "devicePath"),
    ("V1ServiceSpec", "ports"): ("merge", "port"), ("V1ObjectMeta", "finalizers"): ("merge", ""),
    ("V1ObjectMeta", "ownerReferences"): ("merge", "uid"), ("V1DeploymentSpec", "strategy"): ("retainKeys", ""),
    ("V1PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"), ("V1ServiceAccount", "secrets"): ("merge", "name"),
}
_SPECIAL = {("", "v1", "Event"): "CoreV1Event", ("events.k8s.io", "v1", "Event"): "EventsV1Event"}
_PRIMITIVE = {"str": {"type": "string"}, "int": {"type": "integer", "format": "int32"}, "bool": {"type": "boolean"},
              "float": {"type": "number", "format": "double"}, "datetime": {"type": "string", "format": "date-time"},
              "date": {"type": "string", "format": "date"}, "object": {"type": "object"},
              "bytearray": {"type": "string", "format": "byte"}}


def _models() -> Any:
    from kubernetes.client import models
    return models


_CLIENT_GROUPS = ("", "apps", "networking.k8s.io", "storage.k8s.io", "rbac.authorization.k8s.io",
                  "discovery.k8s.io", "events.k8s.io", "autoscaling", "batch")


def model_for(rt: ResourceType) -> str | None:
    """The client's model class name of a served kind (None for kinds it lacks, e.g. Route)."""
    if rt.group not in _CLIENT_GROUPS:
        return None
    name = _SPECIAL.get((rt.group, rt.version, rt.kind)) or f"{rt.version.capitalize()}{rt.kind}"
    return name if hasattr(_models(), name) else None


def component(cls: str) -> str:
    """Schema name as kube-apiserver spells it, near enough: its last segment is the kind."""
    m = re.match(r"^(Core|Events|Storage|Discovery|Networking|Apps|Rbac|Authentication|Authorization)?(V\d+(?:alpha\d*|beta\d*)?)(\w+)$", cls)
    if not m:
        return f"io.k8s.api.{cls}"
    group = (m.group(1) or "core").lower()
    return f"io.k8s.api.{group}.{m.group(2).lower()}.{m.group(3)}"


def _description(cls: Any, attr: str) -> str:
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict) and attr in fields:
        return fields[attr].description or ""
    prop = getattr(cls, attr, None)
    doc = getattr(prop, "__doc__", "") or ""
    body = [ln.strip() for ln in doc.split(":return:")[0].splitlines()[1:]]
    return " ".join(ln.replace("# noqa: E501", "").strip() for ln in body if ln).strip()


def _required(cls: Any, attr: str) -> bool:
    fields = getattr(cls, "model_fields", None)
    return bool(isinstance(fields, dict) and attr in fields and fields[attr].is_required())


def _type(t: str, v3: bool, todo: list[str]) -> dict:
    t = t.strip()
    m = re.match(r"^(?:List|list)\[(.*)\]$", t)
    if m:
        return {"type": "array", "items": _type(m.group(1), v3, todo)}
    m = re.match(r"^(?:Dict\[str,\s*(.*)\]|dict\(str,\s*(.*)\))$", t)
    if m:
        return {"type": "object", "additionalProperties": _type(m.group(1) or m.group(2), v3, todo)}
    if t in _PRIMITIVE:
        return dict(_PRIMITIVE[t])
    if hasattr(_models(), t):
        todo.append(t)
        ref = f"#/components/schemas/{component(t)}" if v3 else f"#/definitions/{component(t)}"
        return {"allOf": [{"$ref": ref}]} if v3 else {"$ref": ref}
    return {"type": "object"}


@functools.lru_cache(maxsize=8)
def _schemas(roots: tuple[tuple[str, str, str, str], ...], v3: bool) -> dict[str, dict]:
    """Every schema reachable from the root models ``(class, group, version, kind)``."""
    models = _models()
    gvk = {cls: {"group": g, "version": v, "kind": k} for cls, g, v, k in roots}
    out: dict[str, dict] = {}
    todo = [cls for cls, *_ in roots]
    while todo:
        cls_name = todo.pop()
        name = component(cls_name)
        if name in out:
            continue
        cls = getattr(models, cls_name)
        types, names = getattr(cls, "openapi_types", {}) or {}, getattr(cls, "attribute_map", {}) or {}
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].strip()
        props, required = {}, []
        for attr, t in types.items():
            field = names.get(attr, attr)
            prop = _type(t, v3, todo)
            desc = _description(cls, attr)
            if desc:
                prop["description"] = desc
            if (cls_name, field) in _PATCH:
                strategy, key = _PATCH[(cls_name, field)]
                prop["x-kubernetes-patch-strategy"] = strategy
                if key:
                    prop["x-kubernetes-patch-merge-key"] = key
            props[field] = prop
            if _required(cls, attr):
                required.append(field)
        schema: dict[str, Any] = {"type": "object", "description": doc if not doc.startswith("NOTE:") else "",
                                  "properties": props}
        if required:
            schema["required"] = required
        if cls_name in gvk:
            schema["x-kubernetes-group-version-kind"] = [gvk[cls_name]]
        out[name] = schema
    return out


def _roots(resources: Iterable[ResourceType]) -> tuple[tuple[str, str, str, str], ...]:
    return tuple((cls, r.group, r.version, r.kind) for r in resources if (cls := model_for(r)) is not None)


def v3_schemas(resources: Iterable[ResourceType]) -> dict[str, dict]:
    """``components.schemas`` of one group-version document."""
    resources = list(resources)
    try:
        out = _schemas(_roots(resources), True)
    except ImportError:   # no kubernetes client: the document keeps its paths only
        return {}
    if any(r.key == "routes.route.openshift.io" for r in resources):
        meta = _schemas((("V1ObjectMeta", "", "", ""),), True)
        out = {**out, **{k: v for k, v in meta.items() if "x-kubernetes-group-version-kind" not in v},
               **route_schemas(component("V1ObjectMeta"))}
    return out


def v2_document(resources: tuple[ResourceType, ...]) -> dict:
    """A Swagger 2.0 document of every served kind (as ``/openapi/v2`` in JSON)."""
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {},
            "definitions": _schemas(_roots(resources), False)}
