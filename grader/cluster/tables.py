"""The ``meta.k8s.io/v1`` Tables ``kubectl get`` prints (``Accept: application/json;as=Table``).

kubectl prints whatever columns the server sends, in the server's order, leaving out those of
``priority`` 1 unless ``-o wide``; so the columns below are the real server's, kind by kind, in its
order (AGE is not always last: a pod's wide columns come after it). Source: kube-apiserver's
printers, kubernetes/pkg/printers/internalversion/printers.go (v1.32: ``AddHandlers``, one
``*ColumnDefinitions`` list per kind, and the ``print<Kind>`` functions for the cell values), and
for Routes openshift/oc's route printer (``oc get routes``: NAME HOST/PORT PATH SERVICES PORT
TERMINATION WILDCARD, no AGE). Kinds without a printer get the default Name/Age table.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from .apitypes import ResourceType
from .scale import selector_string

Cell = Callable[[dict], Any]


def age(ts: str | None) -> str:
    """kubectl's ``duration.HumanDuration`` of the time since ``ts`` (Time or MicroTime)."""
    if not ts or not isinstance(ts, str):
        return "<unknown>"
    try:
        then = datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
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


def _spec(o: dict) -> dict:
    return o.get("spec") or {}


def _st(o: dict) -> dict:
    return o.get("status") or {}


def _restarts(pod: dict) -> str:
    """``N`` or ``N (AGE ago)`` after the last restart, as printPod writes it."""
    css = _st(pod).get("containerStatuses") or []
    n = sum(c.get("restartCount", 0) for c in css)
    last = max((((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or "" for c in css), default="")
    return f"{n} ({age(last)} ago)" if n and last else str(n)


def _gates(pod: dict) -> str:
    gates = _spec(pod).get("readinessGates") or []
    if not gates:
        return "<none>"
    conds = {c.get("type"): c.get("status") for c in _st(pod).get("conditions") or []}
    return f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}"


def _template(o: dict) -> list[dict]:
    return ((_spec(o).get("template") or {}).get("spec") or {}).get("containers") or []


def _containers(o: dict) -> str:
    return ",".join(c.get("name", "") for c in _template(o))


def _images(o: dict) -> str:
    return ",".join(c.get("image", "") for c in _template(o))


def _ports(svc: dict) -> str:
    out = []
    for p in _spec(svc).get("ports") or []:
        np = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p.get('port')}{np}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _external_ip(svc: dict) -> str:
    spec = _spec(svc)
    ext = list(spec.get("externalIPs") or [])
    lb = [i.get("ip") or i.get("hostname") for i in (_st(svc).get("loadBalancer") or {}).get("ingress") or []]
    if spec.get("type") == "LoadBalancer":
        return ",".join(lb + ext) or "<pending>"
    if spec.get("type") == "ExternalName":
        return spec.get("externalName") or "<none>"
    return ",".join(ext) or "<none>"


def _modes(modes: list[str] | None) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(m, m) for m in modes or [])


def _endpoints(o: dict) -> str:
    eps = [f"{a.get('ip')}:{p.get('port')}" for s in o.get("subsets") or [] for a in s.get("addresses") or []
           for p in s.get("ports") or []]
    return ",".join(eps[:3]) + (f" + {len(eps) - 3} more..." if len(eps) > 3 else "") if eps else "<none>"


def _route_services(r: dict) -> str:
    to, alt = _spec(r).get("to") or {}, _spec(r).get("alternateBackends") or []
    if not alt:
        return to.get("name", "")
    backs = [to] + list(alt)
    total = sum(b.get("weight", 100) for b in backs) or 1
    return ",".join(f"{b.get('name')}({round(100 * b.get('weight', 100) / total)}%)" for b in backs)


def _termination(r: dict) -> str:
    tls = _spec(r).get("tls") or {}
    term, insecure = tls.get("termination", ""), tls.get("insecureEdgeTerminationPolicy", "")
    return f"{term}/{insecure}" if term and insecure else term


def _node_ip(n: dict, kind: str) -> str:
    return next((a.get("address") for a in _st(n).get("addresses") or [] if a.get("type") == kind), "<none>")


def _node_roles(n: dict) -> str:
    labels = n["metadata"].get("labels") or {}
    return ",".join(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))) or "<none>"


def _event_source(e: dict) -> str:
    src = e.get("source") or {}
    comp, host = src.get("component") or e.get("reportingController", ""), src.get("host") or e.get("reportingInstance", "")
    return f"{comp}, {host}" if comp and host else comp or host


def _event_last(e: dict) -> str:
    if (e.get("series") or {}).get("lastObservedTime"):
        return age(e["series"]["lastObservedTime"])
    return age(e.get("lastTimestamp") or e.get("firstTimestamp") or e.get("eventTime"))


def _event_target(e: dict) -> str:
    io = e.get("involvedObject") or e.get("regarding") or {}
    kind = str(io.get("kind", "")).lower()
    return f"{kind}/{io['name']}" if io.get("name") else kind


def _binding_subjects(kind: str) -> Cell:
    return lambda b: ",".join(s.get("name", "") if kind != "ServiceAccount" else f"{s.get('namespace', '')}/{s.get('name', '')}"
                              for s in b.get("subjects") or [] if s.get("kind") == kind)


def _name(o: dict) -> str:
    return o["metadata"]["name"]


def _age_of(o: dict) -> str:
    return age(o["metadata"].get("creationTimestamp"))


_N, _A = ("Name", "string", 0, _name), ("Age", "string", 0, _age_of)
_WORKLOAD_WIDE = [("Containers", "string", 1, _containers), ("Images", "string", 1, _images)]
_REPLICAS = [("Desired", "integer", 0, lambda o: _spec(o).get("replicas", 1)),
             ("Current", "integer", 0, lambda o: _st(o).get("replicas", 0)),
             ("Ready", "integer", 0, lambda o: _st(o).get("readyReplicas", 0))]
_BINDING = [_N, ("Role", "string", 0, lambda b: f"{(b.get('roleRef') or {}).get('kind', '')}/{(b.get('roleRef') or {}).get('name', '')}"), _A,
            ("Users", "string", 1, _binding_subjects("User")), ("Groups", "string", 1, _binding_subjects("Group")),
            ("ServiceAccounts", "string", 1, _binding_subjects("ServiceAccount"))]
_ROLE = [_N, ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp", ""))]

COLUMNS: dict[str, list[tuple[str, str, int, Cell]]] = {
    "pods": [_N, ("Ready", "string", 0, lambda p: f"{sum(1 for c in _st(p).get('containerStatuses') or [] if c.get('ready'))}/{len(_spec(p).get('containers') or [])}"),
             ("Status", "string", 0, pod_display_status), ("Restarts", "string", 0, _restarts), _A,
             ("IP", "string", 1, lambda p: _st(p).get("podIP") or "<none>"),
             ("Node", "string", 1, lambda p: _spec(p).get("nodeName") or "<none>"),
             ("Nominated Node", "string", 1, lambda p: _st(p).get("nominatedNodeName") or "<none>"),
             ("Readiness Gates", "string", 1, _gates)],
    "replicationcontrollers": [_N, *_REPLICAS, _A, *_WORKLOAD_WIDE,
                               ("Selector", "string", 1, lambda o: selector_string(_spec(o).get("selector"), True) or "<none>")],
    "replicasets.apps": [_N, *_REPLICAS, _A, *_WORKLOAD_WIDE,
                         ("Selector", "string", 1, lambda o: selector_string(_spec(o).get("selector"), False) or "<none>")],
    "deployments.apps": [_N, ("Ready", "string", 0, lambda d: f"{_st(d).get('readyReplicas', 0)}/{_spec(d).get('replicas', 1)}"),
                         ("Up-to-date", "integer", 0, lambda d: _st(d).get("updatedReplicas", 0)),
                         ("Available", "integer", 0, lambda d: _st(d).get("availableReplicas", 0)), _A, *_WORKLOAD_WIDE,
                         ("Selector", "string", 1, lambda o: selector_string(_spec(o).get("selector"), False) or "<none>")],
    "services": [_N, ("Type", "string", 0, lambda s: _spec(s).get("type", "ClusterIP")),
                 ("Cluster-IP", "string", 0, lambda s: _spec(s).get("clusterIP") or "<none>"),
                 ("External-IP", "string", 0, _external_ip), ("Port(s)", "string", 0, _ports), _A,
                 ("Selector", "string", 1, lambda s: selector_string(_spec(s).get("selector"), True) or "<none>")],
    "endpoints": [_N, ("Endpoints", "string", 0, _endpoints), _A],
    "endpointslices.discovery.k8s.io": [
        _N, ("AddressType", "string", 0, lambda e: e.get("addressType", "")),
        ("Ports", "string", 0, lambda e: ",".join(str(p.get("port", "")) for p in e.get("ports") or []) or "<unset>"),
        ("Endpoints", "string", 0, lambda e: (lambda a: ",".join(a[:3]) + (f" + {len(a) - 3} more..." if len(a) > 3 else "") if a else "<unset>")(
            [x for ep in e.get("endpoints") or [] for x in ep.get("addresses") or []])), _A],
    "persistentvolumeclaims": [
        _N, ("Status", "string", 0, lambda c: "Terminating" if c["metadata"].get("deletionTimestamp") else _st(c).get("phase", "Pending")),
        ("Volume", "string", 0, lambda c: _spec(c).get("volumeName", "")),
        ("Capacity", "string", 0, lambda c: (_st(c).get("capacity") or {}).get("storage", "")),
        ("Access Modes", "string", 0, lambda c: _modes(_st(c).get("accessModes"))),
        ("StorageClass", "string", 0, lambda c: _spec(c).get("storageClassName") or "<unset>"),
        ("VolumeAttributesClass", "string", 0, lambda c: _spec(c).get("volumeAttributesClassName") or "<unset>"), _A,
        ("VolumeMode", "string", 1, lambda c: _spec(c).get("volumeMode") or "Filesystem")],
    "persistentvolumes": [
        _N, ("Capacity", "string", 0, lambda v: (_spec(v).get("capacity") or {}).get("storage", "")),
        ("Access Modes", "string", 0, lambda v: _modes(_spec(v).get("accessModes"))),
        ("Reclaim Policy", "string", 0, lambda v: _spec(v).get("persistentVolumeReclaimPolicy", "Retain")),
        ("Status", "string", 0, lambda v: "Terminating" if v["metadata"].get("deletionTimestamp") else _st(v).get("phase", "Pending")),
        ("Claim", "string", 0, lambda v: (lambda r: f"{r.get('namespace')}/{r.get('name')}" if r else "")(_spec(v).get("claimRef") or {})),
        ("StorageClass", "string", 0, lambda v: _spec(v).get("storageClassName", "")),
        ("VolumeAttributesClass", "string", 0, lambda v: _spec(v).get("volumeAttributesClassName") or "<unset>"),
        ("Reason", "string", 0, lambda v: _st(v).get("reason", "")), _A,
        ("VolumeMode", "string", 1, lambda v: _spec(v).get("volumeMode") or "Filesystem")],
    "configmaps": [_N, ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})), _A],
    "secrets": [_N, ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
                ("Data", "string", 0, lambda o: len(o.get("data") or {}) + len(o.get("stringData") or {})), _A],
    "serviceaccounts": [_N, ("Secrets", "string", 0, lambda o: len(o.get("secrets") or [])), _A],
    "namespaces": [_N, ("Status", "string", 0, lambda o: _st(o).get("phase", "Active")), _A],
    "nodes": [_N, ("Status", "string", 0, lambda n: "Ready" if any(c.get("type") == "Ready" and c.get("status") == "True"
                                                                   for c in _st(n).get("conditions") or []) else "NotReady"),
              ("Roles", "string", 0, _node_roles), _A,
              ("Version", "string", 0, lambda n: (_st(n).get("nodeInfo") or {}).get("kubeletVersion", "")),
              ("Internal-IP", "string", 1, lambda n: _node_ip(n, "InternalIP")),
              ("External-IP", "string", 1, lambda n: _node_ip(n, "ExternalIP")),
              ("OS-Image", "string", 1, lambda n: (_st(n).get("nodeInfo") or {}).get("osImage", "<unknown>")),
              ("Kernel-Version", "string", 1, lambda n: (_st(n).get("nodeInfo") or {}).get("kernelVersion", "<unknown>")),
              ("Container-Runtime", "string", 1, lambda n: (_st(n).get("nodeInfo") or {}).get("containerRuntimeVersion", "<unknown>"))],
    "events": [("Last Seen", "string", 0, _event_last), ("Type", "string", 0, lambda e: e.get("type", "")),
               ("Reason", "string", 0, lambda e: e.get("reason", "")), ("Object", "string", 0, _event_target),
               ("Subobject", "string", 1, lambda e: (e.get("involvedObject") or e.get("regarding") or {}).get("fieldPath", "")),
               ("Source", "string", 1, _event_source),
               ("Message", "string", 0, lambda e: str(e.get("message") or e.get("note") or "").strip()),
               ("First Seen", "string", 1, lambda e: age(e.get("firstTimestamp") or e.get("eventTime"))),
               ("Count", "string", 1, lambda e: (e.get("series") or {}).get("count") or e.get("count") or 1),
               ("Name", "string", 1, _name)],
    "ingresses.networking.k8s.io": [
        _N, ("Class", "string", 0, lambda i: _spec(i).get("ingressClassName") or "<none>"),
        ("Hosts", "string", 0, lambda i: ",".join(r.get("host", "*") for r in _spec(i).get("rules") or []) or "*"),
        ("Address", "string", 0, lambda i: ",".join(x.get("ip") or x.get("hostname", "") for x in (_st(i).get("loadBalancer") or {}).get("ingress") or [])),
        ("Ports", "string", 0, lambda i: "80, 443" if _spec(i).get("tls") else "80"), _A],
    "storageclasses.storage.k8s.io": [
        ("Name", "string", 0, lambda o: o["metadata"]["name"] + (" (default)" if (o["metadata"].get("annotations") or {}).get(
            "storageclass.kubernetes.io/is-default-class") == "true" else "")),
        ("Provisioner", "string", 0, lambda o: o.get("provisioner", "")),
        ("ReclaimPolicy", "string", 0, lambda o: o.get("reclaimPolicy", "Delete")),
        ("VolumeBindingMode", "string", 0, lambda o: o.get("volumeBindingMode", "Immediate")),
        ("AllowVolumeExpansion", "string", 0, lambda o: str(bool(o.get("allowVolumeExpansion"))).lower()), _A],
    "roles.rbac.authorization.k8s.io": _ROLE,
    "clusterroles.rbac.authorization.k8s.io": _ROLE,
    "rolebindings.rbac.authorization.k8s.io": _BINDING,
    "clusterrolebindings.rbac.authorization.k8s.io": _BINDING,
    "routes.route.openshift.io": [
        _N, ("Host/Port", "string", 0, lambda r: _spec(r).get("host", "")), ("Path", "string", 0, lambda r: _spec(r).get("path", "")),
        ("Services", "string", 0, _route_services),
        ("Port", "string", 0, lambda r: str((_spec(r).get("port") or {}).get("targetPort", "<all>"))),
        ("Termination", "string", 0, _termination), ("Wildcard", "string", 0, lambda r: _spec(r).get("wildcardPolicy", "None"))],
}
COLUMNS["events.events.k8s.io"] = COLUMNS["events"]
_DEFAULT = [_N, _A]


def table_doc(rt: ResourceType, items: list[dict], meta: dict, include: str) -> dict:
    """meta.k8s.io/v1 Table of ``items`` with ``rt``'s columns; ``include`` is ``includeObject``."""
    cols = COLUMNS.get(rt.key, _DEFAULT)
    defs = [{"name": n, "type": typ, "format": "name" if n == "Name" and i == 0 else "",
             "description": n, "priority": prio} for i, (n, typ, prio, _) in enumerate(cols)]
    rows = []
    for o in items:
        row: dict[str, Any] = {"cells": [cell(o) for _, _, _, cell in cols]}
        if include == "Object":
            row["object"] = {"kind": rt.kind, "apiVersion": rt.api_version, **o}
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": defs, "rows": rows}
