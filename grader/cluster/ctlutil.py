"""Small pure helpers the embedded cluster's controllers share: times, names, conditions, owners,
and the pod facts (ready, terminating, named ports) that a real controller manager reads the
same way in every controller, so they are written once here."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from .apitypes import ResourceType

_ALNUM = "bcdfghjklmnpqrstvwxz2456789"
_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def suffix(text: str, n: int = 5) -> str:
    """A stable generateName-like suffix, so a re-created object gets the same name."""
    h = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    return "".join(_ALNUM[(h >> (5 * i)) % len(_ALNUM)] for i in range(n))


def quantity(q: Any) -> float:
    """A resource.Quantity string in bytes (storage sizes only); unparsable is 0."""
    m = re.match(r"^\s*([0-9.]+)\s*([kMGTP]i?|)\s*$", str(q or ""))
    return float(m.group(1)) * _UNITS[m.group(2)] if m else 0.0


def condition(old: list[dict] | None, ctype: str, status: str, reason: str = "", message: str = "") -> dict:
    """A condition that keeps its lastTransitionTime while nothing about it changes."""
    prev = next((c for c in old or [] if c.get("type") == ctype), None)
    same = prev is not None and prev.get("status") == status
    cond = {"type": ctype, "status": status,
            "lastTransitionTime": prev["lastTransitionTime"] if same and prev.get("lastTransitionTime") else now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    if prev is not None and same and prev.get("reason", "") == reason and prev.get("message", "") == message:
        return prev
    return cond


def owned_by(obj: dict, uid: str) -> bool:
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or [])


def controller_of(obj: dict) -> dict | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def owner_ref(rt: ResourceType, owner: dict) -> dict:
    return {"apiVersion": rt.api_version, "kind": rt.kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def is_ready(pod: dict) -> bool:
    """The pod's Ready condition (podutil.IsPodReady): readiness gates included, unlike
    "every container ready"."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def is_terminating(pod: dict) -> bool:
    """Deletion requested and the grace period running (the kubelet has not finished yet)."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: dict) -> bool:
    """What the replication managers count (controller.FilterActivePods): neither finished
    nor being deleted, so a replacement is made while the old pod still terminates."""
    return not is_terminal(pod) and not is_terminating(pod)


def resolve_target(pod: dict, target: Any, protocol: str = "TCP") -> int | None:
    """A Service targetPort on one pod: a number as is, a name looked up among the pod's
    containerPorts with the same protocol (findPort in k8s.io/endpointslice/utils.go); None
    when the pod has no such named port, and then the pod is left out of that port's endpoints."""
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    if not isinstance(target, str) or not target:
        return None
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and p.get("protocol", "TCP") == protocol:
                port = p.get("containerPort")
                return port if isinstance(port, int) else None
    return None
