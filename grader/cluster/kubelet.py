"""The embedded cluster's scheduler and kubelet: where a pod runs, what its containers do, when
it is ready, and how it ends when deleted.

States and messages are the ones a real kubelet writes (ErrImagePull, CreateContainerConfigError,
CrashLoopBackOff, Unschedulable), because exercises are graded on them.  A deleted pod is
Terminating for its grace period as on a cluster: the API server set ``deletionTimestamp``; the
kubelet here stops the containers and removes the pod after ``min(grace, max_grace)`` seconds
(``SANDBOX_MAX_GRACE`` unless the cluster was built otherwise), modelling a process that exits
promptly on SIGTERM.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

from .apitypes import ResourceType
from .ctlutil import condition, controller_of, is_terminating, now, suffix
from . import oneshot
from .workloads import listening_ports, lookup_image, serve

SANDBOX_MAX_GRACE = 2.0
"""Longest a deleted pod stays Terminating here (a real cluster's default is 30 s; ours stays short
so tests and ``grade demo`` do not wait, yet long enough to be seen)."""


class KubeletMixin:
    """Scheduling and pod status; mixed into ``Controllers``."""

    store: Any
    server: Any
    R: dict[str, ResourceType]
    node_count: int
    pod_start_delay: float
    max_grace: float
    _node_ips: dict[str, int]
    _start_at: dict[str, float]
    _stop_at: dict[str, float]

    def _later(self, key: str, due_in: float, ns: str) -> None: ...   # from Controllers

    def _finish_termination(self, pod: dict) -> bool:
        """A Terminating pod: its status is frozen as the containers stop, and once they have
        the kubelet's final delete (grace 0) removes it. True while it is still there."""
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        grace = float(grace) if isinstance(grace, (int, float)) and not isinstance(grace, bool) else 0.0
        stop_at = self._stop_at.setdefault(meta["uid"], time.monotonic() + min(max(grace, 0.0), self.max_grace))
        left = stop_at - time.monotonic()
        if left > 0:
            self._later("stop/" + meta["uid"], left, meta["namespace"])
            return True
        self._stop_at.pop(meta["uid"], None)
        self._start_at.pop(meta["uid"], None)
        self.store.delete(self.R["pods"], meta["namespace"], meta["name"], missing_ok=True, grace=0,
                          uid=meta["uid"])
        return False

    def _sync_pod(self, pod: dict, pods: list[dict]) -> None:
        R, spec, meta = self.R, pod["spec"], pod["metadata"]
        if is_terminating(pod):
            self._finish_termination(pod)
            return
        ns = meta["namespace"]
        st = pod.setdefault("status", {})
        old_conds = st.get("conditions")
        if not spec.get("nodeName"):
            blocker = self._claim_blocker(ns, spec)
            if blocker:
                pod["status"] = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [condition(
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
            st["startTime"] = now()
        due = True
        if self.pod_start_delay > 0:
            start_at = self._start_at.setdefault(meta["uid"], time.monotonic() + self.pod_start_delay)
            due = time.monotonic() >= start_at
            if not due:
                self._later("start/" + meta["uid"], start_at - time.monotonic(), ns)
        old_cs = {c.get("name"): c for c in st.get("containerStatuses") or []}
        statuses, running_all, exited = [], True, []
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
            elif (argv := oneshot.argv_of(c)) is not None:     # runs to its end (kubectl run --rm -i ... -- curl)
                started = ((prev.get("state") or {}).get("terminated") or {}).get("startedAt") or now()
                code, finished = oneshot.run_once(self.server, self.store, {**pod, "status": st}, c, argv)
                cs.update(imageID=_image_id(c["image"]), containerID=f"cri-o://{suffix(meta['uid'] + c['name'], 32)}")
                if spec.get("restartPolicy") == "Never" or (spec.get("restartPolicy") == "OnFailure" and code == 0):
                    cs["state"] = oneshot.terminated(code, started, finished)
                    exited.append(code)
                else:
                    cs.update(restartCount=max(1, cs["restartCount"]), lastState=oneshot.terminated(code, started, finished))
                    cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                               f"back-off 10s restarting failed container={c['name']} pod={meta['name']}_{ns}({meta['uid']})"}}
            else:
                started = ((prev.get("state") or {}).get("running") or {}).get("startedAt") or now()
                cs.update(state={"running": {"startedAt": started}}, started=True, imageID=_image_id(c["image"]),
                          containerID=f"cri-o://{suffix(meta['uid'] + c['name'], 32)}")
            if "running" in cs["state"]:
                pod["status"] = {**st, "containerStatuses": statuses + [cs]}
                cs["ready"] = self._probe_ok(ns, pod, c)
            else:
                running_all = False
            statuses.append(cs)
        not_ready = [c["name"] for c in statuses if not c["ready"]]
        msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
        conds = [
            condition(old_conds, "PodReadyToStartContainers", "True" if not volume_wait else "False"),
            condition(old_conds, "Initialized", "True"),
            condition(old_conds, "Ready", "False" if not_ready else "True", "ContainersNotReady" if not_ready else "", msg),
            condition(old_conds, "ContainersReady", "False" if not_ready else "True", "ContainersNotReady" if not_ready else "", msg),
            condition(old_conds, "PodScheduled", "True"),
        ]
        phase = "Running" if running_all else "Pending"
        if exited and len(exited) == len(statuses):
            phase = "Succeeded" if not any(exited) else "Failed"
            conds = [{**{k: v for k, v in x.items() if k != "message"}, "reason": "PodCompleted"}
                     if x["type"] in ("Ready", "ContainersReady") else x for x in conds]
        st.update(phase=phase, conditions=conds, containerStatuses=statuses)
        st.setdefault("qosClass", "BestEffort")
        pod["status"] = st
        self.store.put(R["pods"], pod)

    def _choose_node(self, pod: dict, pods: list[dict]) -> str:
        ref = controller_of(pod)
        labels = pod["metadata"].get("labels") or {}
        def peer(p: dict) -> bool:
            r = controller_of(p)
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


def _pull_error(image: str) -> str:
    return (f'Failed to pull image "{image}": initializing source docker://{image}: reading manifest '
            f"latest in docker.io/library/{image.split(':')[0]}: requested access to the resource is denied")


def _image_id(image: str) -> str:
    return f"{image.split(':')[0].split('@')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"

