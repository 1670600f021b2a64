"""Check library (storage, config, replication, routes) on plain dicts: quantities, malformed objects
failing with a message instead of crashing, Secret values never in a message, PVs and nodes unreadable."""
from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any, Callable

import pytest

from grader import checks as C
from grader.checks import NotApplicable
from grader.errors import CannotSee, CheckFailed
from grader.i18n import t
from grader.kube import HttpAnswer

SENTINEL = "s3ntinel-Pa55w0rd"
B64_SENTINEL = base64.b64encode(SENTINEL.encode()).decode()


class FakeView:
    """The View interface over dicts; kinds in ``denied`` are unreadable (403), as PVs and nodes
    usually are for a student's account."""

    def __init__(self, objects: dict[str, list[dict]] | None = None, *, denied: tuple[str, ...] = (),
                 served: tuple[str, ...] = ("Route",)) -> None:
        self.namespace = "student"
        self.objects = objects or {}
        self.denied = denied
        self._served = served

    def list(self, kind: str) -> list[dict]:
        if kind in self.denied:
            raise CannotSee(t("禁止", "forbidden"), 403, "Forbidden")
        return self.objects.get(kind, [])

    def get(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.list(kind) if (o.get("metadata") or {}).get("name") == name), None)

    def select(self, kind: str, selector: dict) -> list[dict]:
        return [o for o in self.list(kind) if selector and all(
            ((o.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items())]

    def can_read(self, kind: str) -> bool:
        return kind not in self.denied

    def served(self, kind: str) -> bool:
        return kind in self._served


def failure(fn: Callable[[], Any]) -> CheckFailed:
    """The CheckFailed ``fn`` raises; its message exists in both languages."""
    with pytest.raises(CheckFailed) as info:
        fn()
    msg = info.value.message
    assert msg.ja.strip() and msg.en.strip() and msg.ja != msg.en
    assert info.value.command is None or info.value.command.startswith(("oc ", "curl "))
    return info.value


# --- quantities ------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [
    ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("500Mi", 500 * 2**20), ("1024Ki", 2**20), ("2Ti", 2 * 2**40),
    ("500M", 500 * 10**6), ("1G", 10**9), ("2k", 2000), ("1073741824", 2**30), (1073741824, 2**30),
    ("1e9", 10**9), ("1E3", 1000), ("100m", Decimal("0.1")), (".5Gi", 2**29), ("0", 0),
])
def test_parse_quantity(text, value):
    assert C.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["1GB", "1 Gi", " 1Gi", "1Gi ", "", "Gi", "1.2.3Gi", "1gi", "1Kb", None, True, [], {}, 1.5])
def test_parse_quantity_rejects(text):
    assert C.parse_quantity(text) is None


def test_binary_and_decimal_units_compare_exactly():
    assert C.parse_quantity("1Gi") > C.parse_quantity("1G") > C.parse_quantity("953Mi")
    assert C.parse_quantity("1024Mi") == C.parse_quantity("1Gi")


# --- claims ------------------------------------------------------------------------------------
def pvc(size: Any = "1Gi", modes: Any = ("ReadWriteOnce",), phase: str = "Bound", volume: str = "pv-1") -> dict:
    return {"metadata": {"name": "data", "namespace": "student", "uid": "u-1"},
            "spec": {"accessModes": list(modes) if isinstance(modes, tuple) else modes,
                     "resources": {"requests": {"storage": size}}, "volumeName": volume},
            "status": {"phase": phase}}


def pv(capacity: str = "1Gi", claim: str = "data", ns: str = "student", uid: str = "u-1") -> dict:
    return {"metadata": {"name": "pv-1"}, "spec": {"capacity": {"storage": capacity},
                                                  "claimRef": {"namespace": ns, "name": claim, "uid": uid}}}


def test_pvc_request():
    view = FakeView()
    C.expect_pvc_request(view, pvc("2Gi"), "1Gi", "ReadWriteOnce")
    C.expect_pvc_request(view, pvc("1073741824"), "1Gi", "ReadWriteOnce")
    assert "less than" in failure(lambda: C.expect_pvc_request(view, pvc("500Mi"), "1Gi", "ReadWriteOnce")).message.en
    assert "less than" in failure(lambda: C.expect_pvc_request(view, pvc("1G"), "1Gi", "ReadWriteOnce")).message.en
    assert "not a valid quantity" in failure(lambda: C.expect_pvc_request(view, pvc("1GB"), "1Gi", "ReadWriteOnce")).message.en
    assert "ReadWriteMany" in failure(lambda: C.expect_pvc_request(view, pvc(modes=("ReadWriteMany",)), "1Gi", "ReadWriteOnce")).message.en
    failure(lambda: C.expect_pvc_request(view, pvc(modes="ReadWriteOnce"), "1Gi", "ReadWriteOnce"))


def test_pvc_bound_judged_on_the_claim_when_pvs_are_unreadable():
    student = FakeView(denied=("PersistentVolume",))
    C.expect_pvc_bound(student, pvc())
    assert "Pending" in failure(lambda: C.expect_pvc_bound(student, pvc(phase="Pending"))).message.en
    failure(lambda: C.expect_pvc_bound(student, pvc(volume="")))


def test_pvc_bound_checks_the_volume_where_readable():
    C.expect_pvc_bound(FakeView({"PersistentVolume": [pv("5Gi")]}), pvc())
    assert "does not exist" in failure(lambda: C.expect_pvc_bound(FakeView({"PersistentVolume": []}), pvc())).message.en
    wrong = failure(lambda: C.expect_pvc_bound(FakeView({"PersistentVolume": [pv(claim="other")]}), pvc()))
    assert "does not point back" in wrong.message.en and wrong.command == "oc get pv pv-1 -o yaml"
    failure(lambda: C.expect_pvc_bound(FakeView({"PersistentVolume": [pv(ns="someone-else")]}), pvc()))
    failure(lambda: C.expect_pvc_bound(FakeView({"PersistentVolume": [pv(uid="u-old")]}), pvc()))
    small = failure(lambda: C.expect_pvc_bound(FakeView({"PersistentVolume": [pv("500Mi")]}), pvc()))
    assert "less than" in small.message.en
    failure(lambda: C.expect_pvc_bound(FakeView({"PersistentVolume": [{"metadata": {"name": "pv-1"}, "spec": "junk"}]}), pvc()))


# --- mounts ------------------------------------------------------------------------------------
def pod(containers: Any, volumes: Any = None, name: str = "db") -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": containers, "volumes": volumes or []}}


CLAIM_VOLUME = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]


def test_mount():
    view = FakeView()
    C.expect_mount(view, pod([{"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/var/lib/data/"}]}], CLAIM_VOLUME),
                   "data", "/var/lib/data")
    wrong_path = failure(lambda: C.expect_mount(view, pod([{"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                                                           CLAIM_VOLUME), "data", "/var/lib/data"))
    assert "mounted at “/data”" in wrong_path.message.en
    other = failure(lambda: C.expect_mount(view, pod([{"name": "c", "volumeMounts": [{"name": "x", "mountPath": "/var/lib/data"}]}],
                                                      [{"name": "x", "emptyDir": {}}]), "data", "/var/lib/data"))
    assert "another volume" in other.message.en
    assert "no volumeMounts" in failure(lambda: C.expect_mount(view, pod([{"name": "c"}]), "data", "/var/lib/data")).message.en


def test_mount_in_a_pod_template():
    deployment = {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {
        "containers": [{"name": "c", "volumeMounts": [{"name": "p", "mountPath": "/var/www/html"}]}],
        "volumes": [{"name": "p", "configMap": {"name": "page"}}]}}}}
    C.expect_mount(FakeView(), deployment, "page", "/var/www/html", kind="ConfigMap")
    failed = failure(lambda: C.expect_mount(FakeView(), deployment, "page", "/var/www/html", kind="PersistentVolumeClaim"))
    assert failed.message.en.startswith("Deployment “web”") and failed.command == "oc describe deployments web -n student"


# --- config maps and secrets ------------------------------------------------------------------
def secret(data: dict, kind: str = "Opaque") -> dict:
    return {"metadata": {"name": "s"}, "type": kind, "data": data}


def test_configmap_keys():
    view = FakeView()
    C.expect_key_nonempty(view, {"metadata": {"name": "cm"}, "data": {"GREETING": "hi"}}, "GREETING")
    assert "is empty" in failure(lambda: C.expect_key_nonempty(view, {"metadata": {"name": "cm"}, "data": {"GREETING": ""}}, "GREETING")).message.en
    assert "“greeting”" in failure(lambda: C.expect_key_nonempty(view, {"metadata": {"name": "cm"}, "data": {"greeting": "x"}}, "GREETING")).message.en
    failure(lambda: C.expect_key_nonempty(view, {"metadata": {"name": "cm"}, "data": "GREETING=hi"}, "GREETING"))


def test_secret_values_never_appear_in_messages():
    view = FakeView()
    C.expect_key_nonempty(view, secret({"PASSWORD": B64_SENTINEL}), "PASSWORD", secret=True)
    C.expect_key_nonempty(view, {"metadata": {"name": "s"}, "stringData": {"PASSWORD": SENTINEL}}, "PASSWORD", secret=True)
    failures = [
        failure(lambda: C.expect_key_nonempty(view, secret({"password": B64_SENTINEL}), "PASSWORD", secret=True)),
        failure(lambda: C.expect_key_nonempty(view, secret({"PASSWORD": ""}), "PASSWORD", secret=True)),
        failure(lambda: C.expect_key_nonempty(view, secret({"PASSWORD": SENTINEL + "!"}), "PASSWORD", secret=True)),  # not base64
        failure(lambda: C.expect_key_nonempty(view, secret({"PASSWORD": 12345}), "PASSWORD", secret=True)),
        failure(lambda: C.expect_secret_type(view, secret({"PASSWORD": B64_SENTINEL}, "kubernetes.io/basic-auth"), "Opaque")),
        failure(lambda: C.expect_env_from(view, pod([{"name": "c", "env": [{"name": "PASSWORD", "value": SENTINEL}]}]),
                                          "PASSWORD", "Secret", "s", "PASSWORD")),
        failure(lambda: C.expect_env_from(view, pod([{"name": "c", "env": [{"name": "PASSWORD", "value": B64_SENTINEL}]}]),
                                          "PASSWORD", "Secret", "s", "PASSWORD")),
    ]
    assert "is empty" in failures[1].message.en and "not valid base64" in failures[2].message.en
    assert "literal value" in failures[5].message.en
    for f in failures:
        for text in (f.message.ja, f.message.en, f.command or ""):
            assert SENTINEL not in text and B64_SENTINEL not in text


def test_env_from():
    view = FakeView()
    ref = {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "GREETING"}}}
    C.expect_env_from(view, pod([{"name": "a"}, {"name": "b", "env": [ref]}]), "GREETING", "ConfigMap", "cm", "GREETING")
    C.expect_env_from(view, pod([{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]), "PASSWORD", "Secret", "s", "PASSWORD")
    C.expect_env_from(view, pod([{"name": "c", "envFrom": [{"secretRef": {"name": "s"}, "prefix": "DB_"}]}]),
                      "DB_PASSWORD", "Secret", "s", "PASSWORD")
    prefixed = failure(lambda: C.expect_env_from(view, pod([{"name": "c", "envFrom": [{"secretRef": {"name": "s"}, "prefix": "DB_"}]}]),
                                                 "PASSWORD", "Secret", "s", "PASSWORD"))
    assert "“DB_PASSWORD”" in prefixed.message.en and prefixed.command == "oc set env pod/db --list -n student"
    other = failure(lambda: C.expect_env_from(view, pod([{"name": "c", "env": [ref]}]), "GREETING", "Secret", "cm", "GREETING"))
    assert "from key “GREETING” of ConfigMap “cm”, not from key GREETING of Secret cm" in other.message.en
    assert "has no environment variable" in failure(lambda: C.expect_env_from(view, pod([{"name": "c"}]), "X", "Secret", "s", "X")).message.en
    wrong_key = {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "greeting"}}}
    assert "“greeting”" in failure(lambda: C.expect_env_from(view, pod([{"name": "c", "env": [wrong_key]}]), "GREETING", "ConfigMap", "cm", "GREETING")).message.en
    failure(lambda: C.expect_env_from(view, pod([{"name": "c", "env": "GREETING=x", "envFrom": [None, "x"]}]), "GREETING", "ConfigMap", "cm", "GREETING"))


# --- replication -------------------------------------------------------------------------------
def rc(replicas: Any = 3, ready: Any = 3, selector: Any = None, labels: Any = None) -> dict:
    return {"kind": "ReplicationController", "metadata": {"name": "hello-rc", "uid": "rc-1"},
            "spec": {"replicas": replicas, "selector": {"app": "hello-rc"} if selector is None else selector,
                     "template": {"metadata": {"labels": {"app": "hello-rc"} if labels is None else labels},
                                  "spec": {"containers": [{"name": "c", "image": "ubi9/httpd-24"}]}}},
            "status": {"readyReplicas": ready}}


def owned(name: str, uid: str, node: str = "node-1", kind: str = "ReplicationController") -> dict:
    return {"metadata": {"name": name, "labels": {"app": "hello-rc"},
                         "ownerReferences": [{"kind": kind, "uid": uid, "controller": True}]},
            "spec": {"nodeName": node}, "status": {"phase": "Running", "podIP": "10.0.0.1"}}


def test_replicas_selector_and_readiness():
    view = FakeView()
    C.expect_replicas(view, rc(), 3)
    C.expect_ready_replicas(view, rc(), 3)
    C.expect_selector_matches_template(view, rc(), {"app": "hello-rc"})
    C.expect_image(view, rc(), "httpd")
    assert "not 1" in failure(lambda: C.expect_replicas(view, rc(replicas=1), 3)).message.en
    assert "1/3" in failure(lambda: C.expect_ready_replicas(view, rc(ready=1), 3)).message.en
    failure(lambda: C.expect_ready_replicas(view, rc(ready="3"), 3))
    failure(lambda: C.expect_replicas(view, rc(replicas="3"), 3))
    extra = failure(lambda: C.expect_selector_matches_template(view, rc(selector={"app": "hello-rc", "tier": "web"}), {"app": "hello-rc"}))
    assert "does not match its pod template" in extra.message.en
    failure(lambda: C.expect_selector_matches_template(view, rc(selector="app=hello-rc"), {"app": "hello-rc"}))
    failure(lambda: C.expect_image(view, rc(labels=[]) | {"spec": {"template": "x"}}, "httpd"))


def test_owned_pods_follow_owner_references_through_replicasets():
    stray = {"metadata": {"name": "stray", "labels": {"app": "hello-rc"}}, "spec": {}}
    view = FakeView({"Pod": [owned("a", "rc-1"), owned("b", "rs-1", kind="ReplicaSet"), stray],
                     "ReplicaSet": [{"metadata": {"name": "web-1", "uid": "rs-1",
                                                  "ownerReferences": [{"uid": "d-1", "controller": True}]}}]})
    assert [p["metadata"]["name"] for p in C.owned_pods(view, rc())] == ["a"]
    deployment = {"kind": "Deployment", "metadata": {"name": "web", "uid": "d-1"}}
    assert [p["metadata"]["name"] for p in C.owned_pods(view, deployment)] == ["b"]


def node(name: str, ready: str = "True", **spec: Any) -> dict:
    return {"metadata": {"name": name}, "spec": spec, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_spread():
    two = [node("n1"), node("n2")]
    spread = [owned("a", "rc-1", "n1"), owned("b", "rc-1", "n2")]
    C.expect_spread(FakeView({"Node": two}), spread)
    together = failure(lambda: C.expect_spread(FakeView({"Node": two}), [owned("a", "rc-1", "n1"), owned("b", "rc-1", "n1")]))
    assert "same node" in together.message.en
    assert "only one pod" in failure(lambda: C.expect_spread(FakeView({"Node": two}), spread[:1])).message.en
    failure(lambda: C.expect_spread(FakeView({"Node": two}), []))
    with pytest.raises(NotApplicable):
        C.expect_spread(FakeView(denied=("Node",)), spread)
    for nodes in ([node("n1")], [node("n1"), node("n2", unschedulable=True)], [node("n1"), node("n2", ready="False")],
                  [node("n1"), node("n2", taints=[{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}])]):
        with pytest.raises(NotApplicable) as info:
            C.expect_spread(FakeView({"Node": nodes}), spread)
        assert info.value.message.ja and "1 schedulable node" in info.value.message.en


# --- routes and ingresses ----------------------------------------------------------------------
def route(to: str = "hello", target_port: Any = None, admitted: str | None = "True", host: str = "hello.apps.example.com") -> dict:
    spec: dict = {"host": host, "to": {"kind": "Service", "name": to}}
    if target_port is not None:
        spec["port"] = {"targetPort": target_port}
    status = {"ingress": [{"conditions": [{"type": "Admitted", "status": admitted, "reason": "HostAlreadyClaimed",
                                           "message": "a route in another namespace holds hello.apps.example.com"}]}]} if admitted else {}
    return {"metadata": {"name": "hello"}, "spec": spec, "status": status}


def ingress(service: str = "hello", port: dict | None = None, lb: bool = True, host: str | None = "hello.apps.example.com") -> dict:
    rule: dict = {"http": {"paths": [{"path": "/", "backend": {"service": {"name": service, "port": port or {"number": 80}}}}]}}
    if host:
        rule["host"] = host
    return {"metadata": {"name": "hello"}, "spec": {"rules": [rule]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}] if lb else []}}}


SERVICE = {"metadata": {"name": "hello"}, "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def test_route_or_ingress_follows_discovery():
    on_openshift = FakeView({"Route": [route()], "Ingress": [ingress()]})
    assert C.route_or_ingress(on_openshift, "hello")["kind"] == "Route"
    on_kubernetes = FakeView({"Ingress": [ingress()]}, served=())
    assert C.route_or_ingress(on_kubernetes, "hello")["kind"] == "Ingress"
    only_ingress = failure(lambda: C.route_or_ingress(FakeView({"Ingress": [ingress()]}), "hello"))
    assert "with a Route" in only_ingress.message.en
    assert "does not exist" in failure(lambda: C.route_or_ingress(FakeView({}, denied=("Ingress",)), "hello")).message.en
    assert C.kind_of(route()) == "Route" and C.kind_of(ingress()) == "Ingress" and C.kind_of(rc()) == "ReplicationController"


def test_exposes_service():
    view = FakeView({"Service": [SERVICE]})
    for ok in (route(), route(target_port=8080), route(target_port="http")):
        C.expect_exposes_service(view, C.tagged(ok, "Route"), "hello")
    C.expect_exposes_service(view, C.tagged(ingress(port={"name": "http"}), "Ingress"), "hello")
    assert "not “Service/helo”" in failure(lambda: C.expect_exposes_service(view, C.tagged(route("helo"), "Route"), "hello")).message.en
    assert "pods' port" in failure(lambda: C.expect_exposes_service(view, C.tagged(route(target_port=80), "Route"), "hello")).message.en
    assert "not a port" in failure(lambda: C.expect_exposes_service(view, C.tagged(ingress(port={"number": 8080}), "Ingress"), "hello")).message.en
    assert "does not exist" in failure(lambda: C.expect_exposes_service(FakeView(), C.tagged(route(), "Route"), "hello")).message.en
    failure(lambda: C.expect_exposes_service(view, {"kind": "Route", "metadata": {"name": "hello"}, "spec": {"to": "hello"}}, "hello"))
    failure(lambda: C.expect_exposes_service(view, {"kind": "Ingress", "metadata": {"name": "hello"}, "spec": {"rules": "x"}}, "hello"))


def test_admitted_and_host():
    view = FakeView()
    C.expect_admitted(view, C.tagged(route(), "Route"))
    C.expect_admitted(view, C.tagged(ingress(), "Ingress"))
    assert "HostAlreadyClaimed" in failure(lambda: C.expect_admitted(view, C.tagged(route(admitted="False"), "Route"))).message.en
    assert "no router" in failure(lambda: C.expect_admitted(view, C.tagged(route(admitted=None), "Route"))).message.en
    assert "no address" in failure(lambda: C.expect_admitted(view, C.tagged(ingress(lb=False), "Ingress"))).message.en
    failure(lambda: C.expect_admitted(view, {"kind": "Route", "metadata": {"name": "hello"}, "status": {"ingress": "x"}}))
    assert C.expect_host(view, C.tagged(ingress(), "Ingress")) == "hello.apps.example.com"
    assert "no host" in failure(lambda: C.expect_host(view, C.tagged(ingress(host=None), "Ingress"))).message.en
    failure(lambda: C.expect_host(view, {"kind": "Route", "metadata": {"name": "hello"}, "spec": {"host": 42}}))


class FakeProbe:
    def __init__(self, answer: HttpAnswer) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    def url(self, host: str, path: str = "/") -> HttpAnswer:
        self.asked.append((host, path))
        return self.answer


def test_page():
    r = C.tagged(route(), "Route")
    probe = FakeProbe(HttpAnswer(200, b"<h1>Hello from OpenShift</h1>"))
    C.expect_page(FakeView(), probe, r, "/", "Hello from OpenShift")
    assert probe.asked == [("hello.apps.example.com", "/")]
    assert "does not contain" in failure(lambda: C.expect_page(FakeView(), probe, r, "/", "Goodbye")).message.en
    forbidden = failure(lambda: C.expect_page(FakeView(), FakeProbe(HttpAnswer(403, b"Forbidden")), r))
    assert "status 403" in forbidden.message.en and forbidden.command == "curl -i http://hello.apps.example.com/"


# --- malformed objects: a failed check with a message, never a crash ---------------------------
JUNK: list[Any] = [
    {}, {"metadata": "x"}, {"metadata": {"name": 3}}, {"spec": []}, {"spec": "x", "status": 5},
    {"spec": {"containers": "x", "volumes": [1, None, {"name": "v", "configMap": "x"}]}},
    {"spec": {"containers": [None, {"env": [None, {"name": "X", "valueFrom": "x"}], "envFrom": "x",
                                    "volumeMounts": [None, {"mountPath": 3, "name": []}]}]}},
    {"kind": "Deployment", "spec": {"template": {"spec": "x"}, "selector": {"matchExpressions": [{}]}}},
    {"kind": "Route", "spec": {"to": [], "port": {"targetPort": {}}}, "status": {"ingress": [None, {"conditions": "x"}]}},
    {"kind": "Ingress", "spec": {"rules": [None, {"http": {"paths": [None, {"backend": "x"}]}}]}},
    {"data": ["a"], "stringData": "x", "type": 3},
]

CALLS: list[Callable[[FakeView, Any], Any]] = [
    lambda v, o: C.expect_pvc_request(v, o, "1Gi", "ReadWriteOnce"),
    lambda v, o: C.expect_pvc_bound(v, o),
    lambda v, o: C.expect_mount(v, o, "data", "/data"),
    lambda v, o: C.expect_key_nonempty(v, o, "K"),
    lambda v, o: C.expect_key_nonempty(v, o, "K", secret=True),
    lambda v, o: C.expect_secret_type(v, o, "Opaque"),
    lambda v, o: C.expect_env_from(v, o, "X", "Secret", "s", "X"),
    lambda v, o: C.expect_replicas(v, o, 3),
    lambda v, o: C.expect_ready_replicas(v, o, 3),
    lambda v, o: C.expect_selector_matches_template(v, o, {"app": "x"}),
    lambda v, o: C.expect_image(v, o, "httpd"),
    lambda v, o: C.expect_spread(v, [o]),
    lambda v, o: C.expect_exposes_service(v, o, "hello"),
    lambda v, o: C.expect_admitted(v, o),
    lambda v, o: C.expect_host(v, o),
    lambda v, o: C.expect_page(v, FakeProbe(HttpAnswer(200, b"")), o),
]


@pytest.mark.parametrize("call", range(len(CALLS)))
def test_malformed_objects_fail_with_a_message(call):
    view = FakeView({"Pod": [j for j in JUNK if isinstance(j, dict)], "Node": [node("n1"), node("n2"), {"spec": "x"}],
                     "PersistentVolume": [{"metadata": "x"}], "Service": [{"metadata": {"name": "hello"}, "spec": {"ports": "x"}}],
                     "ReplicaSet": [{"metadata": None}]})
    for obj in JUNK:
        try:
            CALLS[call](view, obj)
        except CheckFailed as e:
            assert e.message.ja and e.message.en
        except NotApplicable:
            pass


# --- what the embedded API server does with the objects these checks read ----------------------
def test_embedded_api_treats_secrets_and_sizes_like_a_real_server(api, fresh_ns):
    """stringData is folded into base64 data and not stored, type defaults to Opaque; plain text
    under data and sizes such as "1GB" are refused (400), as a real API server does."""
    from grader.errors import ApiError

    api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"PASSWORD": SENTINEL},
                "data": {"USER": base64.b64encode(b"admin").decode()}}, fresh_ns)
    stored = api.get("Secret", "s", fresh_ns)
    assert stored["type"] == "Opaque" and "stringData" not in stored
    assert stored["data"] == {"USER": "YWRtaW4=", "PASSWORD": B64_SENTINEL}
    with pytest.raises(ApiError) as plain:
        api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "p"}, "data": {"PASSWORD": "not base64!"}}, fresh_ns)
    assert plain.value.status == 400
    with pytest.raises(ApiError) as size:
        api.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1GB"}}}}, fresh_ns)
    assert size.value.status == 400


# --- readiness, terminating pods, routers (shapes from tests/fixtures/real) --------------------
def _pod(ready: str = "True", deleting: bool = False, gates: tuple[str, ...] = ()) -> dict:
    meta: dict = {"name": "p", "labels": {"app": "hello"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-14T09:20:31Z"
    conds = [{"type": "Ready", "status": ready}, {"type": "ContainersReady", "status": "True"}]
    conds += [{"type": g, "status": "False"} for g in gates]
    return {"metadata": meta, "spec": {"containers": [{"name": "c"}], "readinessGates": [{"conditionType": g} for g in gates]},
            "status": {"phase": "Running", "conditions": conds, "containerStatuses": [{"name": "c", "ready": True}]}}


def test_ready_is_the_ready_condition_and_terminating_pods_are_not_running_pods():
    assert C.pod_ready(_pod()) and not C.pod_ready(_pod("False"))
    assert "readiness gate “x.example.com/lb” is False" in C.pod_problem(_pod("False", gates=("x.example.com/lb",))).en
    assert "being deleted" in C.pod_problem(_pod(deleting=True)).en
    svc = {"metadata": {"name": "hello"}, "spec": {"selector": {"app": "hello"}}}
    view = FakeView({"Pod": [_pod(deleting=True)]})
    assert "1 of them being deleted" in failure(lambda: C.expect_selects_running_pod(view, svc)).message.en


def test_route_admitted_by_any_router():
    ok = {"ingress": [{"routerName": "default", "conditions": [{"type": "Admitted", "status": "True"}]},
                      {"routerName": "internal", "conditions": [{"type": "Admitted", "status": "False",
                                                                 "reason": "HostAlreadyClaimed", "message": "m"}]}]}
    assert C.route_admission({"status": ok}) == (True, [("internal", "HostAlreadyClaimed", "m")])
    C.expect_admitted(FakeView(), {"kind": "Route", "metadata": {"name": "r"}, "status": ok})
