"""An independent API double: serves recorded objects over real HTTP, as a real API server would.

It is deliberately not the embedded cluster (``grader.cluster``): the embedded cluster is our own
model of Kubernetes, and a grader tested only against it is shaped by it. The double knows nothing
of controllers; it serves exactly the objects a test gives it (typically recorded on real clusters,
``tests/fixtures/real/``), answers discovery for the kinds it holds, and lets a test make any path
answer anything (a 403, a 404, a hostile body) so the grader is judged on what a real server sends.

Use::

    with ApiDouble(objects) as double:
        api = Api(kubeconfig=str(double.write_kubeconfig(tmp_path / "kubeconfig", namespace="student")))

``double.deny("endpoints", 403)`` makes every list of a plural answer a Status 403;
``double.unserve("endpoints")`` drops it from discovery and answers 404, as a server that does not
serve it; ``double.route(prefix, handler)`` hands matching requests to ``handler(request_handler)``.
"""
from __future__ import annotations

import copy
import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

import yaml

Handler = Callable[[BaseHTTPRequestHandler], None]

# kind → (group, version, plural, namespaced): the kinds recorded fixtures use.
KINDS: dict[str, tuple[str, str, str, bool]] = {
    "Namespace": ("", "v1", "namespaces", False),
    "Pod": ("", "v1", "pods", True),
    "Service": ("", "v1", "services", True),
    "Endpoints": ("", "v1", "endpoints", True),
    "ReplicationController": ("", "v1", "replicationcontrollers", True),
    "PersistentVolumeClaim": ("", "v1", "persistentvolumeclaims", True),
    "PersistentVolume": ("", "v1", "persistentvolumes", False),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Secret": ("", "v1", "secrets", True),
    "Node": ("", "v1", "nodes", False),
    "Deployment": ("apps", "v1", "deployments", True),
    "ReplicaSet": ("apps", "v1", "replicasets", True),
    "EndpointSlice": ("discovery.k8s.io", "v1", "endpointslices", True),
    "Ingress": ("networking.k8s.io", "v1", "ingresses", True),
    "StorageClass": ("storage.k8s.io", "v1", "storageclasses", False),
    "Route": ("route.openshift.io", "v1", "routes", True),
}


def load_fixture(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """Every object in a YAML file of recorded objects (``List`` documents are flattened)."""
    out: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(pathlib.Path(path).read_text(encoding="utf-8")):
        if not isinstance(doc, dict):
            continue
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            out.extend(i for i in doc["items"] if isinstance(i, dict))
        else:
            out.append(doc)
    return out


def relocated(objects: Iterable[dict[str, Any]], namespace: str, ip: str) -> list[dict[str, Any]]:
    """Copies of one student's recorded objects moved to ``namespace``, their pod at ``ip``: a
    class made of one recording, each student with a namespace and a pod IP of their own."""
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        obj["metadata"]["namespace"] = namespace
        if obj["kind"] == "Pod":
            obj["status"]["podIP"], obj["status"]["podIPs"] = ip, [{"ip": ip}]
        elif obj["kind"] == "EndpointSlice":
            for ep in obj["endpoints"]:
                ep["addresses"], ep["targetRef"]["namespace"] = [ip], namespace
        elif obj["kind"] == "Endpoints":
            for sub in obj["subsets"]:
                for a in sub["addresses"]:
                    a["ip"], a["targetRef"]["namespace"] = ip, namespace
        out.append(obj)
    return out


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class ApiDouble:
    def __init__(self, objects: Iterable[dict[str, Any]] = (), *, token: str = "double-token") -> None:
        self.objects: list[dict[str, Any]] = []
        self.token = token
        self.requests: list[str] = []
        self._denied: dict[str, int] = {}
        self._unserved: set[str] = set()
        self._routes: list[tuple[str, Handler]] = []
        self._server: ThreadingHTTPServer | None = None
        self.add(*objects)

    # --- what it serves ------------------------------------------------------------------------
    def add(self, *objects: dict[str, Any]) -> None:
        for obj in objects:
            if obj.get("kind") not in KINDS:
                raise ValueError(f"the API double does not serve kind {obj.get('kind')!r}")
            self.objects.append(obj)

    def deny(self, plural: str, code: int = 403) -> None:
        """Every request for ``plural`` answers a Status ``code`` (403 Forbidden, 404 NotFound...)."""
        self._denied[plural] = code

    def unserve(self, plural: str) -> None:
        """The server does not serve ``plural``: absent from discovery, 404 on every path."""
        self._unserved.add(plural)

    def route(self, prefix: str, handler: Handler) -> None:
        """Requests whose path starts with ``prefix`` go to ``handler`` (first match wins)."""
        self._routes.append((prefix, handler))

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "ApiDouble":
        double = self

        class _H(_RequestHandler):
            owner = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="api-double", daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the double first (with ApiDouble(...) as double)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def write_kubeconfig(self, path: str | pathlib.Path, *, namespace: str = "default",
                         extension: dict[str, Any] | None = None) -> pathlib.Path:
        path = pathlib.Path(path)
        cluster: dict[str, Any] = {"server": self.url}
        if extension is not None:
            cluster["extensions"] = [{"name": "grader.dev/sandbox", "extension": extension}]
        doc = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "double", "cluster": cluster}],
               "users": [{"name": "student", "user": {"token": self.token}}],
               "contexts": [{"name": "double", "context": {"cluster": "double", "user": "student",
                                                          "namespace": namespace}}],
               "current-context": "double"}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc))
        return path

    # --- answers -------------------------------------------------------------------------------
    def _served(self) -> dict[str, tuple[str, str, str, bool]]:
        """kind → coordinates of every kind served: the core kinds always, other groups when the
        double holds an object of that group (as a cluster without OpenShift has no routes)."""
        groups = {KINDS[o["kind"]][0] for o in self.objects}
        return {k: v for k, v in KINDS.items() if v[2] not in self._unserved and (v[0] == "" or v[0] in groups
                                                                                   or v[0] == "discovery.k8s.io")}

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        served = self._served()
        parts = [p for p in path.split("/") if p]
        if path in ("/api", "/api/"):
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path in ("/apis", "/apis/"):
            groups = sorted({g for g, _, _, _ in served.values() if g})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in groups]}
        if parts[:1] == ["api"]:
            group, rest = "", parts[2:]
            version = parts[1] if len(parts) > 1 else ""
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        kinds = {v[2]: (k, v) for k, v in served.items() if v[0] == group and v[1] == version}
        if not rest:
            if not kinds:
                return 404, status(404, "NotFound", "the server could not find the requested resource")
            return 200, {"kind": "APIResourceList", "apiVersion": "v1",
                         "groupVersion": f"{group}/{version}" if group else version,
                         "resources": [{"name": plural, "kind": k, "namespaced": v[3], "singularName": "",
                                        "verbs": ["get", "list", "watch"]} for plural, (k, v) in kinds.items()]}
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        if plural in self._denied:
            code = self._denied[plural]
            reason = {403: "Forbidden", 404: "NotFound"}.get(code, "InternalError")
            return code, status(code, reason, f'{plural} is {reason.lower()}: User "student" cannot list '
                                              f'resource "{plural}" in API group "{group}"')
        if plural not in kinds or len(rest) > 2:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        kind, (_, _, _, namespaced) = kinds[plural]
        items = [o for o in self.objects if o.get("kind") == kind
                 and (namespace is None or (o.get("metadata") or {}).get("namespace") == namespace)]
        if name is not None:
            for o in items:
                if (o.get("metadata") or {}).get("name") == name:
                    return 200, o
            return 404, status(404, "NotFound", f'{plural} "{name}" not found')
        selector = (query.get("labelSelector") or [""])[0]
        if selector:
            want = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
            items = [o for o in items if all(((o.get("metadata") or {}).get("labels") or {}).get(k) == v
                                             for k, v in want.items())]
        api_version = f"{group}/{version}" if group else version
        return 200, {"kind": f"{kind}List", "apiVersion": api_version,
                     "metadata": {"resourceVersion": "1"},
                     "items": [{"apiVersion": api_version, "kind": kind, **o} for o in items]}


class _RequestHandler(BaseHTTPRequestHandler):
    owner: ApiDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.owner.requests.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {self.owner.token}":
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        for prefix, handler in self.owner._routes:
            if url.path.startswith(prefix):
                return handler(self)
        code, body = self.owner.answer(url.path, parse_qs(url.query))
        self.send_json(code, body)

    def send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
