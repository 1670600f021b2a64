"""Controllers that make the embedded API server behave like a cluster.

Exercises are graded on what a cluster *does* with the student's objects (pods that never start,
services without endpoints, claims that never bind), so the simulation has to produce the same
states and messages a real kubelet, scheduler and controller manager would.  One thread
reconciles whole namespaces level-triggered: every write marks its namespace dirty, a pass makes
the namespace's objects consistent, and the pass repeats until it changes nothing.  ``settle``
waits for that fixed point, including delayed pod starts.

Admission (defaults and the validations students meet: selectors that do not match, service IPs)
runs synchronously inside the API write, as it does on a real server.

Module layout by role: ``admission`` (inside the write), ``kubelet`` (scheduler, pod status,
termination), ``netcontrollers`` (Endpoints, EndpointSlices, routes, ingresses), ``ctlutil``
(shared pod/owner helpers), and this module (the loop, bootstrap, garbage collection,
Deployments/ReplicaSets/ReplicationControllers and volume binding).
"""
from __future__ import annotations

import json
import logging
import threading
import time

from .admission import AdmissionMixin
from .apiserver import ApiServer
from .apitypes import ApiStatus, ResourceType, selector_matches
from .events import EventRecorder
from .protection import admit as protection_admission, release_claims, release_volumes
from .ctlutil import condition, controller_of, is_active, is_ready, is_terminating, owned_by, owner_ref, quantity, suffix
from .ctlutil import now as _now
from .kubelet import SANDBOX_MAX_GRACE, KubeletMixin
from .netcontrollers import NetworkMixin

log = logging.getLogger(__name__)
_ALL = "*"
DEFAULT_CLASS = "standard"
PROVISIONER = "grader.dev/embedded"


class Controllers(AdmissionMixin, KubeletMixin, NetworkMixin):
    """Scheduler, kubelet, replication, endpoints, volume binding and route admission."""

    def __init__(self, server: ApiServer, *, pod_start_delay: float = 0.0, nodes: int = 2,
                 route_domain: str = "apps.sandbox.local", max_grace: float = SANDBOX_MAX_GRACE) -> None:
        self.server, self.store = server, server.store
        self.pod_start_delay = pod_start_delay
        self.max_grace = max_grace
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
        self._stop_at: dict[str, float] = {}
        self._pod_ns: dict[str, str] = {}   # uid -> namespace, to forget a pod's timers
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.R = {r.key: r for r in self.store.resources}
        server.admission.append(self._admit)
        server.admission.append(protection_admission(self.store))
        self.store.listeners.append(self._on_change)
        self.events = EventRecorder(self.store)

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
        if rt.plural == "events":
            return      # recorded by the controllers themselves; nothing reconciles on them
        ns = obj["metadata"].get("namespace", "") if rt.namespaced else ""
        if rt.plural == "namespaces":
            ns = obj["metadata"]["name"]
        elif not rt.namespaced and rt.plural in ("persistentvolumes", "storageclasses", "nodes"):
            ns = _ALL
        elif not rt.namespaced:
            return
        with self._cond:
            self._dirty.add(ns)
            if rt.plural == "persistentvolumeclaims" and event == "DELETED":
                self._dirty.add(_ALL)   # its volume is released (and reclaimed) now, not at the next volume change
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
        release_volumes(s)

    def _forget_pods(self, ns: str, live: set[str]) -> None:
        """Drop start/stop timers of pods that are gone (deleted with grace 0, or with their
        namespace), so ``settle`` does not wait out a grace period nobody is in any more."""
        with self._cond:
            for key, (_, where) in list(self._timers.items()):
                if where == ns and key.startswith(("start/", "stop/")) and key.split("/", 1)[1] not in live:
                    del self._timers[key]
        for table in (self._start_at, self._stop_at):
            for uid in [u for u in table if u not in live and self._pod_ns.get(u) == ns]:
                del table[uid]
                self._pod_ns.pop(uid, None)

    def _reconcile_namespace(self, ns: str) -> None:
        s, R = self.store, self.R
        if not s.exists(R["namespaces"], "", ns):
            self._forget_pods(ns, set())
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
        release_claims(s, ns)
        pods = s.list(R["pods"], ns)[0]
        self._forget_pods(ns, {p["metadata"]["uid"] for p in pods})
        for pod in pods:
            self._pod_ns[pod["metadata"]["uid"]] = ns
            self._sync_pod(pod, pods)
        pods = s.list(R["pods"], ns)[0]
        for rt in (R["replicasets.apps"], R["replicationcontrollers"]):
            for owner in s.list(rt, ns)[0]:
                self._replica_status(rt, owner, pods)
        for d in s.list(R["deployments.apps"], ns)[0]:
            self._deployment_status(d)
        self._sync_network(ns, pods)

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
                ref = controller_of(obj)
                if ref is None:
                    continue
                owner_rt = next((r for r in s.resources if r.kind == ref.get("kind") and r.api_version == ref.get("apiVersion")), None)
                owner = s.get(owner_rt, ns, ref.get("name", "")) if owner_rt else None
                if is_terminating(obj):
                    continue    # deletion already under way (a pod's grace period)
                if owner_rt is not None and (owner is None or owner["metadata"]["uid"] != ref.get("uid")):
                    s.delete(rt, ns, obj["metadata"]["name"], missing_ok=True)

    # --- workloads ----------------------------------------------------------------------------
    def _sync_deployment(self, d: dict) -> None:
        s, rs_rt = self.store, self.R["replicasets.apps"]
        ns, name, spec = d["metadata"]["namespace"], d["metadata"]["name"], d["spec"]
        template = spec.get("template") or {}
        h = suffix(json.dumps(template, sort_keys=True), 10)
        owned = [r for r in s.list(rs_rt, ns)[0] if owned_by(r, d["metadata"]["uid"])]
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
                "ownerReferences": [owner_ref(self.R["deployments.apps"], d)]},
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
        pods = []   # active ones only (FilterActivePods): a Terminating pod is already replaced
        for p in s.list(pod_rt, ns)[0]:
            labels = p["metadata"].get("labels") or {}
            if not is_active(p):
                continue
            if owned_by(p, uid):
                pods.append(p)
            elif controller_of(p) is None and labels and selector_matches(sel, labels):
                p["metadata"].setdefault("ownerReferences", []).append(owner_ref(rt, owner))   # adoption
                if s.put(pod_rt, p):
                    pods.append(p)
        want = spec.get("replicas", 1)
        template = spec.get("template") or {}
        for _ in range(want - len(pods)):
            meta = json.loads(json.dumps(template.get("metadata") or {}))
            meta.pop("name", None)
            meta.update({"generateName": f"{owner['metadata']['name']}-", "ownerReferences": [owner_ref(rt, owner)]})
            self._create(pod_rt, ns, {"metadata": meta, "spec": json.loads(json.dumps(template.get("spec") or {}))})
        if len(pods) > want:
            rank = lambda p: (bool(p["spec"].get("nodeName")), is_ready(p), p["metadata"]["creationTimestamp"])  # noqa: E731
            for p in sorted(pods, key=lambda p: (rank(p)[0], rank(p)[1]))[: len(pods) - want]:
                if s.delete(pod_rt, ns, p["metadata"]["name"], missing_ok=True):
                    self.events.replica_deleted(rt, owner, p)

    def _replica_status(self, rt: ResourceType, owner: dict, pods: list[dict]) -> None:
        mine = [p for p in pods if owned_by(p, owner["metadata"]["uid"]) and is_active(p)]   # as calculateStatus counts
        ready = sum(1 for p in mine if is_ready(p))
        st = {"replicas": len(mine), "fullyLabeledReplicas": len(mine), "readyReplicas": ready,
              "availableReplicas": ready, "observedGeneration": owner["metadata"].get("generation", 1)}
        owner["status"] = {k: v for k, v in st.items() if v or k in ("replicas", "observedGeneration")}
        self.store.put(rt, owner)

    def _deployment_status(self, d: dict) -> None:
        owned = [r for r in self.store.list(self.R["replicasets.apps"], d["metadata"]["namespace"])[0]
                 if owned_by(r, d["metadata"]["uid"])]
        h = suffix(json.dumps(d["spec"].get("template") or {}, sort_keys=True), 10)
        new = next((r for r in owned if r["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
        total = lambda f: sum((r.get("status") or {}).get(f, 0) for r in owned)  # noqa: E731
        want = d["spec"].get("replicas", 1)
        replicas, ready, avail = total("replicas"), total("readyReplicas"), total("availableReplicas")
        updated = (new.get("status") or {}).get("replicas", 0) if new else 0
        old = (d.get("status") or {}).get("conditions")
        done = updated == want and replicas == want and avail == want
        conds = [condition(old, "Available", "True" if avail >= want else "False",
                            "MinimumReplicasAvailable" if avail >= want else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if avail >= want else "Deployment does not have minimum availability."),
                 condition(old, "Progressing", "True", "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                            f'ReplicaSet "{new["metadata"]["name"] if new else ""}" ' + ("has successfully progressed." if done else "is progressing."))]
        st = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": replicas, "updatedReplicas": updated,
              "readyReplicas": ready, "availableReplicas": avail, "unavailableReplicas": max(0, want - avail),
              "conditions": conds}
        d["status"] = {k: v for k, v in st.items() if v or k in ("observedGeneration", "conditions")}
        self.store.put(self.R["deployments.apps"], d)

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
        # only the unclaimed volumes, from an index: listing every volume per claim was quadratic
        s.add_index(R["persistentvolumes"], "available", _available)
        for pv in s.lookup(R["persistentvolumes"], "available", "yes"):
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


def _available(pv: dict) -> list[str]:
    """"yes" for a volume a claim may still bind (the ``available`` index of volumes)."""
    spec = pv.get("spec")
    free = (pv.get("status") or {}).get("phase") == "Available" and isinstance(spec, dict) and not spec.get("claimRef")
    return ["yes"] if free else []
