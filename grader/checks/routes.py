"""Checks on external access (ex6, ex7): a Route where the cluster serves route.openshift.io, an
Ingress elsewhere; admission by a router, the host, and the page behind it."""
from __future__ import annotations

from typing import Any

from .base import _q, _what, as_dict, as_list, dig, fail, kind_of, name_of, need, oc, show, tagged
from .http import expect_http_ok
from .services import resolve_target_port, selected_pods, service_ports
from ..i18n import Raw, Text, t
from ..kube import resource
from ..snapshot import Obj, View

# --- routes and ingresses --------------------------------------------------------------------
def exposure_kind(view: View) -> str:
    """Route where the cluster serves route.openshift.io (API discovery), Ingress elsewhere."""
    return "Route" if view.served("Route") else "Ingress"


def route_or_ingress(view: View, name: str) -> Obj:
    kind = exposure_kind(view)
    obj = view.get(kind, name)
    if obj is None and kind == "Route" and view.can_read("Ingress") and view.get("Ingress", name) is not None:
        fail(t("Route {name} がありません。Ingress {name} はありますが、このクラスターでは Route で公開してください。",
               "there is no Route {name}; there is an Ingress {name}, but on this cluster expose it with a Route.",
               name=name), show(view, "Route"))
    return tagged(obj if obj is not None else need(view, kind, name), kind)


def _backends(obj: Obj) -> list[tuple[str, str, Any]]:
    """(kind, service name, port) each request may go to."""
    if kind_of(obj) == "Route":
        to = as_dict(dig(obj, "spec", "to"))
        return [(str(to.get("kind") or "Service"), str(to.get("name", "")), dig(obj, "spec", "port", "targetPort"))]
    out = []
    default = dig(obj, "spec", "defaultBackend", "service")
    if isinstance(default, dict):
        out.append(("Service", str(default.get("name", "")), dig(default, "port", "number") or dig(default, "port", "name")))
    for rule in as_list(dig(obj, "spec", "rules")):
        for p in as_list(dig(rule, "http", "paths")):
            svc = dig(p, "backend", "service")
            out.append(("Service", str(dig(svc, "name", default="")), dig(svc, "port", "number") or dig(svc, "port", "name")))
    return out


def expect_exposes_service(view: View, obj: Obj, service: str) -> None:
    """Every backend of the Route/Ingress is ``service``, on a port that service has."""
    backends = _backends(obj)
    kind = kind_of(obj)
    cmd = show(view, kind, name_of(obj))
    wrong = [(k, n) for k, n, _ in backends if (k, n) != ("Service", service)]
    if not backends or wrong:
        got = ", ".join(_q(f"{k}/{n}") for k, n in (wrong or [("-", "-")]))
        fail(t("{what} の転送先は Service {svc} であるべきですが {got} です。",
               "{what} should send traffic to service {svc}, not {got}.",
               what=_what(obj), svc=service, got=Raw(got)), cmd)
    svc = need(view, "Service", service)
    ports = service_ports(svc)
    for _, _, port in backends:
        if port in (None, ""):
            continue
        if kind == "Route":
            ok = any(_router_matches(port, p, svc, view) for p in ports)
        else:                 # an Ingress names a service port
            ok = any(port in (p.get("name"), p.get("port")) for p in ports)
        if ok:
            continue
        values = dict(what=_what(obj), svc=service,
                      port=Raw(_q(port) if isinstance(port, str) else str(port) if isinstance(port, int) else "?"),
                      ports=", ".join(f"{p.get('port')}→{p.get('targetPort', p.get('port'))}" for p in ports) or "-")
        if kind == "Route":
            fail(t("{what} の targetPort {port} は Service {svc} のポート名にも、エンドポイントのポート番号 (Pod 側) にも一致しません ({ports})。"
                   "ルーターが照合するのは Service のポートの名前か Pod 側のポート番号だけです (コンテナーポートの名前は照合されません)。",
                   "targetPort {port} of {what} matches neither a port name of service {svc} nor its endpoints' port "
                   "number ({ports}); the router matches a route's targetPort only against a service port's name or "
                   "the pods' port number (not the service port, nor a container port's name).", **values), cmd)
        fail(t("{what} のポート {port} は Service {svc} のポート ({ports}) にありません。",
               "port {port} of {what} is not a port of service {svc} ({ports}).", **values), cmd)


def _router_matches(route_port: Any, svc_port: dict[str, Any], svc: Obj, view: View) -> bool:
    """Whether the OpenShift router sends a Route with ``spec.port.targetPort`` to this service
    port's endpoints. It compares the route's value with each endpoint port's *name* (the service
    port's name) and *number* (the resolved target port), and nothing else (openshift/router,
    pkg/router/template ``endpointsForAlias``: ``endpoint.PortName == PreferPort ||
    endpoint.Port == PreferPort``). So ``targetPort: http`` needs a service port *named* http: the
    container port's name behind the service's own ``targetPort: http`` does not count."""
    wanted = str(route_port)
    if wanted == str(svc_port.get("name") or ""):
        return True
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, str):     # named on the pods: the endpoints carry the numbers it resolves to
        numbers = set(resolve_target_port(svc_port, selected_pods(view, svc)))
    else:
        numbers = {target}
    return wanted in {str(n) for n in numbers}


def route_admission(route: Obj) -> tuple[bool, list[tuple[str, str, str]]]:
    """(admitted by some router, [(routerName, reason, message)] of the routers that refused it).

    A cluster may run several routers (shards), each writing its own ``status.ingress[]`` entry:
    one router admitting the route is enough for it to be served, while another may refuse the
    same host (HostAlreadyClaimed) for routes it does not serve."""
    admitted = False
    refused: list[tuple[str, str, str]] = []
    for entry in as_list(dig(route, "status", "ingress")):
        for cond in as_list(dig(entry, "conditions")):
            if not isinstance(cond, dict) or cond.get("type") != "Admitted":
                continue
            if cond.get("status") == "True":
                admitted = True
            elif cond.get("status") == "False":
                refused.append((str(dig(entry, "routerName", default="?")), str(cond.get("reason") or "?"),
                                str(cond.get("message") or "")))
    return admitted, refused


def refusal_text(refused: list[tuple[str, str, str]]) -> Text:
    """Which routers refused and why, in their own words (the reason alone does not say whose the
    host is: HostAlreadyClaimed is given for an older route in the same namespace too)."""
    parts = [t("ルーター {router} が拒否: {reason}: {msg}", "router {router} refused it: {reason}: {msg}",
               router=router, reason=reason, msg=message) for router, reason, message in refused[:3]]
    out = parts[0]
    for part in parts[1:]:
        out = out + Text.same("; ") + part
    return out


def expect_admitted(view: View, obj: Obj) -> None:
    """A Route admitted by at least one router (Admitted=True in any status.ingress entry), an
    Ingress given an address by its controller."""
    cmd = oc(view, f"describe {resource(kind_of(obj)).short} {name_of(obj)}")
    if kind_of(obj) == "Route":
        admitted, refused = route_admission(obj)
        if admitted:
            return
        why = t("ルーターの応答がありません", "no router has admitted it yet") if not refused else refusal_text(refused)
        fail(t("Route {name} がルーターに受け入れられていません ({why})。", "route {name} is not admitted by a router ({why}).",
               name=name_of(obj), why=why), cmd)
    lb = [i for i in as_list(dig(obj, "status", "loadBalancer", "ingress")) if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))]
    if not lb:
        fail(t("Ingress {name} にアドレスが割り当てられていません (status.loadBalancer.ingress が空)。Ingress コントローラーと ingressClassName を確認してください。",
               "ingress {name} has no address (status.loadBalancer.ingress is empty); check the ingress controller and ingressClassName.",
               name=name_of(obj)), cmd)


def exposure_host(obj: Obj) -> str:
    if kind_of(obj) == "Route":
        host = dig(obj, "spec", "host") or dig(obj, "status", "ingress", 0, "host")
        return host if isinstance(host, str) else ""
    for rule in as_list(dig(obj, "spec", "rules")):
        host = dig(rule, "host")
        if isinstance(host, str) and host:
            return host
    return ""


def expect_host(view: View, obj: Obj) -> str:
    host = exposure_host(obj)
    if not host:
        fail(t("{what} にホスト名がありません。", "{what} has no host name.", what=_what(obj)),
             oc(view, f"get {resource(kind_of(obj)).short} {name_of(obj)}"))
    return host


def expect_page(view: View, probe: Any, obj: Obj, path: str = "/", contains: str = "") -> None:
    """The page at the Route/Ingress host answers 200 (and contains ``contains`` if given), over
    real HTTP through the probe, which refuses hosts outside the route domain/router."""
    host = expect_host(view, obj)
    answer = probe.url(host, path)
    # Where the host does not resolve (the sandbox, or a router named by --router/GRADER_ROUTER),
    # the command that works sends the request to the router itself, Host header unchanged.
    router = getattr(probe, "router", None)
    via = f"--connect-to ::{router} " if isinstance(router, str) and router else ""
    expect_http_ok(answer, t("http://{h}{p}", "http://{h}{p}", h=Raw(host), p=Raw(path)),
                   f"curl -i {via}http://{host}{path}", contains or None)
