"""The check library: small observations that exercises' pytest modules compose.

Every function here reads a ``View`` (never the API), and either returns what it found or raises
``CheckFailed`` saying what was expected, what was seen, and which ``oc`` command shows it.
Student objects are untrusted: every access tolerates missing fields and wrong types, so a
malformed object fails the check with a message instead of crashing the run.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, NoReturn

from .errors import CheckFailed
from .i18n import Raw, Text, t
from .kube import RESOURCES, HttpAnswer, resource
from .snapshot import Obj, View


class NotApplicable(Exception):
    """Raised by a check that does not apply here (e.g. a one-node cluster); it is awarded."""

    def __init__(self, message: Text) -> None:
        super().__init__(message.en)
        self.message = message


# --- small helpers ---------------------------------------------------------------------------
def fail(message: Text, command: str | None = None) -> NoReturn:
    raise CheckFailed(message, command)


def dig(obj: Any, *path: str | int, default: Any = None) -> Any:
    """``obj[path...]`` that tolerates missing keys and wrong types anywhere on the way."""
    cur = obj
    for key in path:
        if isinstance(key, int):
            if not isinstance(cur, list) or not -len(cur) <= key < len(cur):
                return default
        elif not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return default if cur is None else cur


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def name_of(obj: Obj) -> str:
    return str(dig(obj, "metadata", "name", default=""))


def labels_of(obj: Obj) -> dict[str, Any]:
    return as_dict(dig(obj, "metadata", "labels"))


def oc(view: View, verb_args: str) -> str:
    return f"oc {verb_args} -n {view.namespace}"


def show(view: View, kind: str, name: str | None = None, fmt: str = "yaml") -> str:
    res = resource(kind)
    target = f"{res.short} {name}" if name else res.short
    return oc(view, f"get {target}" + (f" -o {fmt}" if name and fmt else ""))


def fmt_labels(labels: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "-"


# --- objects ---------------------------------------------------------------------------------
def need(view: View, kind: str, name: str) -> Obj:
    obj = view.get(kind, name)
    if obj is None:
        others = sorted(name_of(o) for o in view.list(kind))[:5]
        seen = t("{kind} は1つもありません", "there is no {kind} at all", kind=Raw(kind)) if not others else \
            t("あるのは {names} です", "found only {names}", names=Raw(", ".join(_q(n) for n in others)))
        fail(t("{kind} {name} が名前空間 {ns} にありません ({seen})。",
               "{kind} {name} does not exist in namespace {ns} ({seen}).",
               kind=Raw(kind), name=name, ns=view.namespace, seen=seen), show(view, kind))
    return obj


def _q(s: Any) -> str:
    from .i18n import quote
    return quote(s, 40)


def expect_labels(view: View, obj: Obj, wanted: Mapping[str, str]) -> None:
    labels = labels_of(obj)
    missing = {k: v for k, v in wanted.items() if labels.get(k) != v}
    if missing:
        kind = str(obj.get("kind") or "object")
        fail(t("{kind} {name} のラベルに {want} が必要です。実際のラベル: {got}",
               "{kind} {name} needs the label(s) {want}; its labels are {got}",
               kind=Raw(kind), name=name_of(obj), want=Raw(fmt_labels(missing)), got=fmt_labels(labels)),
             oc(view, f"get {resource(kind).short if kind in RESOURCES else 'all'} {name_of(obj)} --show-labels"))


# --- pods ------------------------------------------------------------------------------------
def containers(pod: Obj) -> list[dict[str, Any]]:
    return [c for c in as_list(dig(pod, "spec", "containers")) if isinstance(c, dict)]


def expect_image(view: View, pod: Obj, contains: str) -> None:
    images = [str(c.get("image", "")) for c in containers(pod)]
    if not any(contains in i for i in images):
        fail(t("Pod {name} のコンテナーイメージに {want} が含まれていません (実際: {got})。",
               "no container image of pod {name} contains {want} (images: {got}).",
               name=name_of(pod), want=contains, got=Raw(", ".join(_q(i) for i in images) or "-")),
             oc(view, f"get pod {name_of(pod)} -o jsonpath='{{.spec.containers[*].image}}'"))


def container_ports(pod: Obj) -> list[int]:
    return [p.get("containerPort") for c in containers(pod) for p in as_list(c.get("ports"))
            if isinstance(p, dict)]


def expect_container_port(view: View, pod: Obj, port: int) -> None:
    ports = container_ports(pod)
    if port not in ports:
        fail(t("Pod {name} に containerPort {want} がありません (実際: {got})。",
               "pod {name} declares no containerPort {want} (declared: {got}).",
               name=name_of(pod), want=port, got=Raw(", ".join(str(p) for p in ports) or "-")),
             oc(view, f"get pod {name_of(pod)} -o jsonpath='{{.spec.containers[*].ports}}'"))


def pod_ready(pod: Obj) -> bool:
    if dig(pod, "status", "phase") != "Running":
        return False
    statuses = [s for s in as_list(dig(pod, "status", "containerStatuses")) if isinstance(s, dict)]
    return bool(statuses) and len(statuses) >= len(containers(pod)) and all(s.get("ready") is True for s in statuses)


def pod_problem(pod: Obj) -> Text | None:
    """Why a pod is not Running and Ready, in the words ``oc describe`` would use."""
    if pod_ready(pod):
        return None
    phase = dig(pod, "status", "phase", default="Unknown")
    for s in as_list(dig(pod, "status", "containerStatuses")):
        waiting = dig(s, "state", "waiting")
        if isinstance(waiting, dict):
            return t("フェーズ {phase}、コンテナー {c} は {reason} で待機中: {msg}",
                     "phase {phase}, container {c} waiting: {reason}: {msg}",
                     phase=phase, c=dig(s, "name", default="?"), reason=dig(waiting, "reason", default="?"),
                     msg=dig(waiting, "message", default=""))
        terminated = dig(s, "state", "terminated")
        if isinstance(terminated, dict):
            return t("フェーズ {phase}、コンテナー {c} は終了しています ({reason})",
                     "phase {phase}, container {c} terminated ({reason})",
                     phase=phase, c=dig(s, "name", default="?"), reason=dig(terminated, "reason", default="?"))
    for cond in as_list(dig(pod, "status", "conditions")):
        if isinstance(cond, dict) and cond.get("status") == "False" and cond.get("type") == "PodScheduled":
            return t("フェーズ {phase}、スケジュールできません: {msg}", "phase {phase}, not scheduled: {msg}",
                     phase=phase, msg=cond.get("message", cond.get("reason", "")))
    if phase == "Running":
        return t("Running ですが Ready ではありません (readinessProbe を確認してください)",
                 "Running but not Ready (check its readinessProbe)")
    return t("フェーズ {phase}", "phase {phase}", phase=phase)


def expect_pod_ready(view: View, pod: Obj) -> None:
    problem = pod_problem(pod)
    if problem is not None:
        fail(t("Pod {name} が Running かつ Ready ではありません: ", "pod {name} is not Running and Ready: ",
               name=name_of(pod)) + problem,
             oc(view, f"describe pod {name_of(pod)}"))


# --- services --------------------------------------------------------------------------------
def service_ports(svc: Obj) -> list[dict[str, Any]]:
    return [p for p in as_list(dig(svc, "spec", "ports")) if isinstance(p, dict)]


def expect_service_type(view: View, svc: Obj, wanted: str = "ClusterIP") -> None:
    got = dig(svc, "spec", "type", default="ClusterIP")
    if got != wanted:
        fail(t("Service {name} のタイプは {want} であるべきですが {got} です。",
               "service {name} should be of type {want}, not {got}.",
               name=name_of(svc), want=wanted, got=got), show(view, "Service", name_of(svc), ""))


def expect_service_port(view: View, svc: Obj, port: int, target_port: int | str) -> None:
    ports = service_ports(svc)
    for p in ports:
        if p.get("port") == port and p.get("targetPort", port) == target_port:
            return
    got = ", ".join(f"{p.get('port')}→{p.get('targetPort', p.get('port'))}" for p in ports) or "-"
    fail(t("Service {name} にポート {port}→{target} がありません (実際: {got})。",
           "service {name} has no port {port}→{target} (found: {got}).",
           name=name_of(svc), port=port, target=Raw(str(target_port)), got=got),
         oc(view, f"get service {name_of(svc)} -o jsonpath='{{.spec.ports}}'"))


def selector_of(svc: Obj) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(dig(svc, "spec", "selector")).items()}


def selected_pods(view: View, svc: Obj) -> list[Obj]:
    return view.select("Pod", selector_of(svc))


def expect_selects_running_pod(view: View, svc: Obj) -> list[Obj]:
    sel = selector_of(svc)
    pods = selected_pods(view, svc)
    running = [p for p in pods if dig(p, "status", "phase") == "Running"]
    if not sel:
        fail(t("Service {name} にセレクターがありません。", "service {name} has no selector.", name=name_of(svc)),
             oc(view, f"describe service {name_of(svc)}"))
    if not running:
        all_labels = sorted({fmt_labels(labels_of(p)) for p in view.list("Pod")})[:5]
        fail(t("Service {name} のセレクター {sel} に一致する実行中の Pod がありません (一致した Pod: {n} 個。Pod のラベル: {labels})。",
               "the selector {sel} of service {name} matches no running pod ({n} matching pods; pod labels: {labels}).",
               name=name_of(svc), sel=fmt_labels(sel), n=len(pods), labels=Raw("; ".join(_q(l) for l in all_labels) or "-")),
             oc(view, f"get pods -l {fmt_labels(sel)}"))
    return running


def endpoint_addresses(view: View, svc: Obj) -> tuple[set[tuple[str, int]], set[str]]:
    """(ready ip:port pairs, not-ready ips) of the service's Endpoints object."""
    ep = view.get("Endpoints", name_of(svc))
    ready: set[tuple[str, int]] = set()
    not_ready: set[str] = set()
    for subset in as_list(dig(ep, "subsets")):
        ports = [p.get("port") for p in as_list(dig(subset, "ports")) if isinstance(p, dict)]
        for a in as_list(dig(subset, "addresses")):
            for port in ports:
                ready.add((str(dig(a, "ip", default="")), port))
        for a in as_list(dig(subset, "notReadyAddresses")):
            not_ready.add(str(dig(a, "ip", default="")))
    return ready, not_ready


def expect_endpoints_exactly(view: View, svc: Obj, pods: Iterable[Obj], port: int) -> None:
    """The service's ready endpoints are exactly ``pods``' IPs on ``port``, nothing else."""
    want = {(str(dig(p, "status", "podIP", default="")), port) for p in pods if pod_ready(p)}
    got, _ = endpoint_addresses(view, svc)
    if not want:
        fail(t("Service {name} の対象になる Ready な Pod がありません。", "no ready pod is behind service {name}.",
               name=name_of(svc)), oc(view, f"get endpoints {name_of(svc)}"))
    if got != want:
        def fmt(s: set[tuple[str, int]]) -> Raw:
            return Raw(", ".join(f"{ip}:{p}" for ip, p in sorted(s, key=str)) or "-")
        fail(t("Service {name} のエンドポイントは {want} であるべきですが {got} です。",
               "the endpoints of service {name} should be {want} but are {got}.",
               name=name_of(svc), want=fmt(want), got=fmt(got)), oc(view, f"get endpoints {name_of(svc)}"))


# --- HTTP answers ----------------------------------------------------------------------------
def expect_http_ok(answer: HttpAnswer, what: Text, command: str, contains: str | None = None) -> None:
    if answer.error is not None or answer.status != 200:
        fail(t("{what} が HTTP 200 で応答しません (状態 {status}: {err})。",
               "{what} does not answer HTTP 200 (status {status}: {err}).",
               what=what, status=answer.status, err=answer.error or answer.text[:120]), command)
    if contains and contains not in answer.text:
        fail(t("{what} の応答に {want} が含まれていません (先頭: {got})。",
               "the answer of {what} does not contain {want} (it begins {got}).",
               what=what, want=contains, got=answer.text[:80]), command)


def expect_http_answer(answer: HttpAnswer, what: Text, command: str) -> None:
    """Something behind the service answered HTTP (any status the application chose, e.g. the
    httpd test page's 403), as opposed to the proxy failing to reach it (502/503/404 Status)."""
    if answer.error is not None or not 0 < answer.status < 500:
        fail(t("{what} に到達できません (状態 {status}: {err})。",
               "{what} cannot be reached (status {status}: {err}).",
               what=what, status=answer.status, err=answer.error or answer.text[:120]), command)
