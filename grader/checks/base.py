"""The check library's foundation: tolerant access to untrusted objects, and the ways a check ends.

Student objects are untrusted: every access here tolerates missing fields and wrong types, so a
malformed object fails the check with a message instead of crashing the run. A check ends by
returning (passed), ``fail`` (the student's miss, ``CheckFailed``), ``NotApplicable`` (awarded with
a note) or an ``InfraError`` (the grader could not see).
"""
from __future__ import annotations

from typing import Any, Mapping, NoReturn

from ..errors import CheckFailed
from ..i18n import Raw, Text, t
from ..kube import RESOURCES, resource
from ..snapshot import Obj, View

class NotApplicable(Exception):
    """Raised by a check that does not apply here (e.g. a one-node cluster); it is awarded."""

    def __init__(self, message: Text) -> None:
        super().__init__(message.en)
        self.message = message


class PassedWithNote(NotApplicable):
    """Raised by an exercise check that passed but should say how it was judged (e.g. how a
    named targetPort resolved): awarded like ``NotApplicable``, with the note as its message."""


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
    from ..i18n import quote
    return quote(s, 40)


def expect_labels(view: View, obj: Obj, wanted: Mapping[str, str]) -> None:
    labels = labels_of(obj)
    missing = {k: v for k, v in wanted.items() if labels.get(k) != v}
    if missing:
        fail(t("{what} のラベルに {want} が必要です。実際のラベル: {got}",
               "{what} needs the label(s) {want}; its labels are {got}",
               what=_what(obj), want=Raw(fmt_labels(missing)), got=fmt_labels(labels)),
             oc(view, f"get {short_name(obj)} {name_of(obj)} --show-labels"))


# --- pods ------------------------------------------------------------------------------------
def containers(obj: Obj) -> list[dict[str, Any]]:
    """The containers of a Pod, or of a controller's pod template."""
    return [c for c in as_list(pod_spec(obj).get("containers")) if isinstance(c, dict)]


def short_name(obj: Obj) -> str:
    """What to type after ``oc get`` for this object."""
    kind = kind_of(obj)
    return resource(kind).short if kind in RESOURCES else "all"



# --- pod specs wherever they live ------------------------------------------------------------
_WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "ReplicationController")


def kind_of(obj: Obj) -> str:
    """An object's kind. Items of a list response carry none, so it is inferred from the shape
    when missing; the functions that fetch objects here (``need_workload``, ``route_or_ingress``)
    tag what they return."""
    kind = obj.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    spec = as_dict(obj.get("spec"))
    if "to" in spec:
        return "Route"
    if "rules" in spec or "defaultBackend" in spec or "loadBalancer" in as_dict(obj.get("status")):
        return "Ingress"
    if "template" in spec:
        return "ReplicationController" if "matchLabels" not in as_dict(spec.get("selector")) else "Deployment"
    return "Pod"


def tagged(obj: Obj, kind: str) -> Obj:
    """A shallow copy that says what it is (list items from the API do not)."""
    return {**obj, "kind": kind}


def pod_spec(obj: Obj) -> dict[str, Any]:
    """The pod spec of a Pod, or of a controller's pod template, so the same checks read both."""
    if kind_of(obj) in _WORKLOAD_KINDS:
        return as_dict(dig(obj, "spec", "template", "spec"))
    return as_dict(dig(obj, "spec"))


def _what(obj: Obj) -> Text:
    """"Pod x" / "Deployment x" for messages."""
    kind = kind_of(obj)
    return t("{kind} {name}", "{kind} {name}", kind=Raw(kind if kind in RESOURCES else "object"), name=name_of(obj))


def _describe(view: View, obj: Obj) -> str:
    kind = kind_of(obj)
    res = resource(kind) if kind in RESOURCES else resource("Pod")
    return oc(view, f"describe {res.short} {name_of(obj)}")
