"""An in-process Kubernetes API server on loopback, spoken to over real HTTP.

The grader, the tests, the demo and ``grade sandbox`` all talk to a cluster through the real
``kubernetes`` client or ``kubectl``; this server lets them do so without a cluster, so every path
they exercise is the production path.  It is written on ``http.server`` rather than kmock because
kmock has no label selectors, pagination or Status bodies shaped like the real server's.

OpenAPI (``/openapi/v2``, ``/openapi/v3``) answers 404: kubectl then skips schema validation and
server-side field validation, so ``kubectl create -f`` and ``kubectl apply -f`` work with their
default flags (no ``--validate=false`` needed).  Aggregated discovery is not served either; kubectl
falls back to the legacy ``/api`` + ``/apis`` documents, which are answered as plain JSON.

The behaviour of the cluster (scheduling, replicas, endpoints, binding) lives in
``grader.controllers``; this module only stores, validates, authorizes and serves.
"""
from __future__ import annotations

import base64
import json
import random
import re
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit


# =============================================================================================
# Resource table
# =============================================================================================
@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what it is called, whether it has a status."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    singular: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _r(gv: str, plural: str, kind: str, namespaced: bool = True, short: tuple[str, ...] = (),
       status: bool = True) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, plural, kind, namespaced, short, status, kind.lower())


RESOURCES: tuple[ResourceType, ...] = (
    _r("v1", "namespaces", "Namespace", False, ("ns",)),
    _r("v1", "pods", "Pod", True, ("po",)),
    _r("v1", "services", "Service", True, ("svc",)),
    _r("v1", "endpoints", "Endpoints", True, ("ep",), False),
    _r("v1", "replicationcontrollers", "ReplicationController", True, ("rc",)),
    _r("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
    _r("v1", "persistentvolumes", "PersistentVolume", False, ("pv",)),
    _r("v1", "configmaps", "ConfigMap", True, ("cm",), False),
    _r("v1", "secrets", "Secret", True, (), False),
    _r("v1", "nodes", "Node", False, ("no",)),
    _r("v1", "events", "Event", True, ("ev",), False),
    _r("v1", "serviceaccounts", "ServiceAccount", True, ("sa",), False),
    _r("apps/v1", "deployments", "Deployment", True, ("deploy",)),
    _r("apps/v1", "replicasets", "ReplicaSet", True, ("rs",)),
    _r("discovery.k8s.io/v1", "endpointslices", "EndpointSlice", True, (), False),
    _r("networking.k8s.io/v1", "ingresses", "Ingress", True, ("ing",)),
    _r("storage.k8s.io/v1", "storageclasses", "StorageClass", False, ("sc",), False),
    _r("rbac.authorization.k8s.io/v1", "roles", "Role", True, (), False),
    _r("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True, (), False),
    _r("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False, (), False),
    _r("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False, (), False),
    _r("route.openshift.io/v1", "routes", "Route", True, ()),
    _r("config.openshift.io/v1", "ingresses", "Ingress", False, ()),
)
_OPENSHIFT = ("route.openshift.io", "config.openshift.io")


def resources_for(route_api: bool) -> tuple[ResourceType, ...]:
    """The table a server serves: OpenShift groups only when it plays OpenShift."""
    return tuple(r for r in RESOURCES if route_api or r.group not in _OPENSHIFT)


def find_resource(resources: Iterable[ResourceType], group: str, version: str,
                  plural: str) -> ResourceType | None:
    for r in resources:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def resource_for_kind(api_version: str, kind: str,
                      resources: Iterable[ResourceType] = RESOURCES) -> ResourceType | None:
    for r in resources:
        if r.api_version == api_version and r.kind == kind:
            return r
    return None


def known_kinds(route_api: bool = True) -> frozenset[tuple[str, str]]:
    """(apiVersion, kind) pairs the embedded cluster serves; manifests are checked against it."""
    return frozenset((r.api_version, r.kind) for r in resources_for(route_api))


# =============================================================================================
# Errors
# =============================================================================================
def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "reason": reason}
    if details:
        body["details"] = details
    body["code"] = code
    return body


class ApiStatus(Exception):
    """A request the server refuses; turned into a Status body with the same code."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict:
        return status_body(self.code, self.reason, self.message, self.details)


def not_found(rt: ResourceType, name: str) -> ApiStatus:
    details = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return ApiStatus(404, "NotFound", f'{what} "{name}" not found', details)


def invalid(rt: ResourceType, name: str, fld: str, reason: str, msg: str) -> ApiStatus:
    """422 Invalid with one cause, message shaped like the real apiserver's."""
    return ApiStatus(422, "Invalid", f'{rt.kind} "{name}" is invalid: {fld}: {msg}',
                     {"name": name, "group": rt.group, "kind": rt.kind,
                      "causes": [{"reason": reason, "message": msg, "field": fld}]})


_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _validate_name(rt: ResourceType, name: str) -> None:
    if rt.plural in ("namespaces",):
        ok, what, rx = _DNS1123_LABEL.match(name) and len(name) <= 63, "RFC 1123 label", _DNS1123_LABEL
    elif rt.plural == "services":
        ok, what, rx = _DNS1035_LABEL.match(name) and len(name) <= 63, "RFC 1035 label", _DNS1035_LABEL
    else:
        ok, what, rx = _DNS1123_SUB.match(name) and len(name) <= 253, "RFC 1123 subdomain", _DNS1123_SUB
    if not ok:
        raise invalid(rt, name, "metadata.name", "FieldValueInvalid",
                      f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
                      f"alphanumeric characters{', ' + chr(39) + '.' + chr(39) if 'subdomain' in what else ''} "
                      f"or '-', and must start and end with an alphanumeric character "
                      f"(regex used for validation is '{rx.pattern[1:-1]}')")


def _validate(rt: ResourceType, obj: dict) -> None:
    """The few structural checks students trip over; the rest is the controllers' business."""
    name = obj["metadata"].get("name", "")
    spec = obj.get("spec") or {}
    if rt.plural == "pods":
        containers = spec.get("containers") or []
        if not containers:
            raise invalid(rt, name, "spec.containers", "FieldValueRequired", "Required value")
        for i, c in enumerate(containers):
            for f in ("name", "image"):
                if not c.get(f):
                    raise invalid(rt, name, f"spec.containers[{i}].{f}", "FieldValueRequired", "Required value")
    if rt.plural == "services":
        for i, p in enumerate(spec.get("ports") or []):
            if not isinstance(p.get("port"), int):
                raise invalid(rt, name, f"spec.ports[{i}].port", "FieldValueRequired", "Required value")


# =============================================================================================
# Selectors and patches
# =============================================================================================
def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out if p.strip()]


_SET_RE = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQ_RE = re.compile(r"^([^\s!=()]+)\s*(==|=|!=)\s*([^\s,()]*)$")


def parse_label_selector(selector: str) -> Callable[[dict], bool]:
    """A predicate over a labels dict for the label selector string syntax."""
    reqs: list[Callable[[dict], bool]] = []
    for part in _split_top(selector):
        m = _SET_RE.match(part)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda lb, k=key, vs=vals: k in lb and lb[k] in vs)
            else:
                reqs.append(lambda lb, k=key, vs=vals: k not in lb or lb[k] not in vs)
            continue
        m = _EQ_RE.match(part)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                reqs.append(lambda lb, k=key, v=val: lb.get(k) != v)
            else:
                reqs.append(lambda lb, k=key, v=val: k in lb and lb[k] == v)
            continue
        if part.startswith("!") and re.match(r"^![^\s!=()]+$", part):
            reqs.append(lambda lb, k=part[1:]: k not in lb)
        elif re.match(r"^[^\s!=(),]+$", part):
            reqs.append(lambda lb, k=part: k in lb)
        else:
            raise ValueError(f"invalid label selector {part!r}")
    return lambda labels: all(r(labels) for r in reqs)


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector object (matchLabels + matchExpressions) against labels; empty matches all."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def match_fields(obj: dict, selector: str) -> bool:
    """fieldSelector: dotted paths compared as strings (metadata.name, status.phase, spec.nodeName...)."""
    for part in _split_top(selector):
        m = re.match(r"^([^!=]+)(==|=|!=)(.*)$", part)
        if not m:
            raise ApiStatus(400, "BadRequest", f"invalid field selector: {part}")
        path, op, want = m.groups()
        cur: Any = obj
        for seg in path.strip().split("."):
            cur = cur.get(seg) if isinstance(cur, dict) else None
        have = "" if cur is None else str(cur)
        if (have == want) != (op != "!="):
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


_MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
               "volumeMounts": "mountPath", "imagePullSecrets": "name", "envFrom": None,
               "conditions": "type", "ports": None}


def strategic_merge_patch(target: Any, patch: Any, field_name: str = "") -> Any:
    """Enough of strategic merge patch for what kubectl apply sends: lists merged by their key."""
    if isinstance(patch, list):
        key = _MERGE_KEYS.get(field_name)
        if field_name == "ports" and patch and isinstance(patch[0], dict):
            key = "containerPort" if "containerPort" in patch[0] else "port"
        if not key or not isinstance(target, list) or not all(isinstance(p, dict) for p in patch):
            return [p for p in patch if not (isinstance(p, dict) and p.get("$patch") == "delete")]
        out = [dict(t) for t in target if isinstance(t, dict)]
        for p in patch:
            idx = next((i for i, t in enumerate(out) if t.get(key) == p.get(key)), None)
            if p.get("$patch") == "delete":
                if idx is not None:
                    out.pop(idx)
            elif idx is None:
                out.append(strategic_merge_patch({}, p))
            else:
                out[idx] = strategic_merge_patch(out[idx], p)
        return out
    if not isinstance(patch, dict):
        return patch
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if not k.startswith("$")}
    out = dict(target) if isinstance(target, dict) else {}
    orders = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$setElementOrder/")}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = strategic_merge_patch(out.get(k), v, k)
    for k, order in orders.items():
        key = _MERGE_KEYS.get(k) or ("containerPort" if order and "containerPort" in order[0] else "port")
        if isinstance(out.get(k), list):
            rank = {json.dumps(o.get(key)): i for i, o in enumerate(order)}
            out[k] = sorted(out[k], key=lambda o: rank.get(json.dumps(o.get(key)), len(rank)))
    return out


# =============================================================================================
# Store
# =============================================================================================
Listener = Callable[[str, ResourceType, dict], None]


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _comparable(obj: dict) -> dict:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


class Store:
    """All objects, one lock, one resourceVersion counter; listeners hear about every change."""

    def __init__(self, resources: tuple[ResourceType, ...]) -> None:
        self.resources = resources
        self._lock = threading.RLock()
        self._objs: dict[str, dict[tuple[str, str], dict]] = {r.key: {} for r in resources}
        self._rv = 1
        self.listeners: list[Listener] = []

    def rt(self, plural: str, group: str = "") -> ResourceType:
        for r in self.resources:
            if r.plural == plural and r.group == group:
                return r
        raise KeyError(f"{plural}.{group}")

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _notify(self, event: str, rt: ResourceType, obj: dict) -> None:
        for listener in self.listeners:
            listener(event, rt, obj)

    # --- reads --------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str, raise_missing: bool = False) -> dict | None:
        with self._lock:
            obj = self._objs[rt.key].get((namespace if rt.namespaced else "", name))
            if obj is None:
                if raise_missing:
                    raise not_found(rt, name)
                return None
            return _copy(obj)

    def list(self, rt: ResourceType, namespace: str | None = None) -> tuple[list[dict], str]:
        """Copies sorted by (namespace, name), and the resourceVersion they were read at."""
        with self._lock:
            table = self._objs[rt.key]
            keys = sorted(k for k in table if namespace is None or k[0] == namespace)
            return [_copy(table[k]) for k in keys], str(self._rv)

    def find(self, rt: ResourceType, keep: Callable[[dict], bool]) -> list[dict]:
        """Copies of just the objects ``keep`` accepts; the data plane's lookups (a route by host)
        would otherwise copy every object of the kind on every request."""
        with self._lock:
            return [_copy(o) for o in self._objs[rt.key].values() if keep(o)]

    def list_page(self, rt: ResourceType, namespace: str | None, keep: Callable[[dict], bool],
                  after: tuple[str, str] | None, limit: int) -> tuple[list[str], str, tuple[str, str] | None, int]:
        """One page of a list as JSON texts (without kind/apiVersion), for the HTTP list path.

        Why not ``list()``: that deep-copies every object of the kind for every page, so paging
        through 5,000 pods 500 at a time made 50,000 copies. Here objects are filtered in place
        and only the page is encoded, under the lock (a consistent read at one resourceVersion).
        Returns (items, resourceVersion, key of the last item when more remain, remaining count).
        """
        with self._lock:
            table = self._objs[rt.key]
            keys = sorted(k for k in table if (namespace is None or k[0] == namespace)
                          and (after is None or k > after))
            items: list[str] = []
            last: tuple[str, str] | None = None
            remaining = 0
            for i, k in enumerate(keys):
                obj = table[k]
                if not keep(obj):
                    continue
                if limit and len(items) == limit:
                    remaining = sum(1 for k2 in keys[i:] if keep(table[k2]))
                    break
                items.append(json.dumps({f: v for f, v in obj.items() if f not in ("kind", "apiVersion")},
                                        separators=(",", ":")))
                last = k
            return items, str(self._rv), (last if remaining else None), remaining

    def exists(self, rt: ResourceType, namespace: str, name: str) -> bool:
        with self._lock:
            return (namespace if rt.namespaced else "", name) in self._objs[rt.key]

    # --- writes -------------------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, obj: dict, *, admit: Admission | None = None,
               dry_run: bool = False, keep_status: bool = False) -> dict:
        obj = _copy(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiStatus(400, "BadRequest", "metadata must be an object")
        if obj.get("kind") not in (None, rt.kind) or obj.get("apiVersion") not in (None, rt.api_version):
            raise ApiStatus(400, "BadRequest",
                            f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                            f"expected API version ({rt.api_version})" if obj.get("apiVersion") != rt.api_version
                            else f"kind {obj.get('kind')} does not match the resource {rt.plural}")
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise ApiStatus(400, "BadRequest", "the namespace of the provided object does not "
                                "match the namespace sent on the request")
            namespace = namespace or meta.get("namespace") or "default"
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
            else:
                raise invalid(rt, "", "metadata.name", "FieldValueRequired",
                              "Required value: name or generateName is required")
        _validate_name(rt, meta["name"])
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        if rt.has_status and not keep_status:
            obj.pop("status", None)
        if rt.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        _validate(rt, obj)
        with self._lock:
            if rt.namespaced and ("", namespace) not in self._objs["namespaces"]:
                raise ApiStatus(404, "NotFound", f'namespaces "{namespace}" not found',
                                {"name": namespace, "kind": "namespaces"})
            key = (namespace, meta["name"])
            if key in self._objs[rt.key]:
                what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                raise ApiStatus(409, "AlreadyExists", f'{what} "{meta["name"]}" already exists',
                                {"name": meta["name"], "group": rt.group, "kind": rt.plural})
            if admit is not None:
                admit(rt, obj, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if "spec" in obj or rt.plural in ("deployments", "replicasets", "replicationcontrollers"):
                meta["generation"] = 1
            meta.pop("resourceVersion", None)
            if dry_run:
                return obj
            meta["resourceVersion"] = self._next_rv()
            self._objs[rt.key][key] = obj
            self._notify("ADDED", rt, obj)
            return _copy(obj)

    def replace(self, rt: ResourceType, namespace: str, name: str, obj: dict, *,
                admit: Admission | None = None, subresource: str = "", dry_run: bool = False) -> dict:
        """PUT semantics: optimistic concurrency on resourceVersion, status only via /status."""
        obj = _copy(obj)
        with self._lock:
            key = (namespace if rt.namespaced else "", name)
            old = self._objs[rt.key].get(key)
            if old is None:
                raise not_found(rt, name)
            meta = obj.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiStatus(400, "BadRequest", "the name of the object does not match the name on the URL")
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                raise ApiStatus(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": the '
                                "object has been modified; please apply your changes to the latest "
                                "version and try again", {"name": name, "group": rt.group, "kind": rt.plural})
            if subresource == "status":
                new = _copy(old)
                new["status"] = obj.get("status")
            else:
                new = obj
                if rt.has_status:
                    if "status" in old:
                        new["status"] = _copy(old["status"])
                    else:
                        new.pop("status", None)
                if rt.plural == "namespaces":
                    new["status"], new["spec"] = old.get("status"), old.get("spec")
            nm = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "namespace", "generation", "deletionTimestamp"):
                if k in old["metadata"]:
                    nm[k] = old["metadata"][k]
            nm["name"] = name
            if rt.namespaced:
                nm["namespace"] = namespace
            new["kind"], new["apiVersion"] = rt.kind, rt.api_version
            if subresource != "status":
                _validate(rt, new)
                if admit is not None:
                    admit(rt, new, _copy(old))
                strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
                if "generation" in nm and strip(new) != strip(old):
                    nm["generation"] = old["metadata"]["generation"] + 1
            return self._commit(rt, key, old, new, dry_run)

    def _commit(self, rt: ResourceType, key: tuple[str, str], old: dict, new: dict, dry_run: bool) -> dict:
        if _comparable(new) == _comparable(old):
            return _copy(old)
        if dry_run:
            return new
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._objs[rt.key][key] = new
        self._notify("MODIFIED", rt, new)
        return _copy(new)

    def put(self, rt: ResourceType, obj: dict) -> bool:
        """Controller write: whole object, no admission; False when nothing changed or it is gone."""
        with self._lock:
            meta = obj["metadata"]
            key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
            old = self._objs[rt.key].get(key)
            if old is None or old["metadata"]["uid"] != meta.get("uid"):
                return False
            before = self._rv
            self._commit(rt, key, old, _copy(obj), False)
            return self._rv != before

    def patch(self, rt: ResourceType, namespace: str, name: str, ctype: str, body: bytes, *,
              admit: Admission | None = None, subresource: str = "", dry_run: bool = False) -> dict:
        try:
            patch = json.loads(body or b"null")
        except ValueError:
            if ctype == "application/apply-patch+yaml":
                import yaml
                patch = yaml.safe_load(body)
            else:
                raise ApiStatus(400, "BadRequest", "the patch is not valid JSON") from None
        with self._lock:
            current = self.get(rt, namespace, name)
            if current is None:
                if ctype == "application/apply-patch+yaml":
                    return self.create(rt, namespace, patch, admit=admit, dry_run=dry_run)
                raise not_found(rt, name)
            if ctype == "application/json-patch+json":
                import jsonpatch
                try:
                    new = jsonpatch.apply_patch(current, patch)
                except Exception as exc:
                    raise ApiStatus(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}") from None
            elif ctype == "application/strategic-merge-patch+json":
                if rt.group in _OPENSHIFT:
                    raise ApiStatus(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
                new = strategic_merge_patch(current, patch)
            elif ctype in ("application/merge-patch+json", "application/apply-patch+yaml"):
                new = merge_patch(current, patch)
            else:
                raise ApiStatus(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
            if not isinstance(patch, dict) or "resourceVersion" not in (patch.get("metadata") or {}):
                new.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self.replace(rt, namespace, name, new, admit=admit, subresource=subresource, dry_run=dry_run)

    def delete(self, rt: ResourceType, namespace: str, name: str, *, dry_run: bool = False,
               missing_ok: bool = False) -> dict:
        with self._lock:
            key = (namespace if rt.namespaced else "", name)
            obj = self._objs[rt.key].get(key)
            if obj is None:
                if missing_ok:
                    return {}
                raise not_found(rt, name)
            if dry_run:
                return _copy(obj)
            if rt.plural == "namespaces":
                for r in self.resources:
                    if r.namespaced:
                        for k in [k for k in self._objs[r.key] if k[0] == name]:
                            gone = self._objs[r.key].pop(k)
                            self._next_rv()
                            self._notify("DELETED", r, gone)
            del self._objs[rt.key][key]
            self._next_rv()
            out = _copy(obj)
            out["metadata"]["deletionTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._notify("DELETED", rt, obj)
            return out


# =============================================================================================
# Discovery and Tables
# =============================================================================================
_ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _version() -> dict:
    return {"major": "1", "minor": "32", "gitVersion": "v1.32.0+embedded", "gitCommit": "embedded",
            "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23",
            "compiler": "gc", "platform": "linux/amd64"}


def _api_versions() -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}


def _group_doc(resources: Iterable[ResourceType], group: str) -> dict | None:
    versions = sorted({r.version for r in resources if r.group == group})
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def _group_list(resources: tuple[ResourceType, ...]) -> dict:
    groups = sorted({r.group for r in resources if r.group}, key=[r.group for r in resources].index)
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_doc(resources, g) for g in groups]}


def _group(resources: tuple[ResourceType, ...], group: str) -> dict | None:
    doc = _group_doc(resources, group)
    return None if doc is None else {"kind": "APIGroup", "apiVersion": "v1", **doc}


def _resource_list(resources: tuple[ResourceType, ...], group: str, version: str) -> dict | None:
    rts = [r for r in resources if r.group == group and r.version == version]
    if not rts:
        return None
    out = []
    for r in rts:
        out.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": _ALL_VERBS, **({"shortNames": list(r.short_names)} if r.short_names else {})})
        if r.has_status:
            out.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": ["get", "patch", "update"]})
        if r.plural in ("services", "pods"):
            out.append({"name": f"{r.plural}/proxy", "singularName": "", "namespaced": True,
                        "kind": f"{r.kind}ProxyOptions", "verbs": ["create", "delete", "get", "patch", "update"]})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


__all__ = [
    "ApiServer", "ApiStatus", "Faults", "RequestAttributes", "RequestRecord", "ResourceType",
    "Store", "known_kinds", "find_resource", "RESOURCES",
]

Authorizer = Callable[["RequestAttributes"], bool]
Admission = Callable[[ResourceType, dict, "dict | None"], None]
"""Mutating/validating hook ``(resource, new_obj, old_obj_or_None)``; raises ApiStatus to reject."""
ProxyHandler = Callable[[str, str, str, str, str], "tuple[int, dict[str, str], bytes]"]
"""Proxy backend ``(plural, namespace, name, port, path) -> (status, headers, body)``."""


@dataclass(frozen=True)
class RequestAttributes:
    """What an authorizer decides on, named like the Kubernetes SubjectAccessReview fields."""

    user: str
    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str


@dataclass(frozen=True)
class RequestRecord:
    """One served request, for tests and benchmarks that count round trips."""

    method: str
    path: str
    query: str
    user: str
    verb: str
    resource: str
    namespace: str
    status: int


@dataclass
class Faults:
    """Failure injection for the API port only; retries and timeouts are tested against it."""

    latency: float = 0.0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503, 504, 429)
    retry_after: int | None = None
    reset_rate: float = 0.0
    seed: int | None = None
    match: Callable[[str, str], bool] | None = None
    _next: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random | None = None

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """Make the next ``n`` matching requests fail with ``status``."""
        with self._lock:
            self._next.extend([status] * n)

    def clear(self) -> None:
        """Back to a healthy server."""
        with self._lock:
            self.latency = self.error_rate = self.reset_rate = 0.0
            self.retry_after = None
            self.match = None
            self._next.clear()

    def _decide(self, method: str, path: str) -> tuple[float, int | None, bool]:
        """(delay, failing status or None, reset connection) for one request."""
        if self.match is not None and not self.match(method, path):
            return 0.0, None, False
        with self._lock:
            if self._rng is None or (self.seed is not None and getattr(self, "_seeded", None) != self.seed):
                self._rng = random.Random(self.seed)
                object.__setattr__(self, "_seeded", self.seed)
            if self._next:
                return self.latency, self._next.pop(0), False
            reset = self.reset_rate > 0 and self._rng.random() < self.reset_rate
            status = None
            if not reset and self.error_rate > 0 and self._rng.random() < self.error_rate:
                status = self._rng.choice(self.error_statuses)
            return self.latency, status, reset


_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_REASONS = {500: "InternalError", 502: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout", 429: "TooManyRequests", 409: "Conflict"}


@dataclass
class _Route:
    """A parsed API path."""

    rt: ResourceType | None
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    rest: str = ""          # for proxy: the path after .../proxy
    discovery: Any = None   # a ready discovery document instead of a resource


class ApiServer:
    """Store + HTTP front end.  ``start()`` binds a loopback port; ``url`` is where to connect."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, route_api: bool = True,
                 auth: bool = True, admin_token: str | None = None) -> None:
        self.route_api = route_api
        self.resources = resources_for(route_api)
        self.store = Store(self.resources)
        self.auth = auth
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.faults = Faults()
        self.admission: list[Admission] = []
        self.proxy_handler: ProxyHandler | None = None
        self._users: dict[str, tuple[str, Authorizer | None]] = {
            self.admin_token: ("system:admin", None)}
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.started = datetime.now(timezone.utc)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "ApiServer":
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = _DualServer((self._host, self._port), Handler)
        cert = self_signed_cert()
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)
            self._httpd.tls = ctx
            with open(cert[0]) as f:
                self.ca_pem: str | None = f.read()
        else:
            self.ca_pem = None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="apiserver",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        """Plain HTTP address (the same port also speaks TLS, see ``https_url``)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def https_url(self) -> str | None:
        """TLS address, trusted through ``ca_pem``; None when openssl was not available."""
        return self.url.replace("http://", "https://") if self.ca_pem else None

    # --- users and log ------------------------------------------------------------------------
    def add_user(self, token: str, username: str, authorize: Authorizer | None = None) -> None:
        """Register a bearer token; ``authorize=None`` allows everything."""
        self._users[token] = (username, authorize)

    def remove_user(self, token: str) -> None:
        self._users.pop(token, None)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def reset_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _record(self, rec: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(rec)

    # --- write path shared by HTTP and in-process callers -------------------------------------
    def admit(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        for hook in self.admission:
            hook(rt, obj, old)


# --- TLS: kubectl only sends kubeconfig credentials over TLS, so the port speaks both ----------
_CERT: tuple[str, str] | None = None
_CERT_LOCK = threading.Lock()


def self_signed_cert() -> tuple[str, str] | None:
    """(cert PEM path, key PEM path) for 127.0.0.1/localhost, made once per process by openssl."""
    global _CERT
    with _CERT_LOCK:
        if _CERT is None and shutil.which("openssl"):
            d = tempfile.mkdtemp(prefix="grader-embedded-tls-")
            crt, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
            r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
                                "-subj", "/CN=grader-embedded-apiserver", "-keyout", key, "-out", crt,
                                "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"],
                               capture_output=True, timeout=30)
            if r.returncode == 0:
                _CERT = (crt, key)
        return _CERT


class _DualServer(ThreadingHTTPServer):
    """Plain HTTP and TLS on one port: the first byte of a connection says which (0x16 = TLS)."""

    daemon_threads = True
    request_queue_size = 256   # the default backlog of 5 drops concurrent connects (1 s SYN retry)
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request.settimeout(10)
                first = request.recv(1, socket.MSG_PEEK)
                request.settimeout(None)
                if first == b"\x16":
                    request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


# ---------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 keep-alive connection to the API."""

    api: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "grader-embedded-apiserver"
    # Headers and body leave in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (~40 ms per request on Linux). kube-apiserver (Go) sets
    # TCP_NODELAY too.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def do_GET(self) -> None: self._serve()
    def do_HEAD(self) -> None: self._serve()
    def do_POST(self) -> None: self._serve()
    def do_PUT(self) -> None: self._serve()
    def do_PATCH(self) -> None: self._serve()
    def do_DELETE(self) -> None: self._serve()

    # --- plumbing -----------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            if k.lower() not in ("content-length", "content-type", "connection"):
                self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = code

    def _send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _serve(self) -> None:
        api = self.api
        self._status = 0
        split = urlsplit(self.path)
        path, query = split.path, split.query
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        body = self._body()
        user, verb, route = "", _VERBS.get(self.command, "get"), _Route(None)
        try:
            delay, fail, reset = api.faults._decide(self.command, path)
            if delay:
                time.sleep(delay)
            if reset:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._status = 0
                return
            if fail is not None:
                try:   # for the request log only
                    route = self._route(path)
                    verb = self._verb(route, params) if route.rt else verb
                    user = self._authenticate()[0]
                except ApiStatus:
                    pass
                hdrs = {}
                if api.faults.retry_after is not None and fail in (429, 503):
                    hdrs["Retry-After"] = str(api.faults.retry_after)
                raise ApiStatus(fail, _REASONS.get(fail, "InternalError"),
                                "injected fault" if fail != 429 else "too many requests, please try again later",
                                headers=hdrs)
            user, authz = self._authenticate()
            route = self._route(path)
            if route.discovery is not None:
                self._send_json(200, route.discovery)
                return
            assert route.rt is not None
            verb = self._verb(route, params)
            if authz is not None:
                attrs = RequestAttributes(user, verb, route.rt.group, route.rt.plural,
                                          route.subresource, route.namespace, route.name)
                if not authz(attrs):
                    raise _forbidden(attrs)
            self._dispatch(route, verb, params, body)
        except ApiStatus as exc:
            self._send_json(exc.code, exc.body(), headers=exc.headers)
        except Exception as exc:  # a bug here must still answer like a server would
            self._send_json(500, status_body(500, "InternalError", f"internal error: {exc!r}"))
        finally:
            rt = route.rt
            api._record(RequestRecord(self.command, path, query, user, verb,
                                      rt.plural if rt else "", route.namespace, self._status))

    def _authenticate(self) -> tuple[str, Authorizer | None]:
        api = self.api
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token in api._users:
            return api._users[token]
        if not api.auth:
            return "system:anonymous", None
        raise ApiStatus(401, "Unauthorized", "Unauthorized")

    def _verb(self, route: _Route, params: dict[str, str]) -> str:
        if self.command in ("GET", "HEAD"):
            if params.get("watch") in ("true", "1"):
                return "watch"
            return "get" if route.name else "list"
        if self.command == "DELETE" and not route.name:
            return "deletecollection"
        return _VERBS.get(self.command, "get")

    # --- routing ------------------------------------------------------------------------------
    def _route(self, path: str) -> _Route:
        api = self.api
        segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        if not segs:
            return _Route(None, discovery={"paths": ["/api", "/api/v1", "/apis", "/version"]})
        if segs == ["version"]:
            return _Route(None, discovery=_version())
        if segs[0] == "openapi" and len(segs) >= 2 and segs[1] == "v3":
            doc = _openapi_v3(api.resources, "/".join(segs[2:]))
            if doc is None:
                raise _not_found_path(path)
            return _Route(None, discovery=doc)
        if segs[0] in ("healthz", "readyz", "livez"):
            return _Route(None, discovery="ok")
        if segs[0] == "api":
            if len(segs) == 1:
                return _Route(None, discovery=_api_versions())
            if segs[1] != "v1":
                raise _not_found_path(path)
            group, version, rest = "", "v1", segs[2:]
        elif segs[0] == "apis":
            if len(segs) == 1:
                return _Route(None, discovery=_group_list(api.resources))
            if len(segs) == 2:
                doc = _group(api.resources, segs[1])
                if doc is None:
                    raise _not_found_path(path)
                return _Route(None, discovery=doc)
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise _not_found_path(path)
        if not rest:
            doc = _resource_list(api.resources, group, version)
            if doc is None:
                raise _not_found_path(path)
            return _Route(None, discovery=doc)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        rt = find_resource(api.resources, group, version, rest[0])
        if rt is None:
            raise _not_found_path(path)
        if namespace and not rt.namespaced:
            raise _not_found_path(path)
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        route = _Route(rt, namespace, name, sub)
        if sub == "proxy":
            m = re.match(r"^.*?/(?:services|pods)/[^/]+/proxy(.*)$", path)
            route.rest = (m.group(1) if m else "") or "/"
        elif len(rest) > 3 or sub not in ("", "status", "scale"):
            raise _not_found_path(path)
        return route

    # --- verbs --------------------------------------------------------------------------------
    def _dispatch(self, route: _Route, verb: str, params: dict[str, str], body: bytes) -> None:
        api, rt, store = self.api, route.rt, self.api.store
        assert rt is not None
        if route.subresource == "proxy":
            self._proxy(route)
            return
        accept = self.headers.get("Accept", "")
        if verb == "list" and "as=Table" not in accept:
            self._send(200, self._list_json(rt, route.namespace, params))
            return
        if verb in ("list", "watch"):
            items, meta = self._list(rt, route.namespace, params)
            if verb == "watch":
                lines = b"".join(json.dumps({"type": "ADDED", "object": o}).encode() + b"\n" for o in items)
                self.close_connection = True
                self._send(200, lines)
            elif "as=Table" in accept:
                self._send_json(200, _table(rt, items, meta, params.get("includeObject", "")))
            else:
                self._send_json(200, {"kind": rt.kind + "List", "apiVersion": rt.api_version,
                                      "metadata": meta, "items": items})
            return
        if verb == "get":
            obj = store.get(rt, route.namespace, route.name, raise_missing=True)
            if "as=Table" in accept:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                self._send_json(200, _table(rt, [obj], meta, params.get("includeObject", "")))
            else:
                self._send_json(200, obj)
            return
        dry = "dryRun" in params
        if verb == "create":
            obj = _parse(body)
            if route.name:
                raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            code, out = 201, store.create(rt, route.namespace, obj, admit=api.admit, dry_run=dry)
            self._send_json(code, out)
        elif verb == "update":
            obj = _parse(body)
            out = store.replace(rt, route.namespace, route.name, obj, admit=api.admit,
                                subresource=route.subresource, dry_run=dry)
            self._send_json(200, out)
        elif verb == "patch":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            out = store.patch(rt, route.namespace, route.name, ctype, body, admit=api.admit,
                              subresource=route.subresource, dry_run=dry)
            self._send_json(200, out)
        elif verb == "delete":
            out = store.delete(rt, route.namespace, route.name, dry_run=dry)
            if rt.plural == "pods":
                self._send_json(200, out)
            else:
                self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Success", "details": {
                                          "name": route.name, "group": rt.group, "kind": rt.plural,
                                          "uid": out["metadata"].get("uid", "")}})
        elif verb == "deletecollection":
            items, _ = self._list(rt, route.namespace, {k: v for k, v in params.items() if k not in ("limit", "continue")})
            for o in items:
                store.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], missing_ok=True)
            self._send_json(200, {"kind": rt.kind + "List", "apiVersion": rt.api_version,
                                  "metadata": {}, "items": items})
        else:
            raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list_json(self, rt: ResourceType, namespace: str, params: dict[str, str]) -> bytes:
        """A plain JSON list (what clients page through), the same answer as ``_list`` gives,
        with only the page's objects encoded and nothing copied."""
        keep, start, limit = self._list_query(params)
        items, rv, last, remaining = self.api.store.list_page(rt, namespace or None, keep, start, limit)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if last is not None:
            token = json.dumps({"ns": last[0], "name": last[1], "rv": rv})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            meta["remainingItemCount"] = remaining
        head = json.dumps({"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta},
                          separators=(",", ":"))
        return (head[:-1] + ',"items":[' + ",".join(items) + "]}").encode()

    def _list_query(self, params: dict[str, str]) -> tuple[Callable[[dict], bool], tuple[str, str] | None, int]:
        """(object filter, continue-after key, limit) of a list request; 400 on a bad one."""
        try:
            labels = parse_label_selector(params.get("labelSelector", ""))
        except ValueError as exc:
            raise ApiStatus(400, "BadRequest", f"unable to parse requirement: {exc}") from None
        fields = params.get("fieldSelector", "")
        try:
            limit = int(params.get("limit") or 0)
        except ValueError:
            raise ApiStatus(400, "BadRequest", f"invalid limit {params.get('limit')!r}") from None
        start: tuple[str, str] | None = None
        if params.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(params["continue"].encode()))
                start = (tok["ns"], tok["name"])
            except Exception:
                raise ApiStatus(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from None

        def keep(o: dict) -> bool:
            return labels((o.get("metadata") or {}).get("labels") or {}) and match_fields(o, fields)
        return keep, start, limit

    def _list(self, rt: ResourceType, namespace: str, params: dict[str, str]) -> tuple[list[dict], dict]:
        """Copied objects of a list (for Tables and watches, which reshape them)."""
        keep, start, limit = self._list_query(params)
        items, rv = self.api.store.list(rt, namespace or None)
        items = [o for o in items if keep(o)]
        if start is not None:
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        meta: dict[str, Any] = {"resourceVersion": rv}
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = json.dumps({"ns": last.get("namespace", ""), "name": last["name"], "rv": rv})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return items, meta

    def _proxy(self, route: _Route) -> None:
        rt = route.rt
        assert rt is not None
        if self.command not in ("GET", "HEAD"):
            raise ApiStatus(405, "MethodNotAllowed", "the embedded cluster proxies GET and HEAD only")
        name, _, port = route.name.partition(":")
        handler = self.api.proxy_handler
        if handler is None:
            raise ApiStatus(503, "ServiceUnavailable", "proxy not available")
        if rt.plural not in ("services", "pods"):
            raise _not_found_path(self.path)
        status, headers, body = handler(rt.plural, route.namespace, name, port, route.rest)
        self._send(status, body, headers.get("Content-Type", "text/plain"), headers)


# --- helpers ---------------------------------------------------------------------------------
def _parse(body: bytes) -> dict:
    try:
        obj = json.loads(body or b"null")
    except ValueError as exc:
        raise ApiStatus(400, "BadRequest", f"the object provided is unrecognized: {exc}") from None
    if not isinstance(obj, dict):
        raise ApiStatus(400, "BadRequest", "the object provided is unrecognized (must be a JSON object)")
    return obj


def _not_found_path(path: str) -> ApiStatus:
    return ApiStatus(404, "NotFound", "the server could not find the requested resource",
                     details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def _forbidden(a: RequestAttributes) -> ApiStatus:
    what = a.resource + (f"/{a.subresource}" if a.subresource else "")
    subject = f'{a.resource} "{a.name}"' if a.name else what
    scope = f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
    msg = (f'{subject} is forbidden: User "{a.user}" cannot {a.verb} resource "{what}" '
           f'in API group "{a.api_group}"{scope}')
    details: dict[str, Any] = {"kind": a.resource}
    if a.name:
        details["name"] = a.name
    if a.api_group:
        details["group"] = a.api_group
    return ApiStatus(403, "Forbidden", msg, details=details)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def iter_kinds() -> Iterable[tuple[str, str]]:
    """(apiVersion, kind) pairs the server knows, route API included."""
    return known_kinds()


def _gv_paths(resources: Iterable[ResourceType]) -> list[str]:
    return sorted({f"apis/{r.group}/{r.version}" if r.group else "api/v1" for r in resources})


def _openapi_v3(resources: tuple[ResourceType, ...], gv_path: str) -> dict | None:
    """Just enough OpenAPI v3 for kubectl: each kind's PATCH accepts ``fieldValidation``.

    kubectl then leaves validation to the server (which accepts what it can store) instead of
    downloading schemas; there is no requestBody, so ``kubectl apply`` computes its patches from
    its compiled-in types, as it does against servers without schemas.
    """
    if not gv_path:
        return {"paths": {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash=embedded"} for p in _gv_paths(resources)}}
    if gv_path not in _gv_paths(resources):
        return None
    paths: dict[str, Any] = {}
    for r in resources:
        if (f"apis/{r.group}/{r.version}" if r.group else "api/v1") != gv_path:
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        param = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
        base = f"/{gv_path}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"/{gv_path}/{r.plural}"
        ok = {"200": {"description": "OK"}}
        paths[base] = {"post": {"operationId": f"create{r.kind}", "parameters": param, "responses": ok,
                                "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk}}
        paths[base + "/{name}"] = {
            "patch": {"operationId": f"patch{r.kind}", "parameters": param, "responses": ok,
                      "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
            "put": {"operationId": f"replace{r.kind}", "parameters": param, "responses": ok,
                    "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths,
            "components": {}}


def _age(ts: str | None) -> str:
    """kubectl's HumanDuration, near enough."""
    if not ts:
        return "<unknown>"
    try:
        then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<unknown>"
    s = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if h < 3:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d" if d < 730 else f"{d // 365}y"


def pod_display_status(pod: dict) -> str:
    """The STATUS column of ``kubectl get pods``: a waiting reason beats the phase."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    st = pod.get("status") or {}
    reason = st.get("reason") or st.get("phase") or "Pending"
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            reason = state["terminated"].get("reason") or "Error"
    return reason


def _ports(svc: dict) -> str:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        np = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p.get('port')}{np}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _modes(modes: list[str] | None) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(m, m) for m in modes or [])


def _cells(rt: ResourceType, o: dict) -> list[tuple[str, Any, int]]:
    """(column, value, priority) per kind, after NAME and before AGE."""
    spec, st, meta = o.get("spec") or {}, o.get("status") or {}, o["metadata"]
    k = rt.key
    if k == "pods":
        css = st.get("containerStatuses") or []
        ready = sum(1 for c in css if c.get("ready"))
        return [("Ready", f"{ready}/{len(spec.get('containers') or [])}", 0),
                ("Status", pod_display_status(o), 0),
                ("Restarts", sum(c.get("restartCount", 0) for c in css), 0),
                ("IP", st.get("podIP") or "<none>", 1), ("Node", spec.get("nodeName") or "<none>", 1)]
    if k == "services":
        ext = spec.get("externalIPs") or [i.get("ip") or i.get("hostname") for i in (st.get("loadBalancer") or {}).get("ingress") or []]
        return [("Type", spec.get("type", "ClusterIP"), 0), ("Cluster-IP", spec.get("clusterIP") or "<none>", 0),
                ("External-IP", ",".join(ext) or "<none>", 0), ("Port(s)", _ports(o), 0),
                ("Selector", ",".join(f"{a}={b}" for a, b in (spec.get("selector") or {}).items()) or "<none>", 1)]
    if k == "deployments.apps":
        return [("Ready", f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", 0),
                ("Up-to-date", st.get("updatedReplicas", 0), 0), ("Available", st.get("availableReplicas", 0), 0)]
    if k in ("replicasets.apps", "replicationcontrollers"):
        return [("Desired", spec.get("replicas", 1), 0), ("Current", st.get("replicas", 0), 0),
                ("Ready", st.get("readyReplicas", 0), 0)]
    if k == "endpoints":
        eps = [f"{a.get('ip')}:{p.get('port')}" for s in o.get("subsets") or [] for a in s.get("addresses") or [] for p in s.get("ports") or []]
        return [("Endpoints", ",".join(eps[:3]) + (f" + {len(eps) - 3} more..." if len(eps) > 3 else "") or "<none>", 0)]
    if k == "persistentvolumeclaims":
        return [("Status", st.get("phase", "Pending"), 0), ("Volume", spec.get("volumeName", ""), 0),
                ("Capacity", (st.get("capacity") or {}).get("storage", ""), 0),
                ("Access Modes", _modes(st.get("accessModes")), 0), ("StorageClass", spec.get("storageClassName") or "<unset>", 0)]
    if k == "persistentvolumes":
        ref = spec.get("claimRef") or {}
        return [("Capacity", (spec.get("capacity") or {}).get("storage", ""), 0), ("Access Modes", _modes(spec.get("accessModes")), 0),
                ("Reclaim Policy", spec.get("persistentVolumeReclaimPolicy", "Retain"), 0), ("Status", st.get("phase", "Pending"), 0),
                ("Claim", f"{ref.get('namespace')}/{ref.get('name')}" if ref else "", 0),
                ("StorageClass", spec.get("storageClassName", ""), 0)]
    if k == "routes.route.openshift.io":
        to = spec.get("to") or {}
        return [("Host/Port", spec.get("host", ""), 0), ("Path", spec.get("path", ""), 0),
                ("Services", to.get("name", ""), 0), ("Port", (spec.get("port") or {}).get("targetPort", "<all>"), 0),
                ("Termination", (spec.get("tls") or {}).get("termination", ""), 0), ("Wildcard", spec.get("wildcardPolicy", "None"), 0)]
    if k == "ingresses.networking.k8s.io":
        hosts = [r.get("host", "*") for r in spec.get("rules") or []]
        addr = [i.get("ip", "") for i in (st.get("loadBalancer") or {}).get("ingress") or []]
        return [("Class", spec.get("ingressClassName") or "<none>", 0), ("Hosts", ",".join(hosts) or "*", 0),
                ("Address", ",".join(addr), 0), ("Ports", "80", 0)]
    if k in ("configmaps",):
        return [("Data", len(o.get("data") or {}) + len(o.get("binaryData") or {}), 0)]
    if k == "secrets":
        return [("Type", o.get("type", "Opaque"), 0), ("Data", len(o.get("data") or {}), 0)]
    if k == "namespaces":
        return [("Status", st.get("phase", "Active"), 0)]
    if k == "nodes":
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
        roles = ",".join(l.split("/", 1)[1] for l in meta.get("labels") or {} if l.startswith("node-role.kubernetes.io/")) or "<none>"
        return [("Status", "Ready" if ready else "NotReady", 0), ("Roles", roles, 0),
                ("Version", (st.get("nodeInfo") or {}).get("kubeletVersion", ""), 0)]
    if k == "storageclasses.storage.k8s.io":
        name = meta["name"] + (" (default)" if (meta.get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true" else "")
        return [("__name__", name, 0), ("Provisioner", o.get("provisioner", ""), 0),
                ("ReclaimPolicy", o.get("reclaimPolicy", "Delete"), 0)]
    return []


def _table(rt: ResourceType, items: list[dict], meta: dict, include: str) -> dict:
    """meta.k8s.io/v1 Table, so ``kubectl get`` prints the usual columns."""
    sample = _cells(rt, items[0]) if items else _cells(rt, {"metadata": {"name": ""}})
    cols = [("Name", 0)] + [(c, p) for c, _, p in sample if c != "__name__"] + [("Age", 0)]
    kinds = {c: "integer" if isinstance(v, int) else "string" for c, v, _ in sample}
    defs = [{"name": c, "type": kinds.get(c, "string"), "format": "name" if c == "Name" else "",
             "description": c, "priority": p} for c, p in cols]
    rows = []
    for o in items:
        cells = _cells(rt, o)
        name = next((v for c, v, _ in cells if c == "__name__"), o["metadata"]["name"])
        row: dict[str, Any] = {"cells": [name] + [v for c, v, _ in cells if c != "__name__"]
                               + [_age(o["metadata"].get("creationTimestamp"))]}
        if include == "Object":
            row["object"] = {"kind": rt.kind, "apiVersion": rt.api_version, **o}
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": defs, "rows": rows}
