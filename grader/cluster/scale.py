"""The ``/scale`` subresource of replicationcontrollers, deployments and replicasets.

``kubectl scale`` (and ``oc scale``, and an HPA) never write the workload itself: they GET and
PATCH ``.../<name>/scale`` and decode the answer as an ``autoscaling/v1`` ``Scale``. A server
that answers with the workload instead makes kubectl fail with ``no kind "ReplicationController"
is registered for version "v1"`` after the change was applied, so the subresource has its own
shape here, as in the real registries (pkg/registry/core/replicationcontroller/storage/
storage.go ``scaleFromRC`` and pkg/registry/apps/deployment/storage/storage.go
``scaleFromDeployment``): metadata of the workload (name, namespace, uid, resourceVersion,
creationTimestamp), ``spec.replicas``, ``status.replicas`` and ``status.selector`` as the
selector's string form (``labels.Selector.String()``: ``k=v`` sorted by key, comma-joined).

Discovery lists each as ``<plural>/scale`` of group ``autoscaling``, version ``v1``, kind
``Scale``, verbs get/patch/update (a kube-apiserver 1.32 ``/api/v1`` and ``/apis/apps/v1``).
"""
from __future__ import annotations

import json
from typing import Any, Callable

from .apitypes import ApiStatus, ResourceType, json_patch, merge_patch, strategic_merge_patch

SCALABLE = frozenset({"replicationcontrollers", "deployments.apps", "replicasets.apps"})
"""Keys (``ResourceType.key``) of the resources with a ``/scale`` subresource."""


def discovery_entry(rt: ResourceType) -> dict | None:
    """The ``<plural>/scale`` row of an APIResourceList, or None for a kind without one."""
    if rt.key not in SCALABLE:
        return None
    return {"name": f"{rt.plural}/scale", "singularName": "", "namespaced": True,
            "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}


def selector_string(selector: Any, map_form: bool) -> str:
    """``labels.Selector.String()`` of an RC's map selector or a LabelSelector.

    Requirements are sorted by key as ``labels.NewSelector`` sorts them; operators are printed
    as apimachinery prints them (``in (a,b)``, ``notin (a)``, bare key for Exists, ``!key``).
    """
    if not isinstance(selector, dict):
        return ""
    reqs: list[tuple[str, str]] = []
    labels = selector if map_form else selector.get("matchLabels") or {}
    for k, v in labels.items():
        reqs.append((str(k), f"{k}={v}"))
    if not map_form:
        for e in selector.get("matchExpressions") or []:
            if not isinstance(e, dict):
                continue
            key, op, vals = str(e.get("key", "")), e.get("operator"), sorted(str(v) for v in e.get("values") or [])
            text = {"In": f"{key} in ({','.join(vals)})", "NotIn": f"{key} notin ({','.join(vals)})",
                    "Exists": key, "DoesNotExist": f"!{key}"}.get(str(op), key)
            reqs.append((key, text))
    return ",".join(t for _, t in sorted(reqs))


def scale_of(rt: ResourceType, obj: dict) -> dict:
    """The Scale a real server answers for ``obj``."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    replicas = spec.get("replicas")
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": 1 if replicas is None else replicas},
        "status": {"replicas": status.get("replicas", 0),
                   "selector": selector_string(spec.get("selector"), rt.plural == "replicationcontrollers")},
    }


def _replicas(rt: ResourceType, name: str, scale: Any) -> int:
    """``spec.replicas`` of a Scale sent by a client, validated as ``ValidateScale`` does."""
    if not isinstance(scale, dict) or scale.get("kind") not in (None, "Scale"):
        raise ApiStatus(400, "BadRequest", f"the body of the request is not an autoscaling/v1 Scale")
    value = (scale.get("spec") or {}).get("replicas", 0) if isinstance(scale.get("spec") or {}, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiStatus(400, "BadRequest", 'Scale in version "v1" cannot be handled as a Scale: '
                        "json: cannot unmarshal into Go struct field ScaleSpec.spec.replicas of type int32")
    if value < 0:
        msg = f"Invalid value: {value}: must be greater than or equal to 0"
        raise ApiStatus(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: {msg}',
                        {"name": name, "group": "autoscaling", "kind": "Scale",
                         "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": "spec.replicas"}]})
    return value


def serve(store: Any, admit: Callable[..., None], rt: ResourceType, namespace: str, name: str,
          verb: str, ctype: str, body: bytes, dry_run: bool) -> dict:
    """GET, PUT or PATCH on ``.../<name>/scale``; answers the Scale after the change."""
    if rt.key not in SCALABLE:
        raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
    obj = store.get(rt, namespace, name, raise_missing=True)
    current = scale_of(rt, obj)
    if verb == "get":
        return current
    if verb not in ("update", "patch"):
        raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    try:
        sent = json.loads(body or b"null")
    except ValueError:
        raise ApiStatus(400, "BadRequest", "the body of the request is not valid JSON") from None
    if verb == "update":
        wanted = sent
        rv = ((sent or {}).get("metadata") or {}).get("resourceVersion") if isinstance(sent, dict) else None
    else:
        kind = ctype.split(";")[0].strip()
        try:
            if kind == "application/json-patch+json":
                wanted = json_patch(current, sent)
            elif kind == "application/strategic-merge-patch+json":
                wanted = strategic_merge_patch(current, sent)
            elif kind in ("application/merge-patch+json", "application/apply-patch+yaml"):
                wanted = merge_patch(current, sent)
            else:
                raise ApiStatus(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                "accepted media types include: application/json-patch+json, application/merge-patch+json, "
                                "application/apply-patch+yaml, application/strategic-merge-patch+json")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ApiStatus(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}") from None
        rv = None
    replicas = _replicas(rt, name, wanted)
    obj.setdefault("spec", {})["replicas"] = replicas
    if rv:
        obj["metadata"]["resourceVersion"] = rv   # a stale Scale gets the workload's 409
    out = store.replace(rt, namespace, name, obj, admit=admit, dry_run=dry_run)
    return scale_of(rt, out)
