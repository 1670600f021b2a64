"""The embedded cluster's service networking controllers: v1 Endpoints, discovery.k8s.io/v1
EndpointSlices, route admission and ingress status.

Both endpoint objects are written the way kube-controller-manager writes them, because graders
read either (EndpointSlices first, Endpoints where slices are not served):

- Which pods: ``ShouldPodBeInEndpoints`` (k8s.io/endpointslice/util/controller_utils.go) leaves
  out pods without an IP and finished pods; the Endpoints controller also leaves out Terminating
  pods (``includeTerminating = publishNotReadyAddresses``) while the EndpointSlice reconciler keeps
  them (``includeTerminating = true``).
- Conditions: ``podToEndpoint`` (k8s.io/endpointslice/utils.go) writes ``serving`` = the pod's
  Ready condition, ``terminating`` = deletionTimestamp set, and
  ``ready = publishNotReadyAddresses || (serving && !terminating)``.
- Ports: a named ``targetPort`` is looked up per pod among its containerPorts of the same
  protocol (``findPort``).  A pod without that name is left out of that port in Endpoints; in
  slices, pods are grouped by the ports they resolved to, an empty list included.
- Slice metadata: ``generateName: <service>-``, the Service's labels plus
  ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``, a controller
  ownerReference to the Service, ``addressType`` from the Service's IP family (IPv4 here).
"""
from __future__ import annotations

import json
from typing import Any

from .apitypes import ResourceType, selector_matches
from .ctlutil import condition, is_ready, is_terminal, is_terminating, owned_by, owner_ref, resolve_target, suffix

MANAGED_BY = "endpointslice-controller.k8s.io"
_RESERVED = ("kubernetes.io/service-name", "endpointslice.kubernetes.io/managed-by", "service.kubernetes.io/headless")


def _in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``: an IP, not finished, and (unless included) not terminating."""
    st = pod.get("status") or {}
    if is_terminal(pod) or not (st.get("podIP") or st.get("podIPs")):
        return False
    return include_terminating or not is_terminating(pod)


def _pod_ports(pod: dict, service_ports: list[dict]) -> list[dict]:
    """The service's ports as resolved on this pod (``getEndpointPorts``), in service order."""
    out = []
    for sp in service_ports:
        proto = sp.get("protocol", "TCP")
        port = resolve_target(pod, sp.get("targetPort", sp.get("port")), proto)
        if port is not None:
            p = {"name": sp.get("name", ""), "port": port, "protocol": proto}
            if sp.get("appProtocol"):
                p["appProtocol"] = sp["appProtocol"]
            out.append(p)
    return out


class NetworkMixin:
    """Endpoints, EndpointSlices, routes and ingresses; mixed into ``Controllers``."""

    store: Any
    R: dict[str, ResourceType]
    route_domain: str
    _managed_endpoints: set[tuple[str, str]]

    def _create(self, rt: ResourceType, ns: str, obj: dict) -> dict | None: ...   # from Controllers

    def _sync_network(self, ns: str, pods: list[dict]) -> None:
        s, R = self.store, self.R
        for svc in s.list(R["services"], ns)[0]:
            if isinstance(svc.get("spec"), dict) and (svc["spec"].get("selector") or None):
                members = [p for p in pods if selector_matches({"matchLabels": svc["spec"]["selector"]},
                                                               p["metadata"].get("labels") or {})]
                self._sync_endpoints(svc, members)
                self._sync_slices(svc, members)
        for ep in s.list(R["endpoints"], ns)[0]:
            if (ns, ep["metadata"]["name"]) in self._managed_endpoints and not s.exists(R["services"], ns, ep["metadata"]["name"]):
                s.delete(R["endpoints"], ns, ep["metadata"]["name"], missing_ok=True)
                self._managed_endpoints.discard((ns, ep["metadata"]["name"]))
        if "routes.route.openshift.io" in R:
            for route in s.list(R["routes.route.openshift.io"], ns)[0]:
                self._admit_route(route)
        for ing in s.list(R["ingresses.networking.k8s.io"], ns)[0]:
            if (ing.get("spec") or {}).get("rules") or (ing.get("spec") or {}).get("defaultBackend"):
                ing["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
                s.put(R["ingresses.networking.k8s.io"], ing)

    def _sync_endpoints(self, svc: dict, pods: list[dict]) -> None:
        """v1 Endpoints: ready pods in ``addresses``, the rest in ``notReadyAddresses``; one
        subset per distinct set of resolved ports (what ``RepackSubsets`` arrives at)."""
        s, R = self.store, self.R
        spec = svc["spec"]
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        sports = spec.get("ports") or []
        publish = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[str, dict[str, Any]] = {}
        for p in pods:
            if not _in_endpoints(p, include_terminating=publish):
                continue
            ports = _pod_ports(p, sports)
            if sports and not ports:
                continue
            for port in ports:
                if not port["name"]:
                    port.pop("name")
            g = groups.setdefault(json.dumps(ports, sort_keys=True), {"ports": ports, "ready": [], "not": []})
            addr = {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}}
            g["ready" if publish or is_ready(p) else "not"].append(addr)
        subsets = []
        for key in sorted(groups):
            g = groups[key]
            sub: dict[str, Any] = {}
            if g["ready"]:
                sub["addresses"] = sorted(g["ready"], key=lambda a: a["ip"])
            if g["not"]:
                sub["notReadyAddresses"] = sorted(g["not"], key=lambda a: a["ip"])
            sub["ports"] = g["ports"]
            subsets.append(sub)
        ep = s.get(R["endpoints"], ns, name)
        labels = dict(svc["metadata"].get("labels") or {})
        if ep is None:
            body: dict[str, Any] = {"metadata": {"name": name, "labels": labels}}
            if subsets:
                body["subsets"] = subsets
            self._create(R["endpoints"], ns, body)
        else:
            ep.pop("subsets", None)
            if subsets:
                ep["subsets"] = subsets
            ep["metadata"]["labels"] = labels
            s.put(R["endpoints"], ep)
        self._managed_endpoints.add((ns, name))

    def _sync_slices(self, svc: dict, pods: list[dict]) -> None:
        """EndpointSlices: terminating pods kept with their conditions, one slice per port set,
        and an empty placeholder slice when no pod matches (as the reconciler keeps one)."""
        s, R = self.store, self.R
        es_rt = R["endpointslices.discovery.k8s.io"]
        spec, meta = svc["spec"], svc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        publish = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[str, dict[str, Any]] = {}
        for p in pods:
            if not _in_endpoints(p, include_terminating=True):
                continue
            ports = _pod_ports(p, spec.get("ports") or [])
            g = groups.setdefault(json.dumps(ports, sort_keys=True), {"ports": ports, "endpoints": []})
            serving, terminating = is_ready(p), is_terminating(p)
            ep: dict[str, Any] = {
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": publish or (serving and not terminating),
                               "serving": serving, "terminating": terminating},
                "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}}
            if p["spec"].get("nodeName"):
                ep["nodeName"] = p["spec"]["nodeName"]
            g["endpoints"].append(ep)
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _RESERVED}
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        labels.update({"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": MANAGED_BY})
        wanted = []
        for i, key in enumerate(sorted(groups) or [""]):
            g = groups.get(key) or {"ports": None, "endpoints": []}
            slice_name = f"{name}-{suffix(meta['uid'] + str(i))}"
            wanted.append(slice_name)
            body = {"metadata": {"name": slice_name, "generateName": f"{name}-", "labels": labels,
                                 "ownerReferences": [owner_ref(R["services"], svc)]},
                    "addressType": "IPv4",
                    # an empty slice reads back as `endpoints: null`, as from a real server
                    "endpoints": sorted(g["endpoints"], key=lambda e: e["addresses"][0]) or None,
                    # slice ports always carry a name ("" when unnamed), unlike Endpoints;
                    # `kubectl describe service` dereferences it
                    "ports": g["ports"]}
            cur = s.get(es_rt, ns, slice_name)
            if cur is None:
                self._create(es_rt, ns, body)
            else:
                cur.update({k: v for k, v in body.items() if k != "metadata"})
                cur["metadata"]["labels"] = labels
                s.put(es_rt, cur)
        for es in s.list(es_rt, ns)[0]:
            if owned_by(es, meta["uid"]) and es["metadata"]["name"] not in wanted:
                s.delete(es_rt, ns, es["metadata"]["name"], missing_ok=True)

    def _admit_route(self, route: dict) -> None:
        spec = route.get("spec") or {}
        old = ((route.get("status") or {}).get("ingress") or [{}])[0].get("conditions")
        kind = (spec.get("to") or {}).get("kind", "Service")
        host, meta = str(spec.get("host") or "").lower(), route["metadata"]
        same_host = by_host(self.store, self.R["routes.route.openshift.io"], host) if host else []
        holder = next((r for r in same_host if host and (
            r["metadata"]["namespace"] != meta["namespace"] and isinstance(r.get("spec"), dict)
            and str(r["spec"].get("host") or "").lower() == host
            and (r["metadata"].get("creationTimestamp", ""), r["metadata"]["namespace"]) < (meta.get("creationTimestamp", ""), meta["namespace"]))), None)
        if holder is not None:  # OpenShift's router: the oldest route in another namespace keeps the host
            # openshift/router's host admitter words it so, naming neither the holder nor its namespace
            cond = condition(old, "Admitted", "False", "HostAlreadyClaimed",
                              f"a route in another namespace holds {host} and is older than {meta['name']}")
        elif kind == "Service":
            cond = condition(old, "Admitted", "True")
        else:
            cond = condition(old, "Admitted", "False", "ExtendedValidationFailed",
                              f'spec.to.kind: Invalid value: "{kind}": must reference a Service')
        route["status"] = {"ingress": [{"host": spec.get("host", ""), "routerName": "default",
                                        "wildcardPolicy": spec.get("wildcardPolicy", "None"),
                                        "routerCanonicalHostname": f"router-default.{self.route_domain}",
                                        "conditions": [cond]}]}
        self.store.put(self.R["routes.route.openshift.io"], route)


def route_hosts(obj: dict) -> list[str]:
    """The host a Route asks for, as the router matches it (lower case)."""
    spec = obj.get("spec")
    host = str(spec.get("host") or "").lower() if isinstance(spec, dict) else ""
    return [host] if host else []


def ingress_hosts(obj: dict) -> list[str]:
    """The hosts of an Ingress's rules (lower case)."""
    spec = obj.get("spec")
    rules = spec.get("rules") if isinstance(spec, dict) else None
    return sorted({str(r.get("host") or "").lower() for r in rules if isinstance(r, dict) and r.get("host")}) \
        if isinstance(rules, list) else []


def by_host(store: Any, rt: ResourceType, host: str) -> list[dict]:
    """Routes or Ingresses naming ``host``, from an index (a scan per lookup made the router and
    route admission quadratic in the number of routes)."""
    store.add_index(rt, "host", route_hosts if rt.kind == "Route" else ingress_hosts)
    return store.lookup(rt, "host", host.lower())
