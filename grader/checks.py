"""The check library: small observations that exercises' pytest modules compose.

Every function here reads a ``View`` (never the API), and either returns what it found or raises
``CheckFailed`` saying what was expected, what was seen, and which ``oc`` command shows it.
Student objects are untrusted: every access tolerates missing fields and wrong types, so a
malformed object fails the check with a message instead of crashing the run.
"""
from __future__ import annotations

import base64 as _base64
import binascii as _binascii
import re as _re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping, NoReturn

from .errors import CheckFailed, InfraError
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
        fail(t("{what} のラベルに {want} が必要です。実際のラベル: {got}",
               "{what} needs the label(s) {want}; its labels are {got}",
               what=_what(obj), want=Raw(fmt_labels(missing)), got=fmt_labels(labels)),
             oc(view, f"get {short_name(obj)} {name_of(obj)} --show-labels"))


# --- pods ------------------------------------------------------------------------------------
def containers(obj: Obj) -> list[dict[str, Any]]:
    """The containers of a Pod, or of a controller's pod template."""
    return [c for c in as_list(pod_spec(obj).get("containers")) if isinstance(c, dict)]


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


def short_name(obj: Obj) -> str:
    """What to type after ``oc get`` for this object."""
    kind = kind_of(obj)
    return resource(kind).short if kind in RESOURCES else "all"


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
        ports = [p.get("port") for p in as_list(dig(subset, "ports"))
                 if isinstance(p, dict) and isinstance(p.get("port"), (int, str))]  # hashable only
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
        if answer.clipped:
            raise InfraError(t("{what} の応答が大きすぎ、採点側で全体を保持できませんでした ({want} を確認できません)。",
                               "the answer of {what} was too large for the grader to keep whole ({want} could not be checked).",
                               what=what, want=contains))
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


# =============================================================================================
# Storage, configuration, replication and external access (ex3–ex7)
# =============================================================================================

# --- quantities ------------------------------------------------------------------------------
_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIX = {"": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6),
                   "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)}
_QUANTITY = _re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|m|k|M|G|T|P|E)?$")


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource.Quantity ("1Gi", "1.5Gi", "500M", "1e9", 1073741824) as a number;
    None when it is not one, so a typo such as "1GB" or "1 Gi" fails a check instead of crashing.
    Decimal, not float: "1Gi" must compare equal to 1073741824 exactly."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip()) if value.strip() == value else None
    if m is None:
        return None
    try:
        number = Decimal(m.group(1))
        suffix = m.group(2) or ""
        if suffix in _BINARY_SUFFIX:
            return number * _BINARY_SUFFIX[suffix]
        if suffix[:1] in ("e", "E"):
            return number.scaleb(int(suffix[1:]))
        return number * _DECIMAL_SUFFIX[suffix]
    except (InvalidOperation, ValueError, OverflowError):
        return None


def _size_text(value: Any) -> Any:
    """A student's size as they wrote it, for a message (quoted by ``t``)."""
    return value if isinstance(value, str) else Raw(str(value)) if isinstance(value, int) else Raw("-")


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


# --- persistent volume claims ----------------------------------------------------------------
def pvc_request(pvc: Obj) -> Any:
    return dig(pvc, "spec", "resources", "requests", "storage")


def expect_pvc_request(view: View, pvc: Obj, min_size: str, access_mode: str) -> None:
    """The claim asks for at least ``min_size`` with ``access_mode``; judged on the spec (what the
    student asked), not on what a provisioner happened to give."""
    want = parse_quantity(min_size)
    assert want is not None, f"bad size parameter {min_size!r}"
    asked = pvc_request(pvc)
    size = parse_quantity(asked)
    cmd = oc(view, f"get pvc {name_of(pvc)} -o jsonpath='{{.spec.resources.requests.storage}} {{.spec.accessModes}}'")
    if size is None:
        fail(t("PVC {name} の spec.resources.requests.storage が容量として読めません (実際: {got})。{want} 以上を指定してください。",
               "the storage request of PVC {name} is not a valid quantity (found {got}); ask for at least {want}.",
               name=name_of(pvc), got=_size_text(asked), want=Raw(min_size)), cmd)
    if size < want:
        fail(t("PVC {name} の要求容量 {got} は {want} 未満です。",
               "PVC {name} asks for {got}, less than {want}.",
               name=name_of(pvc), got=_size_text(asked), want=Raw(min_size)), cmd)
    modes = [str(m) for m in as_list(dig(pvc, "spec", "accessModes"))]
    if access_mode not in modes:
        fail(t("PVC {name} のアクセスモードに {want} がありません (実際: {got})。",
               "PVC {name} does not request access mode {want} (it requests {got}).",
               name=name_of(pvc), want=Raw(access_mode), got=Raw(", ".join(_q(m) for m in modes) or "-")), cmd)


def expect_pvc_bound(view: View, pvc: Obj) -> None:
    """Bound, and where the grader may read PersistentVolumes, bound to a volume that really
    covers the request and points back at this claim. A student's account usually cannot list
    PVs (cluster-scoped): then the claim's own status is all there is to judge."""
    name = name_of(pvc)
    phase = dig(pvc, "status", "phase", default="Pending")
    if phase != "Bound":
        fail(t("PVC {name} が Bound ではありません (状態: {phase})。StorageClass と要求容量・アクセスモードを確認してください。",
               "PVC {name} is not Bound (phase {phase}); check its storage class, size and access mode.",
               name=name, phase=phase), oc(view, f"describe pvc {name}"))
    volume = dig(pvc, "spec", "volumeName")
    if not isinstance(volume, str) or not volume:
        fail(t("PVC {name} は Bound ですが spec.volumeName がありません。", "PVC {name} is Bound but names no volume.",
               name=name), oc(view, f"get pvc {name} -o yaml"))
    if not view.can_read("PersistentVolume"):
        return
    pv = next((v for v in view.list("PersistentVolume") if name_of(v) == volume), None)
    if pv is None:
        fail(t("PVC {name} の PV {pv} が存在しません。", "the volume {pv} of PVC {name} does not exist.",
               name=name, pv=volume), f"oc get pv {volume}")
    ref = as_dict(dig(pv, "spec", "claimRef"))
    uid = dig(pvc, "metadata", "uid")
    if ref.get("name") != name or ref.get("namespace") != view.namespace or (uid and ref.get("uid") not in (None, uid)):
        fail(t("PV {pv} は PVC {name} を指していません (claimRef: {ref})。",
               "volume {pv} does not point back at PVC {name} (its claimRef is {ref}).",
               pv=volume, name=name, ref=f"{ref.get('namespace', '-')}/{ref.get('name', '-')}"), f"oc get pv {volume} -o yaml")
    capacity = dig(pv, "spec", "capacity", "storage")
    have, want = parse_quantity(capacity), parse_quantity(pvc_request(pvc))
    if have is None or (want is not None and have < want):
        fail(t("PV {pv} の容量 {cap} は PVC {name} の要求 {req} を満たしません。",
               "volume {pv} holds {cap}, less than PVC {name} asks ({req}).",
               pv=volume, cap=_size_text(capacity), name=name, req=_size_text(pvc_request(pvc))), f"oc get pv {volume}")


# --- volumes and mounts ----------------------------------------------------------------------
_SOURCE_FIELDS = {"PersistentVolumeClaim": ("persistentVolumeClaim", "claimName"),
                  "ConfigMap": ("configMap", "name"), "Secret": ("secret", "secretName")}


def _volume_source(volume: dict[str, Any]) -> tuple[str, str] | None:
    for kind, (field, key) in _SOURCE_FIELDS.items():
        src = volume.get(field)
        if isinstance(src, dict):
            return kind, str(src.get(key, ""))
    return None


def mounts(obj: Obj) -> list[tuple[str, str, tuple[str, str] | None]]:
    """(container, mount path, (source kind, source name) or None) for every volume mount."""
    volumes = {str(v.get("name")): v for v in as_list(pod_spec(obj).get("volumes")) if isinstance(v, dict)}
    out = []
    for c in containers(obj):
        for m in as_list(c.get("volumeMounts")):
            if not isinstance(m, dict):
                continue
            path = str(m.get("mountPath", ""))
            source = _volume_source(as_dict(volumes.get(str(m.get("name")))))
            out.append((str(c.get("name", "?")), path.rstrip("/") or "/", source))
    return out


def expect_mount(view: View, obj: Obj, source: str, path: str, kind: str = "PersistentVolumeClaim") -> None:
    """A container of the pod (or pod template) mounts the ``kind`` ``source`` at ``path``."""
    want_path = path.rstrip("/") or "/"
    found = mounts(obj)
    if any(p == want_path and s == (kind, source) for _, p, s in found):
        return
    at_path = [s for _, p, s in found if p == want_path]
    elsewhere = [p for _, p, s in found if s == (kind, source)]
    if elsewhere:
        seen = t("{src} は {paths} にマウントされています", "{src} is mounted at {paths}",
                 src=source, paths=Raw(", ".join(_q(p) for p in elsewhere)))
    elif at_path:
        what = at_path[0]
        seen = t("{path} には別のボリューム ({what}) がマウントされています", "{path} holds another volume ({what})",
                 path=Raw(want_path), what=Raw("emptyDir/other") if what is None else t("{k} {n}", "{k} {n}", k=Raw(what[0]), n=what[1]))
    elif found:
        seen = t("マウント先は {paths} だけです", "it mounts only {paths}",
                 paths=Raw(", ".join(_q(p) for _, p, _ in found[:5])))
    else:
        seen = t("volumeMounts がありません", "it has no volumeMounts")
    fail(t("{what} は {kind} {src} を {path} にマウントしていません ({seen})。",
           "{what} does not mount {kind} {src} at {path} ({seen}).",
           what=_what(obj), kind=Raw(kind), src=source, path=Raw(want_path), seen=seen), _describe(view, obj))


# --- config maps and secrets -----------------------------------------------------------------
def _decoded(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return _base64.b64decode(value, validate=True)
    except (_binascii.Error, ValueError):
        return None


def expect_key_nonempty(view: View, obj: Obj, key: str, secret: bool = False) -> None:
    """``key`` is present with a non-empty value. For a Secret the value is decoded only to
    test emptiness and never appears in a message: messages name keys, never values."""
    name = name_of(obj)
    kind = "Secret" if secret else "ConfigMap"
    data = as_dict(obj.get("data"))
    extra = as_dict(obj.get("binaryData" if not secret else "stringData"))
    keys = sorted(str(k) for k in {**data, **extra})
    cmd = oc(view, f"describe {'secret' if secret else 'configmap'} {name}")
    if key not in data and key not in extra:
        fail(t("{kind} {name} にキー {key} がありません (あるキー: {keys})。",
               "{kind} {name} has no key {key} (its keys: {keys}).",
               kind=Raw(kind), name=name, key=Raw(key), keys=Raw(", ".join(_q(k) for k in keys[:10]) or "-")), cmd)
    if secret:
        value = data.get(key)
        if key in data:
            raw = _decoded(value)
            if raw is None:
                fail(t("Secret {name} のキー {key} の値が base64 として読めません (値は表示しません)。",
                       "the value of key {key} in Secret {name} is not valid base64 (the value is not shown).",
                       name=name, key=Raw(key)), cmd)
            empty = len(raw) == 0
        else:
            empty = not (isinstance(extra.get(key), str) and extra.get(key))
    else:
        value = data.get(key, extra.get(key))
        empty = not isinstance(value, str) or value == ""
    if empty:
        fail(t("{kind} {name} のキー {key} の値が空です。", "key {key} of {kind} {name} is empty.",
               kind=Raw(kind), name=name, key=Raw(key)), cmd)


def expect_secret_type(view: View, secret: Obj, wanted: str = "Opaque") -> None:
    got = secret.get("type") or "Opaque"
    if got != wanted:
        fail(t("Secret {name} のタイプは {want} であるべきですが {got} です。",
               "Secret {name} should be of type {want}, not {got}.", name=name_of(secret), want=Raw(wanted), got=got),
             oc(view, f"get secret {name_of(secret)}"))


_REF_FIELDS = {"ConfigMap": ("configMapKeyRef", "configMapRef"), "Secret": ("secretKeyRef", "secretRef")}


def _env_source(value_from: dict[str, Any]) -> Text:
    """Where a ``valueFrom`` takes its value, in words (names and keys only, never values)."""
    for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        ref = value_from.get(field)
        if isinstance(ref, dict):
            return t("{kind} {n} のキー {k}", "key {k} of {kind} {n}", kind=Raw(kind),
                     n=str(ref.get("name", "")), k=str(ref.get("key", "")))
    for field in ("fieldRef", "resourceFieldRef"):
        if field in value_from:
            return t("valueFrom.{f}", "valueFrom.{f}", f=Raw(field))
    return t("別の参照元", "another source")


def expect_env_from(view: View, obj: Obj, var: str, kind: str, name: str, key: str) -> None:
    """Some container gets ``var`` from key ``key`` of the ConfigMap/Secret ``name``: through
    ``env[].valueFrom`` or ``envFrom`` (whose variables are prefix + key). Env values are never
    quoted: a literal value is where students paste passwords."""
    key_ref, all_ref = _REF_FIELDS[kind]
    literal = False
    prefixed: str | None = None
    other: list[Text] = []
    for c in containers(obj):
        for e in as_list(c.get("env")):
            if not isinstance(e, dict) or e.get("name") != var:
                continue
            ref = dig(e, "valueFrom", key_ref)
            if isinstance(ref, dict) and ref.get("name") == name and ref.get("key") == key:
                return
            if isinstance(ref, dict):
                other.append(t("{kind} {n} のキー {k}", "key {k} of {kind} {n}", kind=Raw(kind),
                               n=str(ref.get("name", "")), k=str(ref.get("key", ""))))
            elif "value" in e:
                literal = True
            else:
                other.append(_env_source(as_dict(e.get("valueFrom"))))
        for ef in as_list(c.get("envFrom")):
            ref = dig(ef, all_ref)
            prefix = dig(ef, "prefix", default="")
            if isinstance(ref, dict) and ref.get("name") == name and isinstance(prefix, str) and prefix + key == var:
                return
            if isinstance(ref, dict) and ref.get("name") == name and isinstance(prefix, str) and prefix:
                prefixed = prefix + key
    kind_name = kind_of(obj)
    cmd = oc(view, f"set env {kind_name.lower() if kind_name in RESOURCES else 'pod'}/{name_of(obj)} --list")
    if literal:
        fail(t("{what} の環境変数 {var} は値を直接書いています (値は表示しません)。valueFrom.{ref} で {kind} {name} のキー {key} から取得してください。",
               "{what} sets {var} to a literal value (not shown); take it from key {key} of {kind} {name} with valueFrom.{ref}.",
               what=_what(obj), var=Raw(var), ref=Raw(key_ref), kind=Raw(kind), name=Raw(name), key=Raw(key)), cmd)
    if prefixed is not None and not other:
        fail(t("{what} の envFrom は {kind} {name} に接頭辞を付けるため、変数名は {var} ではなく {got} になります。",
               "the envFrom of {what} adds a prefix to {kind} {name}: the variable is {got}, not {var}.",
               what=_what(obj), kind=Raw(kind), name=Raw(name), var=Raw(var), got=prefixed), cmd)
    if other:
        fail(t("{what} の環境変数 {var} は {kind} {name} のキー {key} ではなく {got} から取得しています。",
               "{what} takes {var} from {got}, not from key {key} of {kind} {name}.",
               what=_what(obj), var=Raw(var), kind=Raw(kind), name=Raw(name), key=Raw(key), got=other[0]), cmd)
    fail(t("{what} に {kind} {name} のキー {key} から取得する環境変数 {var} がありません。",
           "{what} has no environment variable {var} taken from key {key} of {kind} {name}.",
           what=_what(obj), var=Raw(var), kind=Raw(kind), name=Raw(name), key=Raw(key)), cmd)


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


def owned_pods(view: View, owner: Obj) -> list[Obj]:
    """Pods the controller owns (ownerReferences), through ReplicaSets for a Deployment: the pods
    it made, not merely pods whose labels happen to match."""
    owners = [owner]
    if kind_of(owner) == "Deployment":
        owners = [rs for rs in view.list("ReplicaSet") if _controlled_by(rs, owner)]
    return [p for p in view.list("Pod") if any(_controlled_by(p, o) for o in owners)]


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
        if kind == "Route":   # the router matches endpoint ports: a target port number or port name
            ok = any(port in (p.get("name"), p.get("targetPort", p.get("port"))) or
                     (isinstance(p.get("targetPort"), str) and isinstance(port, int)) for p in ports)
        else:                 # an Ingress names a service port
            ok = any(port in (p.get("name"), p.get("port")) for p in ports)
        if ok:
            continue
        values = dict(what=_what(obj), svc=service,
                      port=Raw(_q(port) if isinstance(port, str) else str(port) if isinstance(port, int) else "?"),
                      ports=", ".join(f"{p.get('port')}→{p.get('targetPort', p.get('port'))}" for p in ports) or "-")
        if kind == "Route":
            fail(t("{what} の targetPort {port} は Service {svc} の targetPort やポート名 ({ports}) のどれでもありません。"
                   "Route の targetPort は Service のポートではなく Pod 側のポートです。",
                   "targetPort {port} of {what} is neither a targetPort nor a port name of service {svc} ({ports}); "
                   "a route's targetPort is the pods' port, not the service port.", **values), cmd)
        fail(t("{what} のポート {port} は Service {svc} のポート ({ports}) にありません。",
               "port {port} of {what} is not a port of service {svc} ({ports}).", **values), cmd)


def expect_admitted(view: View, obj: Obj) -> None:
    """A Route admitted by a router (Admitted=True), an Ingress given an address by its controller."""
    cmd = oc(view, f"describe {resource(kind_of(obj)).short} {name_of(obj)}")
    if kind_of(obj) == "Route":
        conds = [c for i in as_list(dig(obj, "status", "ingress")) for c in as_list(dig(i, "conditions"))
                 if isinstance(c, dict) and c.get("type") == "Admitted"]
        if any(c.get("status") == "True" for c in conds):
            return
        why = t("ルーターの応答がありません", "no router has admitted it yet") if not conds else \
            t("{reason}: {msg}", "{reason}: {msg}", reason=conds[0].get("reason", "?"), msg=conds[0].get("message", ""))
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
    expect_http_ok(answer, t("http://{h}{p}", "http://{h}{p}", h=Raw(host), p=Raw(path)),
                   f"curl -i http://{host}{path}", contains or None)
