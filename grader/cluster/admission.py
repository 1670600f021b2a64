"""Admission of the embedded API server: the defaults and validations a real kube-apiserver
applies inside the write itself (selectors that do not match their template, service IPs and
node ports, pod defaults, Secret encoding, quantities), so a student meets the same refusal at
``kubectl apply`` time as on a cluster, not later from a controller."""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .apitypes import ApiStatus, ResourceType, invalid, selector_matches


class AdmissionMixin:
    """Mutating and validating admission; mixed into ``Controllers``, which owns the counters."""

    store: Any
    route_domain: str
    _service_ips: int
    _node_ports: int
    R: dict[str, ResourceType]

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
        if rt.key in ("replicationcontrollers", "deployments.apps", "replicasets.apps") and isinstance(spec, dict) \
                and isinstance((spec.get("template") or {}).get("spec"), dict):
            _default_pod_spec(spec["template"]["spec"])
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
        for i, c in enumerate(spec.get("containers") or []):   # validateContainerPorts (pkg/apis/core/validation)
            for j, p in enumerate((c.get("ports") or []) if isinstance(c, dict) else []):
                if isinstance(p, dict) and not p.get("containerPort"):
                    raise invalid(rt, obj["metadata"]["name"], f"spec.containers[{i}].ports[{j}].containerPort",
                                  "FieldValueRequired", "Required value")
        _default_pod_spec(spec)
        spec.setdefault("serviceAccountName", "default")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def _default_class(self) -> str:
        for sc in self.store.list(self.R["storageclasses.storage.k8s.io"])[0]:
            if (sc["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
                return sc["metadata"]["name"]
        return ""

def _default_pod_spec(spec: dict) -> None:
    """SetDefaults_PodSpec and SetDefaults_Container (kubernetes pkg/apis/core/v1/defaults.go), which
    the API server applies to every PodSpec, a controller's pod template included (so `kubectl
    describe rc` shows `Port: 8080/TCP`); the service account is the pod admission's, not here."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for c in spec.get("containers") or []:
        if not isinstance(c, dict):
            continue
        image = c.get("image", "")
        tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        c.setdefault("imagePullPolicy", "IfNotPresent" if tagged or "@" in image else "Always")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")


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


def _gomap(labels: dict) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
