"""What the embedded API server answers besides objects: discovery documents, the small
OpenAPI v3 index kubectl needs; the Tables ``kubectl get`` prints are in ``tables``."""
from __future__ import annotations

from typing import Any, Iterable

from .apitypes import ResourceType
from .tables import table_doc  # noqa: F401 - served from here to the HTTP layer
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
