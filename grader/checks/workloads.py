"""Checks on the controllers that make pods (ex5, ex7): which controller, how many replicas, its
selector against its template, the pods it owns and their spread over nodes."""
from __future__ import annotations

from typing import Iterable, Mapping

from .base import NotApplicable, _q, _what, as_dict, as_list, dig, fail, fmt_labels, kind_of, name_of, need, oc, \
    short_name, show, tagged
from .pods import pod_problem, pod_terminating
from ..i18n import Raw, t
from ..kube import RESOURCES, resource
from ..snapshot import Obj, View


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
