"""Controllers that make the embedded API server behave like a cluster.

Exercises are graded on what a cluster *does* with the student's objects (pods that never start,
services without endpoints, claims that never bind), so the simulation has to produce the same
states and messages a real kubelet, scheduler and controller manager would.  One thread
reconciles whole namespaces level-triggered: every write marks its namespace dirty, a pass makes
the namespace's objects consistent, and the pass repeats until it changes nothing.  ``settle``
waits for that fixed point, including delayed pod starts.

Admission (defaults and the validations students meet: selectors that do not match, service IPs)
runs synchronously inside the API write, as it does on a real server.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .apiserver import ApiServer
from .apitypes import ApiStatus, ResourceType, invalid, selector_matches
from .workloads import listening_ports, lookup_image, serve

log = logging.getLogger(__name__)
_ALL = "*"
_ALNUM = "bcdfghjklmnpqrstvwxz2456789"
DEFAULT_CLASS = "standard"
PROVISIONER = "grader.dev/embedded"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suffix(text: str, n: int = 5) -> str:
    h = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    return "".join(_ALNUM[(h >> (5 * i)) % len(_ALNUM)] for i in range(n))


_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def quantity(q: Any) -> float:
    """A resource.Quantity string in bytes (storage sizes only); unparsable is 0."""
    m = re.match(r"^\s*([0-9.]+)\s*([kMGTP]i?|)\s*$", str(q or ""))
    return float(m.group(1)) * _UNITS[m.group(2)] if m else 0.0


def _condition(old: list[dict] | None, ctype: str, status: str, reason: str = "",
               message: str = "") -> dict:
    """A condition that keeps its lastTransitionTime while nothing about it changes."""
    prev = next((c for c in old or [] if c.get("type") == ctype), None)
    same = prev is not None and prev.get("status") == status
    cond = {"type": ctype, "status": status,
            "lastTransitionTime": prev["lastTransitionTime"] if same and prev.get("lastTransitionTime") else _now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    if prev is not None and same and prev.get("reason", "") == reason and prev.get("message", "") == message:
        return prev
    return cond


def _owned_by(obj: dict, uid: str) -> bool:
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or [])


def _controller_of(obj: dict) -> dict | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _owner_ref(rt: ResourceType, owner: dict) -> dict:
    return {"apiVersion": rt.api_version, "kind": rt.kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


class Controllers:
    """Scheduler, kubelet, replication, endpoints, volume binding and route admission."""

    def __init__(self, server: ApiServer, *, pod_start_delay: float = 0.0, nodes: int = 2,
                 route_domain: str = "apps.sandbox.local") -> None:
        self.server, self.store = server, server.store
        self.pod_start_delay = pod_start_delay
        self.node_count = nodes
        self.route_domain = route_domain
        self._cond = threading.Condition()
        self._dirty: set[str] = set()
        self._busy = False
        self._stop = False
        self._timers: dict[str, tuple[float, str]] = {}   # key -> (due, namespace)
        self._ips = 0
        self._node_ips: dict[str, int] = {}
        self._service_ips = 0
        self._node_ports = 30000
        self._managed_endpoints: set[tuple[str, str]] = set()
        self._start_at: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.R = {r.key: r for r in self.store.resources}
        server.admission.append(self._admit)
        self.store.listeners.append(self._on_change)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Controllers":
        self._bootstrap()
        self._thread = threading.Thread(target=self._loop, name="controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def settle(self, timeout: float = 10.0) -> None:
        """Block until no reconcile is pending, running or scheduled; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._dirty or self._busy or self._timers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"cluster did not settle in {timeout}s "
                                       f"(dirty={sorted(self._dirty)[:5]}, timers={len(self._timers)})")
                self._cond.wait(min(left, 0.05))

    def _on_change(self, event: str, rt: ResourceType, obj: dict) -> None:
        ns = obj["metadata"].get("namespace", "") if rt.namespaced else ""
        if rt.plural == "namespaces":
            ns = obj["metadata"]["name"]
        elif not rt.namespaced and rt.plural in ("persistentvolumes", "storageclasses", "nodes"):
            ns = _ALL
        elif not rt.namespaced:
            return
        with self._cond:
            self._dirty.add(ns)
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    now = time.monotonic()
                    for key, (due, ns) in list(self._timers.items()):
                        if due <= now:
                            del self._timers[key]
                            self._dirty.add(ns)
                    if self._dirty:
                        break
                    nxt = min((d for d, _ in self._timers.values()), default=None)
                    self._cond.wait(None if nxt is None else max(0.001, nxt - now))
                if self._stop:
                    return
                batch, self._dirty = self._dirty, set()
                self._busy = True
            try:
                if _ALL in batch:
                    self._reconcile_cluster()
                    batch = {n["metadata"]["name"] for n in self.store.list(self.R["namespaces"])[0]}
                for ns in sorted(batch):
                    self._reconcile_namespace(ns)
            except Exception as exc:  # keep the cluster alive; tests look at .errors
                log.exception("reconcile failed")
                self.errors.append(repr(exc))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _later(self, key: str, due_in: float, ns: str) -> None:
        with self._cond:
            if key not in self._timers:
                self._timers[key] = (time.monotonic() + due_in, ns)

    # --- bootstrap ----------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        s, R = self.store, self.R
        for ns in ("default", "kube-system", "kube-public"):
            if not s.exists(R["namespaces"], "", ns):
                s.create(R["namespaces"], "", {"metadata": {"name": ns}})
        for i in range(1, self.node_count + 1):
            name = f"node-{i}"
            s.create(R["nodes"], "", {"metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/worker": ""}},
                "spec": {"podCIDR": f"10.{127 + i}.0.0/23"},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status", "lastTransitionTime": _now()}],
                           "addresses": [{"type": "InternalIP", "address": f"192.168.126.{10 + i}"},
                                         {"type": "Hostname", "address": name}],
                           "capacity": {"cpu": "4", "memory": "16Gi", "pods": "250"},
                           "allocatable": {"cpu": "3500m", "memory": "15Gi", "pods": "250"},
                           "nodeInfo": {"kubeletVersion": "v1.32.0", "operatingSystem": "linux",
                                        "architecture": "amd64", "containerRuntimeVersion": "cri-o://1.32.0"}}},
                keep_status=True)
        s.create(R["storageclasses.storage.k8s.io"], "", {
            "metadata": {"name": DEFAULT_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
        if "ingresses.config.openshift.io" in R:
            s.create(R["ingresses.config.openshift.io"], "", {
                "metadata": {"name": "cluster"}, "spec": {"domain": self.route_domain}})

    # --- admission ----------------------------------------------------------------------------
    def _admit(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        spec = obj.get("spec")
        if rt.key == "secrets":
            _admit_secret(obj)
        elif rt.key == "services" and isinstance(spec, dict):
            self._admit_service(obj, old)
        elif rt.key == "replicationcontrollers" and isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            if not spec["selector"] or not selector_matches({"matchLabels": spec["selector"]}, labels):
                raise invalid(rt, obj["metadata"]["name"], "spec.template.metadata.labels", "FieldValueInvalid",
                              f"Invalid value: {_gomap(labels)}: `selector` does not match template `labels`")
        elif rt.key in ("deployments.apps", "replicasets.apps") and isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            sel = spec.get("selector")
            name = obj["metadata"]["name"]
            if not sel:
                raise invalid(rt, name, "spec.selector", "FieldValueRequired", "Required value")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not selector_matches(sel, labels):
                raise invalid(rt, name, "spec.template.metadata.labels", "FieldValueInvalid",
                              f"Invalid value: {_gomap(labels)}: `selector` does not match template `labels`")
            if old is not None and (old.get("spec") or {}).get("selector") != sel:
                raise invalid(rt, name, "spec.selector", "FieldValueInvalid", "field is immutable")
            if rt.key == "deployments.apps":
                spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault("progressDeadlineSeconds", 600)
        elif rt.key == "pods" and isinstance(spec, dict):
            self._admit_pod(rt, obj, old)
        elif rt.key == "persistentvolumeclaims" and isinstance(spec, dict):
            _check_quantities(rt, ((spec.get("resources") or {}).get("requests") or {}))
            if old is None:
                if "storageClassName" not in spec:
                    default = self._default_class()
                    if default:
                        spec["storageClassName"] = default
                spec.setdefault("volumeMode", "Filesystem")
                obj["status"] = {"phase": "Pending"}
        elif rt.key == "persistentvolumes" and isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")
            if old is None:
                obj["status"] = {"phase": "Pending"}
        elif rt.key == "routes.route.openshift.io" and isinstance(spec, dict):
            meta = obj["metadata"]
            if not spec.get("host"):
                spec["host"] = (old or {}).get("spec", {}).get("host") or f"{meta['name']}-{meta['namespace']}.{self.route_domain}"
            to = spec.setdefault("to", {})
            to.setdefault("kind", "Service")
            to.setdefault("weight", 100)
            spec.setdefault("wildcardPolicy", "None")

    def _admit_service(self, obj: dict, old: dict | None) -> None:
        spec = obj["spec"]
        ospec = (old or {}).get("spec") or {}
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if not spec.get("clusterIP"):
            if ospec.get("clusterIP"):
                spec["clusterIP"] = ospec["clusterIP"]
            else:
                self._service_ips += 1
                n = self._service_ips
                spec["clusterIP"] = f"172.30.{(n // 250) % 256}.{n % 250 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        old_ports = {p.get("port"): p for p in ospec.get("ports") or []}
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
                prev = old_ports.get(p.get("port"), {}).get("nodePort")
                if prev:
                    p["nodePort"] = prev
                else:
                    self._node_ports += 1
                    p["nodePort"] = 30000 + (self._node_ports * 7919) % 2768

    def _admit_pod(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        spec = obj["spec"]
        if old is not None:
            strip = lambda s: json.dumps([{k: v for k, v in c.items() if k != "image"} for c in s.get("containers") or []]
                                         + [{k: v for k, v in s.items() if k not in ("containers", "nodeName")}], sort_keys=True)  # noqa: E731
            if strip(spec) != strip(old.get("spec") or {}):
                raise invalid(rt, obj["metadata"]["name"], "spec", "FieldValueForbidden",
                              "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                              "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                              "`spec.tolerations` (only additions to existing tolerations), "
                              "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
            spec["nodeName"] = (old.get("spec") or {}).get("nodeName") or spec.get("nodeName")
            return
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        for c in spec.get("containers") or []:
            image = c.get("image", "")
            tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            c.setdefault("imagePullPolicy", "IfNotPresent" if tagged or "@" in image else "Always")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            for p in c.get("ports") or []:
                p.setdefault("protocol", "TCP")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def _default_class(self) -> str:
        for sc in self.store.list(self.R["storageclasses.storage.k8s.io"])[0]:
            if (sc["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
                return sc["metadata"]["name"]
        return ""

    # --- reconcile ----------------------------------------------------------------------------
    def _reconcile_cluster(self) -> None:
        s, R = self.store, self.R
        pvcs = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in s.list(R["persistentvolumeclaims"])[0]}
        for pv in s.list(R["persistentvolumes"])[0]:
            ref = pv["spec"].get("claimRef")
            phase = (pv.get("status") or {}).get("phase")
            if ref and phase == "Bound":
                claim = pvcs.get((ref.get("namespace"), ref.get("name")))
                if claim is None or claim["metadata"]["uid"] != ref.get("uid", claim["metadata"]["uid"]):
                    if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
                        s.delete(R["persistentvolumes"], "", pv["metadata"]["name"], missing_ok=True)
                        continue
                    pv["status"] = {"phase": "Released"}
            elif not ref and phase in (None, "Pending"):
                pv["status"] = {"phase": "Available"}
            s.put(R["persistentvolumes"], pv)

    def _reconcile_namespace(self, ns: str) -> None:
        s, R = self.store, self.R
        if not s.exists(R["namespaces"], "", ns):
            return
        if not s.exists(R["serviceaccounts"], ns, "default"):
            self._create(R["serviceaccounts"], ns, {"metadata": {"name": "default"}})
        self._collect_garbage(ns)
        for d in s.list(R["deployments.apps"], ns)[0]:
            self._sync_deployment(d)
        for rt in (R["replicasets.apps"], R["replicationcontrollers"]):
            for owner in s.list(rt, ns)[0]:
                self._sync_replicas(rt, owner)
        for pvc in s.list(R["persistentvolumeclaims"], ns)[0]:
            self._bind_claim(pvc)
        pods = s.list(R["pods"], ns)[0]
        for pod in pods:
            self._sync_pod(pod, pods)
        pods = s.list(R["pods"], ns)[0]
        for rt in (R["replicasets.apps"], R["replicationcontrollers"]):
            for owner in s.list(rt, ns)[0]:
                self._replica_status(rt, owner, pods)
        for d in s.list(R["deployments.apps"], ns)[0]:
            self._deployment_status(d)
        for svc in s.list(R["services"], ns)[0]:
            self._sync_endpoints(svc, pods)
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

    def _create(self, rt: ResourceType, ns: str, obj: dict) -> dict | None:
        try:
            return self.store.create(rt, ns, obj, admit=self.server.admit)
        except ApiStatus as exc:
            if exc.code != 409:
                self.errors.append(exc.message)
            return None

    def _collect_garbage(self, ns: str) -> None:
        """Dependents whose controlling owner is gone are deleted (background propagation)."""
        s, R = self.store, self.R
        for rt in (R["replicasets.apps"], R["pods"], R["endpointslices.discovery.k8s.io"]):
            for obj in s.list(rt, ns)[0]:
                ref = _controller_of(obj)
                if ref is None:
                    continue
                owner_rt = next((r for r in s.resources if r.kind == ref.get("kind") and r.api_version == ref.get("apiVersion")), None)
                owner = s.get(owner_rt, ns, ref.get("name", "")) if owner_rt else None
                if owner_rt is not None and (owner is None or owner["metadata"]["uid"] != ref.get("uid")):
                    s.delete(rt, ns, obj["metadata"]["name"], missing_ok=True)

    # --- workloads ----------------------------------------------------------------------------
    def _sync_deployment(self, d: dict) -> None:
        s, rs_rt = self.store, self.R["replicasets.apps"]
        ns, name, spec = d["metadata"]["namespace"], d["metadata"]["name"], d["spec"]
        template = spec.get("template") or {}
        h = _suffix(json.dumps(template, sort_keys=True), 10)
        owned = [r for r in s.list(rs_rt, ns)[0] if _owned_by(r, d["metadata"]["uid"])]
        current = next((r for r in owned if r["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
        want = spec.get("replicas", 1)
        if current is None:
            tmpl = json.loads(json.dumps(template))
            tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            sel = json.loads(json.dumps(spec.get("selector") or {}))
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            revision = 1 + max((int((r["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")) for r in owned), default=0)
            self._create(rs_rt, ns, {"metadata": {
                "name": f"{name}-{h}", "labels": dict(tmpl["metadata"]["labels"]),
                "annotations": {"deployment.kubernetes.io/revision": str(revision),
                                "deployment.kubernetes.io/desired-replicas": str(want)},
                "ownerReferences": [_owner_ref(self.R["deployments.apps"], d)]},
                "spec": {"replicas": want, "selector": sel, "template": tmpl}})
        elif current["spec"].get("replicas") != want:
            current["spec"]["replicas"] = want
            s.put(rs_rt, current)
        for r in owned:
            if r is not current and r["spec"].get("replicas", 0) != 0:
                r["spec"]["replicas"] = 0
                s.put(rs_rt, r)

    def _sync_replicas(self, rt: ResourceType, owner: dict) -> None:
        s, pod_rt = self.store, self.R["pods"]
        ns, spec, uid = owner["metadata"]["namespace"], owner["spec"], owner["metadata"]["uid"]
        sel = spec.get("selector") or {}
        sel = sel if rt.key == "replicasets.apps" else {"matchLabels": sel}
        pods = []
        for p in s.list(pod_rt, ns)[0]:
            labels = p["metadata"].get("labels") or {}
            if _owned_by(p, uid):
                pods.append(p)
            elif _controller_of(p) is None and labels and selector_matches(sel, labels):
                p["metadata"].setdefault("ownerReferences", []).append(_owner_ref(rt, owner))   # adoption
                if s.put(pod_rt, p):
                    pods.append(p)
        want = spec.get("replicas", 1)
        template = spec.get("template") or {}
        for _ in range(want - len(pods)):
            meta = json.loads(json.dumps(template.get("metadata") or {}))
            meta.pop("name", None)
            meta.update({"generateName": f"{owner['metadata']['name']}-", "ownerReferences": [_owner_ref(rt, owner)]})
            self._create(pod_rt, ns, {"metadata": meta, "spec": json.loads(json.dumps(template.get("spec") or {}))})
        if len(pods) > want:
            rank = lambda p: (bool(p["spec"].get("nodeName")), _is_ready(p), p["metadata"]["creationTimestamp"])  # noqa: E731
            for p in sorted(pods, key=lambda p: (rank(p)[0], rank(p)[1]))[: len(pods) - want]:
                s.delete(pod_rt, ns, p["metadata"]["name"], missing_ok=True)

    def _replica_status(self, rt: ResourceType, owner: dict, pods: list[dict]) -> None:
        mine = [p for p in pods if _owned_by(p, owner["metadata"]["uid"])]
        ready = sum(1 for p in mine if _is_ready(p))
        st = {"replicas": len(mine), "fullyLabeledReplicas": len(mine), "readyReplicas": ready,
              "availableReplicas": ready, "observedGeneration": owner["metadata"].get("generation", 1)}
        owner["status"] = {k: v for k, v in st.items() if v or k in ("replicas", "observedGeneration")}
        self.store.put(rt, owner)

    def _deployment_status(self, d: dict) -> None:
        owned = [r for r in self.store.list(self.R["replicasets.apps"], d["metadata"]["namespace"])[0]
                 if _owned_by(r, d["metadata"]["uid"])]
        h = _suffix(json.dumps(d["spec"].get("template") or {}, sort_keys=True), 10)
        new = next((r for r in owned if r["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
        total = lambda f: sum((r.get("status") or {}).get(f, 0) for r in owned)  # noqa: E731
        want = d["spec"].get("replicas", 1)
        replicas, ready, avail = total("replicas"), total("readyReplicas"), total("availableReplicas")
        updated = (new.get("status") or {}).get("replicas", 0) if new else 0
        old = (d.get("status") or {}).get("conditions")
        done = updated == want and replicas == want and avail == want
        conds = [_condition(old, "Available", "True" if avail >= want else "False",
                            "MinimumReplicasAvailable" if avail >= want else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if avail >= want else "Deployment does not have minimum availability."),
                 _condition(old, "Progressing", "True", "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                            f'ReplicaSet "{new["metadata"]["name"] if new else ""}" ' + ("has successfully progressed." if done else "is progressing."))]
        st = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": replicas, "updatedReplicas": updated,
              "readyReplicas": ready, "availableReplicas": avail, "unavailableReplicas": max(0, want - avail),
              "conditions": conds}
        d["status"] = {k: v for k, v in st.items() if v or k in ("observedGeneration", "conditions")}
        self.store.put(self.R["deployments.apps"], d)

    # --- scheduler and kubelet ----------------------------------------------------------------
    def _sync_pod(self, pod: dict, pods: list[dict]) -> None:
        R, spec, meta = self.R, pod["spec"], pod["metadata"]
        ns = meta["namespace"]
        st = pod.setdefault("status", {})
        old_conds = st.get("conditions")
        if not spec.get("nodeName"):
            blocker = self._claim_blocker(ns, spec)
            if blocker:
                pod["status"] = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [_condition(
                    old_conds, "PodScheduled", "False", "Unschedulable",
                    f"0/{self.node_count} nodes are available: {blocker}. preemption: 0/{self.node_count} "
                    "nodes are available: 1 Preemption is not helpful for scheduling.")]}
                self.store.put(R["pods"], pod)
                return
            spec["nodeName"] = self._choose_node(pod, pods)
        if not st.get("podIP"):
            idx = int(spec["nodeName"].rsplit("-", 1)[-1]) if spec["nodeName"].rsplit("-", 1)[-1].isdigit() else 1
            n = self._node_ips.get(spec["nodeName"], 0) + 1
            self._node_ips[spec["nodeName"]] = n
            st["podIP"] = f"10.{127 + idx}.{(n // 250) % 2}.{n % 250 + 2}"
            st["podIPs"] = [{"ip": st["podIP"]}]
            st["hostIP"] = f"192.168.126.{10 + idx}"
            st["startTime"] = _now()
        due = True
        if self.pod_start_delay > 0:
            start_at = self._start_at.setdefault(meta["uid"], time.monotonic() + self.pod_start_delay)
            due = time.monotonic() >= start_at
            if not due:
                self._later("start/" + meta["uid"], start_at - time.monotonic(), ns)
        old_cs = {c.get("name"): c for c in st.get("containerStatuses") or []}
        statuses, running_all = [], True
        volume_wait = self._configmap_volume_missing(ns, spec)
        for c in spec.get("containers") or []:
            img = lookup_image(c.get("image", ""))
            prev = old_cs.get(c["name"]) or {}
            cs: dict[str, Any] = {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                  "ready": False, "restartCount": prev.get("restartCount", 0), "started": False}
            if volume_wait:
                cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            elif img is None:
                was = ((prev.get("state") or {}).get("waiting") or {}).get("reason")
                if was in ("ErrImagePull", "ImagePullBackOff"):
                    cs["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.get("image", "")}"'}}
                else:
                    cs["state"] = {"waiting": {"reason": "ErrImagePull", "message": _pull_error(c.get("image", ""))}}
            elif (err := self._config_error(ns, c)) is not None:
                cs["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": err}}
            elif not due:
                cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            elif not img.runs and not c.get("command") and not c.get("args"):
                cs.update(restartCount=max(1, cs["restartCount"]), imageID=_image_id(c["image"]))
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                           f"back-off 10s restarting failed container={c['name']} pod={meta['name']}_{ns}({meta['uid']})"}}
                cs["lastState"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                                  "startedAt": st.get("startTime"), "finishedAt": st.get("startTime")}}
            else:
                started = ((prev.get("state") or {}).get("running") or {}).get("startedAt") or _now()
                cs.update(state={"running": {"startedAt": started}}, started=True, imageID=_image_id(c["image"]),
                          containerID=f"cri-o://{_suffix(meta['uid'] + c['name'], 32)}")
            if "running" in cs["state"]:
                pod["status"] = {**st, "containerStatuses": statuses + [cs]}
                cs["ready"] = self._probe_ok(ns, pod, c)
            else:
                running_all = False
            statuses.append(cs)
        not_ready = [c["name"] for c in statuses if not c["ready"]]
        msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
        conds = [
            _condition(old_conds, "PodReadyToStartContainers", "True" if not volume_wait else "False"),
            _condition(old_conds, "Initialized", "True"),
            _condition(old_conds, "Ready", "False" if not_ready else "True", "ContainersNotReady" if not_ready else "", msg),
            _condition(old_conds, "ContainersReady", "False" if not_ready else "True", "ContainersNotReady" if not_ready else "", msg),
            _condition(old_conds, "PodScheduled", "True"),
        ]
        st.update(phase="Running" if running_all else "Pending", conditions=conds, containerStatuses=statuses)
        st.setdefault("qosClass", "BestEffort")
        pod["status"] = st
        self.store.put(R["pods"], pod)

    def _choose_node(self, pod: dict, pods: list[dict]) -> str:
        ref = _controller_of(pod)
        labels = pod["metadata"].get("labels") or {}
        def peer(p: dict) -> bool:
            r = _controller_of(p)
            return (r is not None and ref is not None and r.get("uid") == ref.get("uid")) or \
                   (ref is None and r is None and bool(labels) and (p["metadata"].get("labels") or {}) == labels)
        nodes = [f"node-{i}" for i in range(1, self.node_count + 1)]
        same = {n: 0 for n in nodes}
        total = {n: 0 for n in nodes}
        for p in pods:
            n = p["spec"].get("nodeName")
            if n in total:
                total[n] += 1
                if peer(p) and p["metadata"]["uid"] != pod["metadata"]["uid"]:
                    same[n] += 1
        return min(nodes, key=lambda n: (same[n], total[n], n))

    def _claim_blocker(self, ns: str, spec: dict) -> str:
        for v in spec.get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                pvc = self.store.get(self.R["persistentvolumeclaims"], ns, claim)
                if pvc is None:
                    return f'persistentvolumeclaim "{claim}" not found'
                if (pvc.get("status") or {}).get("phase") != "Bound":
                    return "pod has unbound immediate PersistentVolumeClaims"
        return ""

    def _configmap_volume_missing(self, ns: str, spec: dict) -> bool:
        for v in spec.get("volumes") or []:
            for kind, rt, field in (("configMap", "configmaps", "name"), ("secret", "secrets", "secretName")):
                src = v.get(kind)
                if src and not src.get("optional") and not self.store.exists(self.R[rt], ns, src.get(field, "")):
                    return True
        return False

    def _config_error(self, ns: str, c: dict) -> str | None:
        def source(kind: str, name: str) -> dict | None:
            return self.store.get(self.R["configmaps" if kind == "ConfigMap" else "secrets"], ns, name)
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = vf.get(field)
                if not ref or ref.get("optional"):
                    continue
                obj = source(kind, ref.get("name", ""))
                if obj is None:
                    return f'{kind.lower()} "{ref.get("name", "")}" not found'
                data = {**(obj.get("data") or {}), **(obj.get("binaryData") or {}), **(obj.get("stringData") or {})}
                if ref.get("key") not in data:
                    return f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name', '')}"
        for ef in c.get("envFrom") or []:
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = ef.get(field)
                if ref and not ref.get("optional") and source(kind, ref.get("name", "")) is None:
                    return f'{kind.lower()} "{ref.get("name", "")}" not found'
        return None

    def _probe_ok(self, ns: str, pod: dict, c: dict) -> bool:
        probe = c.get("readinessProbe")
        if not probe:
            return True
        target = probe.get("httpGet") or probe.get("tcpSocket")
        if not target:
            return True     # exec probes pass
        port = target.get("port")
        if isinstance(port, str) and not port.isdigit():
            port = next((p.get("containerPort") for p in c.get("ports") or [] if p.get("name") == port), None)
        if port is None:
            return False
        port = int(port)
        if port not in listening_ports(c):
            return False
        if "httpGet" in probe:
            try:
                code, _, _ = serve(self.store, ns, pod, port, target.get("path") or "/")
            except ConnectionRefusedError:
                return False
            return 200 <= code < 400
        return True

    # --- volumes ------------------------------------------------------------------------------
    def _bind_claim(self, pvc: dict) -> None:
        s, R = self.store, self.R
        st = pvc.get("status") or {}
        if st.get("phase") == "Bound":
            return
        spec, meta = pvc["spec"], pvc["metadata"]
        cls = spec.get("storageClassName") or ""
        want = quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
        modes = set(spec.get("accessModes") or [])
        fits = []
        for pv in s.list(R["persistentvolumes"])[0]:
            ps = pv["spec"]
            if (pv.get("status") or {}).get("phase") != "Available" or ps.get("claimRef"):
                continue
            if spec.get("volumeName") and spec["volumeName"] != pv["metadata"]["name"]:
                continue
            if (ps.get("storageClassName") or "") != cls or not modes <= set(ps.get("accessModes") or []):
                continue
            size = quantity((ps.get("capacity") or {}).get("storage"))
            if size >= want:
                fits.append((size, pv["metadata"]["name"], pv))
        if fits:
            pv = min(fits, key=lambda f: (f[0], f[1]))[2]
        else:
            sc = s.get(R["storageclasses.storage.k8s.io"], "", cls) if cls else None
            if sc is None or sc.get("provisioner") != PROVISIONER or spec.get("volumeName"):
                if st.get("phase") != "Pending":
                    pvc["status"] = {"phase": "Pending"}
                    s.put(R["persistentvolumeclaims"], pvc)
                return
            name = f"pvc-{meta['uid']}"
            pv = s.get(R["persistentvolumes"], "", name) or s.create(R["persistentvolumes"], "", {
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                         "accessModes": sorted(modes) or ["ReadWriteOnce"], "storageClassName": cls,
                         "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                         "volumeMode": spec.get("volumeMode", "Filesystem"),
                         "hostPath": {"path": f"/var/lib/grader/volumes/{name}"}}}, admit=self.server.admit)
        pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta["namespace"],
                                  "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
        pv["status"] = {"phase": "Bound"}
        pv["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = "yes"
        s.put(R["persistentvolumes"], pv)
        spec["volumeName"] = pv["metadata"]["name"]
        meta.setdefault("annotations", {}).update({"pv.kubernetes.io/bind-completed": "yes",
                                                   "pv.kubernetes.io/bound-by-controller": "yes"})
        pvc["status"] = {"phase": "Bound", "accessModes": pv["spec"].get("accessModes"),
                         "capacity": dict(pv["spec"].get("capacity") or {})}
        s.put(R["persistentvolumeclaims"], pvc)

    # --- services -----------------------------------------------------------------------------
    def _sync_endpoints(self, svc: dict, pods: list[dict]) -> None:
        s, R = self.store, self.R
        sel = (svc.get("spec") or {}).get("selector")
        if not sel:
            return
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        sports = svc["spec"].get("ports") or []
        groups: dict[str, dict[str, Any]] = {}
        for p in pods:
            ip = (p.get("status") or {}).get("podIP")
            if not ip or not selector_matches({"matchLabels": sel}, p["metadata"].get("labels") or {}):
                continue
            ports = []
            for sp in sports:
                tp = _resolve_target(p, sp.get("targetPort", sp.get("port")))
                if tp is not None:
                    ports.append({"name": sp.get("name", ""), "port": tp, "protocol": sp.get("protocol", "TCP")})
            if sports and not ports:
                continue
            for port in ports:
                if not port["name"]:
                    port.pop("name")
            key = json.dumps(ports, sort_keys=True)
            g = groups.setdefault(key, {"ports": ports, "ready": [], "not": []})
            addr = {"ip": ip, "nodeName": p["spec"].get("nodeName"),
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}}
            g["ready" if _is_ready(p) else "not"].append(addr)
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
        body: dict[str, Any] = {"metadata": {"name": name, "labels": dict(svc["metadata"].get("labels") or {})}}
        if subsets:
            body["subsets"] = subsets
        if ep is None:
            self._managed_endpoints.add((ns, name))
            self._create(R["endpoints"], ns, body)
        else:
            ep.pop("subsets", None)
            ep.update({k: v for k, v in body.items() if k != "metadata"})
            ep["metadata"]["labels"] = body["metadata"]["labels"]
            s.put(R["endpoints"], ep)
        self._managed_endpoints.add((ns, name))
        es_rt = R["endpointslices.discovery.k8s.io"]
        wanted = []
        for i, key in enumerate(sorted(groups) or [""]):
            g = groups.get(key) or {"ports": [], "ready": [], "not": []}
            slice_name = f"{name}-{_suffix(svc['metadata']['uid'] + str(i))}"
            wanted.append(slice_name)
            eps = [{"addresses": [a["ip"]], "conditions": {"ready": r, "serving": r, "terminating": False},
                    "nodeName": a["nodeName"], "targetRef": a["targetRef"]}
                   for r, lst in ((True, g["ready"]), (False, g["not"])) for a in lst]
            body = {"metadata": {"name": slice_name, "labels": {
                        "kubernetes.io/service-name": name,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                        "generateName": f"{name}-", "ownerReferences": [_owner_ref(R["services"], svc)]},
                    "addressType": "IPv4", "endpoints": sorted(eps, key=lambda e: e["addresses"][0]),
                    # EndpointSlice ports always carry a name ("" when unnamed), unlike Endpoints;
                    # `kubectl describe service` dereferences it
                    "ports": [{**p, "name": p.get("name", "")} for p in g["ports"]] or None}
            cur = s.get(es_rt, ns, slice_name)
            if cur is None:
                self._create(es_rt, ns, body)
            else:
                cur.update({k: v for k, v in body.items() if k != "metadata"})
                s.put(es_rt, cur)
        for es in s.list(es_rt, ns)[0]:
            if _owned_by(es, svc["metadata"]["uid"]) and es["metadata"]["name"] not in wanted:
                s.delete(es_rt, ns, es["metadata"]["name"], missing_ok=True)

    def _admit_route(self, route: dict) -> None:
        spec = route.get("spec") or {}
        old = ((route.get("status") or {}).get("ingress") or [{}])[0].get("conditions")
        kind = (spec.get("to") or {}).get("kind", "Service")
        host, meta = str(spec.get("host") or "").lower(), route["metadata"]
        holder = next((r for r in self.store.list(self.R["routes.route.openshift.io"])[0] if host and (
            r["metadata"]["namespace"] != meta["namespace"] and isinstance(r.get("spec"), dict)
            and str(r["spec"].get("host") or "").lower() == host
            and (r["metadata"].get("creationTimestamp", ""), r["metadata"]["namespace"]) < (meta.get("creationTimestamp", ""), meta["namespace"]))), None)
        if holder is not None:  # OpenShift's router: the oldest route in another namespace keeps the host
            cond = _condition(old, "Admitted", "False", "HostAlreadyClaimed",
                              f"route {holder['metadata']['name']} already exposes {host} and is older")
        elif kind == "Service":
            cond = _condition(old, "Admitted", "True")
        else:
            cond = _condition(old, "Admitted", "False", "ExtendedValidationFailed",
                              f'spec.to.kind: Invalid value: "{kind}": must reference a Service')
        route["status"] = {"ingress": [{"host": spec.get("host", ""), "routerName": "default",
                                        "wildcardPolicy": spec.get("wildcardPolicy", "None"),
                                        "routerCanonicalHostname": f"router-default.{self.route_domain}",
                                        "conditions": [cond]}]}
        self.store.put(self.R["routes.route.openshift.io"], route)


_QUANTITY_RX = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


def _check_quantities(rt: ResourceType, values: dict) -> None:
    """A size the API cannot decode ("1GB", "1 Gi") is refused with 400, as by the real server."""
    for value in values.values():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            continue
        if not isinstance(value, str) or not _QUANTITY_RX.match(value):
            raise ApiStatus(400, "BadRequest", f'{rt.kind} in version "v1" cannot be handled as a {rt.kind}: '
                            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def _admit_secret(obj: dict) -> None:
    """As the real API server: ``type`` defaults to Opaque, ``data`` must be base64 (a plain-text
    value is refused with 400, a mistake students make), and the write-only ``stringData`` is
    encoded into ``data`` and not stored, so readers only ever see ``data``."""
    if not obj.get("type"):
        obj["type"] = "Opaque"   # defaulted when missing or empty, as kube-apiserver does
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise ApiStatus(400, "BadRequest", 'Secret in version "v1" cannot be handled as a Secret: '
                        "json: cannot unmarshal data into Go struct field Secret.data of type map[string][]uint8")
    for key, value in (data or {}).items():
        try:
            base64.b64decode(value if isinstance(value, str) else "\0", validate=True)
        except (binascii.Error, ValueError):
            raise ApiStatus(400, "BadRequest", 'Secret in version "v1" cannot be handled as a Secret: '
                            f"illegal base64 data in data[{key}]") from None
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        merged = dict(data or {})
        merged.update({str(k): base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()})
        obj["data"] = merged


def _resolve_target(pod: dict, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in pod["spec"].get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return p.get("containerPort")
    return None


def _is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _pull_error(image: str) -> str:
    return (f'Failed to pull image "{image}": initializing source docker://{image}: reading manifest '
            f"latest in docker.io/library/{image.split(':')[0]}: requested access to the resource is denied")


def _image_id(image: str) -> str:
    return f"{image.split(':')[0].split('@')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _gomap(labels: dict) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
