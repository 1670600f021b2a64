"""Checks on services (ex2, ex5, ex7): ports, selectors and endpoints (HTTP answers are in ``http``).

Endpoints are read as a real cluster shows them today: from discovery.k8s.io/v1 EndpointSlices
(v1 Endpoints is deprecated since Kubernetes 1.33 and some clusters deny it to students), with
named target ports resolved on the pods, pods being deleted left out, and both address families
of a dual-stack service compared.
"""
from __future__ import annotations

import socket
from typing import Any, Iterable, NamedTuple

from .base import _q, as_dict, as_list, containers, dig, fail, fmt_labels, labels_of, name_of, oc, show
from .pods import pod_ready, pod_terminating
from ..errors import CannotSee, InfraError
from ..i18n import Raw, Text, t
from ..snapshot import Obj, View

# --- services --------------------------------------------------------------------------------
def service_ports(svc: Obj) -> list[dict[str, Any]]:
    return [p for p in as_list(dig(svc, "spec", "ports")) if isinstance(p, dict)]


def expect_service_type(view: View, svc: Obj, wanted: str = "ClusterIP") -> None:
    got = dig(svc, "spec", "type", default="ClusterIP")
    if got != wanted:
        fail(t("Service {name} のタイプは {want} であるべきですが {got} です。",
               "service {name} should be of type {want}, not {got}.",
               name=name_of(svc), want=wanted, got=got), show(view, "Service", name_of(svc), ""))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _live(pods: Iterable[Obj]) -> list[Obj]:
    return [p for p in pods if isinstance(p, dict) and not pod_terminating(p)]


def resolve_target_port(svc_port: dict[str, Any], pods: Iterable[Obj]) -> dict[int, list[str]]:
    """number → pod names, for a named ``targetPort``: each pod's containerPort of that name and
    the service port's protocol, as kube-proxy and the endpoints controllers resolve it (pod by pod,
    so two pods may resolve one name to different numbers)."""
    name = svc_port.get("targetPort")
    protocol = svc_port.get("protocol") or "TCP"
    out: dict[int, list[str]] = {}
    for pod in _live(pods):
        for c in containers(pod):
            found = next((p.get("containerPort") for p in as_list(c.get("ports")) if isinstance(p, dict)
                          and p.get("name") == name and (p.get("protocol") or "TCP") == protocol
                          and _is_int(p.get("containerPort"))), None)
            if found is not None:
                out.setdefault(found, []).append(name_of(pod))
                break
    return out


def _port_text(p: dict[str, Any]) -> str:
    target = p.get("targetPort", p.get("port"))
    return f"{p.get('port')}→{_q(target) if isinstance(target, str) else target}"


def expect_service_port(view: View, svc: Obj, port: int, target_port: int | str,
                        pods: Iterable[Obj] | None = None) -> Text | None:
    """The service has ``port`` → ``target_port``. A named targetPort (``http``) satisfies a
    numeric ``target_port`` when it resolves to that number on the selected pods (or ``pods``);
    the returned note says how it resolved (None for a plain number)."""
    ports = service_ports(svc)
    cmd = oc(view, f"get service {name_of(svc)} -o jsonpath='{{.spec.ports}}'")
    named_problem: Text | None = None
    for p in ports:
        target = p.get("targetPort", port)
        if p.get("port") != port:
            continue
        if target == target_port:
            return None
        if not (isinstance(target, str) and _is_int(target_port)):
            continue
        candidates = selected_pods(view, svc) if pods is None else list(pods)
        resolved = resolve_target_port(p, candidates)
        if set(resolved) == {target_port}:
            names = resolved[target_port]
            return t("targetPort {name} は Pod {pods} で {num} に解決されます。",
                     "targetPort {name} resolves to {num} on pod {pods}.", name=target, num=target_port,
                     pods=Raw(", ".join(_q(n) for n in names[:5]) + (" …" if len(names) > 5 else "")))
        if resolved:
            seen = ", ".join(f"{num} (pod {', '.join(_q(n) for n in pods_[:3])})" for num, pods_ in sorted(resolved.items()))
            named_problem = t("targetPort {name} は {want} ではなく {seen} に解決されます。",
                              "targetPort {name} resolves to {seen}, not {want}.",
                              name=target, want=target_port, seen=Raw(seen))
        else:
            named_problem = t("targetPort {name} はどの Pod の containerPort の名前 ({proto}) にも一致しないため解決できません (対象 Pod: {n} 個)。",
                              "targetPort {name} cannot be resolved: no containerPort ({proto}) of the selected pods is named so ({n} live pods selected).",
                              name=target, proto=Raw(str(p.get("protocol") or "TCP")), n=len(_live(candidates)))
    if named_problem is not None:
        fail(t("Service {name} のポート {port}→{target} が満たされません: ", "service {name} does not forward {port}→{target}: ",
               name=name_of(svc), port=port, target=Raw(str(target_port))) + named_problem,
             oc(view, f"get pods -o jsonpath='{{range .items[*]}}{{.metadata.name}} {{.spec.containers[*].ports}}{{\"\\n\"}}{{end}}'"))
    got = ", ".join(_port_text(p) for p in ports) or "-"
    fail(t("Service {name} にポート {port}→{target} がありません (実際: {got})。",
           "service {name} has no port {port}→{target} (found: {got}).",
           name=name_of(svc), port=port, target=Raw(str(target_port)), got=Raw(got)), cmd)


def selector_of(svc: Obj) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(dig(svc, "spec", "selector")).items()}


def selected_pods(view: View, svc: Obj) -> list[Obj]:
    return view.select("Pod", selector_of(svc))


def expect_selects_running_pod(view: View, svc: Obj) -> list[Obj]:
    """Some pod the selector matches runs and is not being deleted."""
    sel = selector_of(svc)
    pods = selected_pods(view, svc)
    running = [p for p in _live(pods) if dig(p, "status", "phase") == "Running"]
    if not sel:
        fail(t("Service {name} にセレクターがありません。", "service {name} has no selector.", name=name_of(svc)),
             oc(view, f"describe service {name_of(svc)}"))
    if not running:
        all_labels = sorted({fmt_labels(labels_of(p)) for p in view.list("Pod")})[:5]
        deleting = len(pods) - len(_live(pods))
        fail(t("Service {name} のセレクター {sel} に一致する実行中の Pod がありません (一致した Pod: {n} 個、うち削除中 {d} 個。Pod のラベル: {labels})。",
               "the selector {sel} of service {name} matches no running pod ({n} matching pods, {d} of them being deleted; pod labels: {labels}).",
               name=name_of(svc), sel=fmt_labels(sel), n=len(pods), d=deleting,
               labels=Raw("; ".join(_q(l) for l in all_labels) or "-")),
             oc(view, f"get pods -l {fmt_labels(sel)}"))
    return running


# --- endpoints -------------------------------------------------------------------------------
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class Endpoints(NamedTuple):
    """What the cluster routes a service to: ready (ip, port) pairs, IPs of endpoints that are
    not ready (terminating ones included), the address families covered (None: the pods' primary
    IP only), and the command that shows them."""
    ready: set[tuple[str, int]]
    not_ready: set[str]
    families: set[str] | None
    source: str
    command: str


def _family(ip: str) -> str | None:
    """The address family of an endpoint address; None for what is not an address. ``inet_pton``
    is C, where ``ipaddress.ip_address`` (pure Python) was a visible share of a batch's check time."""
    if not isinstance(ip, str):
        return None
    for family, name in ((socket.AF_INET, "IPv4"), (socket.AF_INET6, "IPv6")):
        try:
            socket.inet_pton(family, ip)
            return name
        except (OSError, ValueError):
            continue
    return None


def _service_families(svc: Obj) -> list[str]:
    return [f for f in as_list(dig(svc, "spec", "ipFamilies")) if f in ("IPv4", "IPv6")]


def _from_slices(view: View, svc: Obj, slices: list[Obj]) -> Endpoints:
    """discovery.k8s.io/v1 EndpointSlices of the service (several per family once a slice is full):
    an endpoint is ready when ``conditions.ready`` is true or absent (the API's nil means ready)."""
    ready: set[tuple[str, int]] = set()
    not_ready: set[str] = set()
    seen: set[str] = set()
    for sl in slices:
        if sl.get("addressType") not in ("IPv4", "IPv6"):
            continue  # FQDN slices are not written by the controller and not routed by kube-proxy
        seen.add(sl["addressType"])
        ports = [p.get("port") for p in as_list(sl.get("ports")) if isinstance(p, dict) and _is_int(p.get("port"))]
        for e in as_list(sl.get("endpoints")):
            if not isinstance(e, dict):
                continue
            flag = as_dict(e.get("conditions")).get("ready")
            addresses = [a for a in as_list(e.get("addresses")) if isinstance(a, str)]
            if flag is None or flag is True:
                ready.update((a, port) for a in addresses for port in ports)
            else:
                not_ready.update(addresses)
    families = set(_service_families(svc)) or seen or None
    cmd = oc(view, f"get endpointslices -l {SERVICE_NAME_LABEL}={name_of(svc)}")
    return Endpoints(ready, not_ready, families, "EndpointSlice", cmd)


def _from_endpoints(view: View, svc: Obj) -> Endpoints:
    """v1 Endpoints (deprecated since 1.33): one family only, the service's primary one."""
    ep = view.get("Endpoints", name_of(svc))
    ready: set[tuple[str, int]] = set()
    not_ready: set[str] = set()
    for subset in as_list(dig(ep, "subsets")):
        ports = [p.get("port") for p in as_list(dig(subset, "ports")) if isinstance(p, dict) and _is_int(p.get("port"))]
        for a in as_list(dig(subset, "addresses")):
            ready.update((str(dig(a, "ip", default="")), port) for port in ports)
        for a in as_list(dig(subset, "notReadyAddresses")):
            not_ready.add(str(dig(a, "ip", default="")))
    families = _service_families(svc)[:1]
    return Endpoints(ready, not_ready, set(families) or None, "Endpoints", oc(view, f"get endpoints {name_of(svc)}"))


def service_endpoints(view: View, svc: Obj) -> Endpoints:
    """The service's endpoints from its EndpointSlices; v1 Endpoints only where slices are not
    served or may not be read. Neither readable is the grader's blindness, an error."""
    why: Text | None = None
    if view.served("EndpointSlice"):
        try:
            slices = [s for s in view.list("EndpointSlice") if labels_of(s).get(SERVICE_NAME_LABEL) == name_of(svc)]
            return _from_slices(view, svc, slices)
        except CannotSee as e:
            why = e.message
    try:
        return _from_endpoints(view, svc)
    except CannotSee as e:
        if why is None:
            raise
        raise InfraError(t("Service {name} のエンドポイントを読み取れません。EndpointSlice: {a} / Endpoints: {b}",
                           "cannot read the endpoints of service {name}: EndpointSlices: {a}; Endpoints: {b}",
                           name=name_of(svc), a=why, b=e.message)) from None


def endpoint_addresses(view: View, svc: Obj) -> tuple[set[tuple[str, int]], set[str]]:
    """(ready ip:port pairs, not-ready ips) of the service, from its EndpointSlices."""
    got = service_endpoints(view, svc)
    return got.ready, got.not_ready


def pod_ips(pod: Obj) -> list[str]:
    """Every IP of a pod (``status.podIPs``, both families on a dual-stack cluster), primary first."""
    ips = [str(dig(i, "ip")) for i in as_list(dig(pod, "status", "podIPs")) if isinstance(dig(i, "ip"), str)]
    primary = dig(pod, "status", "podIP")
    if isinstance(primary, str) and primary and primary not in ips:
        ips.insert(0, primary)
    return ips


def expect_endpoints_exactly(view: View, svc: Obj, pods: Iterable[Obj], port: int) -> None:
    """The service's ready endpoints on ``port`` are exactly the IPs of ``pods`` that are Ready
    and not being deleted -- every family the service has -- and nothing else."""
    got = service_endpoints(view, svc)
    want: set[tuple[str, int]] = set()
    for p in _live(pods):
        if not pod_ready(p):
            continue
        ips = pod_ips(p)
        want.update((ip, port) for ip in (ips if got.families else ips[:1])
                    if got.families is None or _family(ip) in got.families)
    if not want:
        fail(t("Service {name} の対象になる Ready な Pod がありません。", "no ready pod is behind service {name}.",
               name=name_of(svc)), got.command)
    on_port = {(ip, p) for ip, p in got.ready if p == port}
    if on_port != want:
        def fmt(s: set[tuple[str, int]]) -> Raw:
            return Raw(", ".join(f"[{ip}]:{p}" if ":" in ip else f"{ip}:{p}" for ip, p in sorted(s, key=str)) or "-")
        fail(t("Service {name} のエンドポイント ({src}) は {want} であるべきですが {got} です。",
               "the endpoints of service {name} ({src}) should be {want} but are {got}.",
               name=name_of(svc), src=Raw(got.source), want=fmt(want), got=fmt(got.ready)), got.command)
