"""Checks on pods and the controllers that make them (ex1, ex5, ex7): images, ports, readiness,
replicas, ownership and spread over nodes."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .base import (_WORKLOAD_KINDS, NotApplicable, _q, _what, as_dict, as_list, containers, dig, fail,
                          fmt_labels, kind_of, name_of, need, oc, short_name, show, tagged)
from ..i18n import Raw, Text, t
from ..kube import RESOURCES, resource
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


# --- replication -----------------------------------------------------------------------------
def need_workload(view: View, name: str, kinds: tuple[str, ...] = ("Deployment", "ReplicationController")) -> Obj:
    """The first of ``kinds`` called ``name`` (a front end may be a Deployment or an RC)."""
    if len(kinds) == 1:
        return tagged(need(view, kinds[0], name), kinds[0])
    for kind in kinds:
        obj = view.get(kind, name)
        if obj is not None:
            return tagged(obj, kind)
    fail(t("{kinds} {name} が名前空間 {ns} にありません。", "there is no {kinds} {name} in namespace {ns}.",
           kinds=Raw(" / ".join(kinds)), name=name, ns=view.namespace),
         oc(view, "get " + ",".join(resource(k).short for k in kinds)))


def expect_replicas(view: View, obj: Obj, wanted: int) -> None:
    got = dig(obj, "spec", "replicas", default=1)
    if got != wanted:
        fail(t("{what} の spec.replicas は {want} であるべきですが {got} です。",
               "{what} should ask for {want} replicas (spec.replicas), not {got}.",
               what=_what(obj), want=wanted, got=got if isinstance(got, int) else str(got)),
             show(view, kind_of(obj), name_of(obj), "") if kind_of(obj) in RESOURCES else oc(view, "get all"))


def expect_ready_replicas(view: View, obj: Obj, wanted: int) -> None:
    """The controller itself reports ``wanted`` ready replicas (status.readyReplicas)."""
    ready = dig(obj, "status", "readyReplicas", default=0)
    if not isinstance(ready, int) or ready < wanted:
        pods = owned_pods(view, obj)
        problems = [(name_of(p), pod_problem(p)) for p in pods]
        first = next(((n, pr) for n, pr in problems if pr is not None), None)
        why = t("", "") if first is None else t(" 例: Pod {pod} は {p}", " e.g. pod {pod}: {p}", pod=first[0], p=first[1])
        fail(t("{what} の Ready なレプリカは {got}/{want} です。", "{what} has {got}/{want} ready replicas.",
               what=_what(obj), got=ready if isinstance(ready, int) else 0, want=wanted) + why,
             oc(view, "get pods -o wide"))


def selector_of_workload(obj: Obj) -> dict[str, str] | None:
    """Equality selector of an RC (a map) or a Deployment/ReplicaSet (matchLabels); None when it
    uses matchExpressions, which equality checks cannot judge."""
    sel = dig(obj, "spec", "selector")
    if kind_of(obj) == "ReplicationController":
        return {str(k): str(v) for k, v in as_dict(sel).items()}
    if as_list(dig(sel, "matchExpressions")):
        return None
    return {str(k): str(v) for k, v in as_dict(dig(sel, "matchLabels")).items()}


def expect_selector_matches_template(view: View, obj: Obj, wanted: Mapping[str, str]) -> None:
    """The selector includes ``wanted`` and selects the controller's own template labels."""
    sel = selector_of_workload(obj) or {}
    template = {str(k): str(v) for k, v in as_dict(dig(obj, "spec", "template", "metadata", "labels")).items()}
    cmd = oc(view, f"get {short_name(obj)} {name_of(obj)} -o yaml")
    missing = {k: v for k, v in wanted.items() if sel.get(k) != str(v)}
    if missing:
        fail(t("{what} のセレクターに {want} が必要です (実際: {got})。", "the selector of {what} should include {want} (it is {got}).",
               what=_what(obj), want=Raw(fmt_labels(missing)), got=fmt_labels(sel)), cmd)
    if any(template.get(k) != v for k, v in sel.items()):
        fail(t("{what} のセレクター {sel} が Pod テンプレートのラベル {labels} に一致しません。",
               "the selector {sel} of {what} does not match its pod template's labels {labels}.",
               what=_what(obj), sel=fmt_labels(sel), labels=fmt_labels(template)), cmd)


def _uid(obj: Obj) -> str:
    return str(dig(obj, "metadata", "uid", default=""))


def _controlled_by(obj: Obj, owner: Obj) -> bool:
    uid = _uid(owner)
    return bool(uid) and any(isinstance(r, dict) and r.get("controller") is True and r.get("uid") == uid
                             for r in as_list(dig(obj, "metadata", "ownerReferences")))


def owned_pods(view: View, owner: Obj, include_terminating: bool = False) -> list[Obj]:
    """Pods the controller owns (ownerReferences), through ReplicaSets for a Deployment: the pods
    it made, not merely pods whose labels happen to match. Pods being deleted are left out, as
    the controller itself no longer counts them (a scale-down in progress is not a fault)."""
    owners = [owner]
    if kind_of(owner) == "Deployment":
        owners = [rs for rs in view.list("ReplicaSet") if _controlled_by(rs, owner)]
    return [p for p in view.list("Pod") if any(_controlled_by(p, o) for o in owners)
            and (include_terminating or not pod_terminating(p))]


def schedulable_nodes(nodes: Iterable[Obj]) -> list[str]:
    """Ready nodes that take ordinary pods (not cordoned, no NoSchedule/NoExecute taint)."""
    out = []
    for n in nodes:
        if dig(n, "spec", "unschedulable") is True:
            continue
        if any(isinstance(tn, dict) and tn.get("effect") in ("NoSchedule", "NoExecute") for tn in as_list(dig(n, "spec", "taints"))):
            continue
        if not any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
                   for c in as_list(dig(n, "status", "conditions"))):
            continue
        out.append(name_of(n))
    return out


def expect_spread(view: View, pods: list[Obj]) -> None:
    """Replicas are not all on one node, where that can be judged: the grader may read nodes
    and two or more are schedulable; otherwise NotApplicable (awarded with a note)."""
    if not pods:
        fail(t("コントローラーの Pod がありません。", "the controller has no pods."), oc(view, "get pods -o wide"))
    if not view.can_read("Node"):
        raise NotApplicable(t("ノードを読み取る権限がないため、Pod の分散は判定しません。",
                              "the grader may not read nodes, so the spread of pods is not judged."))
    nodes = schedulable_nodes(view.list("Node"))
    if len(nodes) < 2:
        raise NotApplicable(t("スケジュール可能なノードが {n} 台のため、Pod の分散は判定しません。",
                              "{n} schedulable node(s): the spread of pods is not judged.", n=len(nodes)))
    placed = {str(dig(p, "spec", "nodeName", default="")) for p in pods}
    placed.discard("")
    if len(pods) < 2:
        fail(t("Pod が 1 個しかないため、複数のノードに分散できません。", "there is only one pod, so nothing is spread over nodes."),
             oc(view, "get pods -o wide"))
    if len(placed) < 2:
        fail(t("{n} 個の Pod がすべて同じノード ({nodes}) にあります。ノード障害ですべて停止します。",
               "all {n} pods run on the same node ({nodes}); one node failure stops them all.",
               n=len(pods), nodes=Raw(", ".join(_q(x) for x in sorted(placed)) or "-")), oc(view, "get pods -o wide"))
