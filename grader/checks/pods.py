"""Checks on pods themselves (ex1 and every exercise that runs one): images, container ports,
readiness, and why a pod is not ready. Their controllers are in ``workloads``."""
from __future__ import annotations

from typing import Any

from .base import _WORKLOAD_KINDS, _q, _what, as_list, containers, dig, fail, kind_of, name_of, oc, short_name
from ..i18n import Raw, Text, t
from ..snapshot import Obj, View

def expect_image(view: View, obj: Obj, contains: str) -> None:
    """Some container of a Pod (or of a controller's pod template) runs an image whose name
    contains ``contains``."""
    images = [str(c.get("image", "")) for c in containers(obj)]
    if not any(contains in i for i in images):
        template = kind_of(obj) in _WORKLOAD_KINDS
        path = ".spec.template.spec.containers[*].image" if template else ".spec.containers[*].image"
        fail(t("{what} のコンテナーイメージに {want} が含まれていません (実際: {got})。",
               "no container image of {what} contains {want} (images: {got}).",
               what=_what(obj), want=contains, got=Raw(", ".join(_q(i) for i in images) or "-")),
             oc(view, f"get {short_name(obj)} {name_of(obj)} -o jsonpath='{{{path}}}'"))



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


def pod_terminating(pod: Obj) -> bool:
    """Deleted and in its grace period: the endpoints controllers drop it at once, so it is no
    longer one of a service's or a controller's running pods, whatever its phase still says."""
    return bool(dig(pod, "metadata", "deletionTimestamp"))


def _conditions(pod: Obj) -> dict[str, dict[str, Any]]:
    return {str(c.get("type")): c for c in as_list(dig(pod, "status", "conditions")) if isinstance(c, dict)}


def pod_ready(pod: Obj) -> bool:
    """The pod's ``Ready`` condition is True: the kubelet's verdict, which also waits for every
    readiness gate (all containers ready is not enough), and what the endpoints controllers read."""
    return _conditions(pod).get("Ready", {}).get("status") == "True"


def _gate_problem(pod: Obj, phase: Any) -> Text | None:
    """The first readiness gate that holds the pod back (missing counts as False, as in the kubelet)."""
    conds = _conditions(pod)
    for gate in as_list(dig(pod, "spec", "readinessGates")):
        kind = dig(gate, "conditionType")
        if not isinstance(kind, str) or conds.get(kind, {}).get("status") == "True":
            continue
        ready = conds.get("Ready", {})
        return t("フェーズ {phase}、readiness gate {gate} が {status} です (Ready: {reason}: {msg})",
                 "phase {phase}, readiness gate {gate} is {status} (Ready: {reason}: {msg})",
                 phase=phase, gate=kind, status=Raw(str(conds.get(kind, {}).get("status") or "missing")),
                 reason=ready.get("reason", "?"), msg=ready.get("message", ""))
    return None


def pod_problem(pod: Obj) -> Text | None:
    """Why a pod is not Running and Ready, in the words ``oc describe`` would use: the Ready
    condition decides, phase and container states explain."""
    phase = dig(pod, "status", "phase", default="Unknown")
    if pod_terminating(pod):
        return t("削除中です (Terminating、deletionTimestamp {ts})", "it is being deleted (Terminating since {ts})",
                 ts=Raw(str(dig(pod, "metadata", "deletionTimestamp"))[:40]))
    if pod_ready(pod):
        return None
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
    scheduled = _conditions(pod).get("PodScheduled", {})
    if scheduled.get("status") == "False":
        return t("フェーズ {phase}、スケジュールできません: {msg}", "phase {phase}, not scheduled: {msg}",
                 phase=phase, msg=scheduled.get("message", scheduled.get("reason", "")))
    gate = _gate_problem(pod, phase)
    if gate is not None:
        return gate
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
