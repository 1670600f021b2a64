"""The embedded API server's vocabulary: its resource table, Status errors, name validation,
label/field selectors and merge patches. Plain functions over plain dicts, shared by the store,
the HTTP layer and the controllers."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable



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
    _r("events.k8s.io/v1", "events", "Event", True, ("ev",), False),
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
OPENSHIFT_GROUPS = ("route.openshift.io", "config.openshift.io")


def resources_for(route_api: bool) -> tuple[ResourceType, ...]:
    """The table a server serves: OpenShift groups only when it plays OpenShift."""
    return tuple(r for r in RESOURCES if route_api or r.group not in OPENSHIFT_GROUPS)


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


def validate_name(rt: ResourceType, name: str) -> None:
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


def validate(rt: ResourceType, obj: dict) -> None:
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


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test) on a copy of ``doc``; raises on a bad op."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch is a list of operations")
    doc = json.loads(json.dumps(doc))

    def walk(path: str) -> tuple[Any, str | int]:
        if not path.startswith("/"):
            raise ValueError(f"bad path {path!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last: str | int = parts[-1]
        if isinstance(parent, list):
            last = len(parent) if last == "-" else int(last)
        return parent, last

    def get(path: str) -> Any:
        parent, key = walk(path)
        return parent[key]  # type: ignore[index]

    for op in ops:
        kind, path = op["op"], op["path"]
        if kind == "test":
            if get(path) != op["value"]:
                raise ValueError(f"test failed at {path}")
            continue
        value = op["value"] if kind in ("add", "replace") else get(op["from"]) if kind in ("move", "copy") else None
        if kind == "move":
            parent, key = walk(op["from"])
            del parent[key]  # type: ignore[arg-type]
        if kind in ("remove", "replace"):
            parent, key = walk(path)
            del parent[key]  # type: ignore[arg-type]
        if kind in ("add", "replace", "move", "copy"):
            parent, key = walk(path)
            if isinstance(parent, list):
                parent.insert(key, json.loads(json.dumps(value)))  # type: ignore[arg-type]
            else:
                parent[key] = json.loads(json.dumps(value))
        elif kind != "remove":
            raise ValueError(f"unknown op {kind!r}")
    return doc


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


