"""What the embedded API server answers besides objects: discovery documents, the small
OpenAPI v3 index kubectl needs, and the Tables ``kubectl get`` prints."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from .apitypes import ResourceType
from .scale import discovery_entry as scale_entry


# =============================================================================================
# Discovery and Tables
# =============================================================================================
# The resources whose discovery rows carry ``categories: ["all"]``, so ``kubectl get all`` lists
# them: kube-apiserver's registries (``Categories()`` in pkg/registry/core/{pod,service,
# replicationcontroller}/storage and pkg/registry/apps/{deployment,replicaset,statefulset,
# daemonset}/storage), and OpenShift's route registry (openshift-apiserver pkg/route/apiserver/
# registry/route/etcd), which is why ``oc get all`` shows routes. Endpoints, ConfigMaps, Secrets
# and PVCs are not in it, on either.
_CATEGORY_ALL = frozenset({"pods", "services", "replicationcontrollers", "deployments.apps",
                           "replicasets.apps", "statefulsets.apps", "daemonsets.apps",
                           "routes.route.openshift.io"})
_ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def version_doc() -> dict:
    return {"major": "1", "minor": "32", "gitVersion": "v1.32.0+embedded", "gitCommit": "embedded",
            "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23",
            "compiler": "gc", "platform": "linux/amd64"}


def api_versions_doc() -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}


def _group_doc(resources: Iterable[ResourceType], group: str) -> dict | None:
    versions = sorted({r.version for r in resources if r.group == group})
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def group_list_doc(resources: tuple[ResourceType, ...]) -> dict:
    groups = sorted({r.group for r in resources if r.group}, key=[r.group for r in resources].index)
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_doc(resources, g) for g in groups]}


def group_doc(resources: tuple[ResourceType, ...], group: str) -> dict | None:
    doc = _group_doc(resources, group)
    return None if doc is None else {"kind": "APIGroup", "apiVersion": "v1", **doc}


def resource_list_doc(resources: tuple[ResourceType, ...], group: str, version: str) -> dict | None:
    rts = [r for r in resources if r.group == group and r.version == version]
    if not rts:
        return None
    out = []
    for r in rts:
        out.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": _ALL_VERBS, **({"shortNames": list(r.short_names)} if r.short_names else {}),
                    **({"categories": ["all"]} if r.key in _CATEGORY_ALL else {})})
        if r.has_status:
            out.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": ["get", "patch", "update"]})
        if scale_entry(r) is not None:
            out.append(scale_entry(r))
        if r.plural in ("services", "pods"):
            out.append({"name": f"{r.plural}/proxy", "singularName": "", "namespaced": True,
                        "kind": f"{r.kind}ProxyOptions", "verbs": ["create", "delete", "get", "patch", "update"]})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}



def _gv_paths(resources: Iterable[ResourceType]) -> list[str]:
    return sorted({f"apis/{r.group}/{r.version}" if r.group else "api/v1" for r in resources})


def openapi_v3_doc(resources: tuple[ResourceType, ...], gv_path: str) -> dict | None:
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


def table_doc(rt: ResourceType, items: list[dict], meta: dict, include: str) -> dict:
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

