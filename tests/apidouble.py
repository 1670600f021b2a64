"""An independent API double: serves recorded objects over real HTTP, as a real API server would.

It is deliberately not the embedded cluster (``grader.cluster``): the embedded cluster is our own
model of Kubernetes, and a grader tested only against it is shaped by it. The double knows nothing
of controllers; it serves exactly the objects a test gives it (typically recorded on real clusters,
``tests/fixtures/real/``), answers discovery for the kinds it holds, and lets a test make any path
answer anything (a 403, a 404, a hostile body) so the grader is judged on what a real server sends.

Use::

    with ApiDouble(objects) as double:
        api = Api(kubeconfig=str(double.write_kubeconfig(tmp_path / "kubeconfig", namespace="student")))

Watches (``?watch=true``) are served as a real API server serves them: a chunked 200 answer,
one JSON event per line, ``{"type": "ADDED", "object": {...}}`` (shapes from
https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
``double.change(type, obj)`` records a change (and streams it to open watches); lists carry the
double's resourceVersion; ``double.expire()`` compacts history, sending every open watch the
``ERROR`` event of a 410 Status ("too old resource version", reason ``Expired``) and answering
later watches from an older version the same; ``double.drop()`` cuts every open watch mid-line.

``double.deny("endpoints", 403)`` makes every list of a plural answer a Status 403;
``double.unserve("endpoints")`` drops it from discovery and answers 404, as a server that does not
serve it; ``double.route(prefix, handler)`` hands matching requests to ``handler(request_handler)``.
"""
from __future__ import annotations

import copy
import json
import pathlib
import sys
import threading
import time
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
        self.version = 1
        self.compacted = 0
        self.history: list[tuple[int, str, dict[str, Any]]] = []   # (version, type, object)
        self.watches_started = 0
        self._cond = threading.Condition()
        self._epoch = 0          # bumped by drop(): open watches cut themselves
        self._expiries = 0       # bumped by expire(): open watches end with a 410
        self.add(*objects)

    # --- what it serves ------------------------------------------------------------------------
    def add(self, *objects: dict[str, Any]) -> None:
        for obj in objects:
            if obj.get("kind") not in KINDS:
                raise ValueError(f"the API double does not serve kind {obj.get('kind')!r}")
            self.objects.append(obj)

    def change(self, kind_event: str, obj: dict[str, Any]) -> None:
        """ADDED/MODIFIED/DELETED ``obj`` (matched by kind, namespace, name), at a new version."""
        with self._cond:
            self.version += 1
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
            meta = obj["metadata"]
            key = (obj.get("kind"), meta.get("namespace"), meta.get("name"))
            self.objects = [o for o in self.objects if (o.get("kind"), (o.get("metadata") or {}).get("namespace"),
                                                        (o.get("metadata") or {}).get("name")) != key]
            if kind_event != "DELETED":
                self.objects.append(obj)
            self.history.append((self.version, kind_event, obj))
            self._cond.notify_all()

    def expire(self) -> None:
        """Compact: every version so far is too old to watch from (410), open watches included."""
        with self._cond:
            self.compacted = self.version
            self._expiries += 1
            self._cond.notify_all()

    def drop(self) -> None:
        """Cut every open watch in the middle of a line, without ending the chunked answer."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    def serve_watch(self, h: "BaseHTTPRequestHandler", kind: str, namespace: str | None,
                    query: dict[str, list[str]]) -> None:
        since = int((query.get("resourceVersion") or ["0"])[0] or 0)
        end = time.monotonic() + float((query.get("timeoutSeconds") or ["300"])[0])
        with self._cond:
            self.watches_started += 1
            epoch, expiries = self._epoch, self._expiries
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(data: bytes) -> None:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()
        try:
            while True:
                with self._cond:
                    if since < self.compacted or self._expiries != expiries:
                        gone = status(410, "Expired", f"too old resource version: {since} ({self.compacted})")
                        chunk(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                        break
                    if self._epoch != epoch:
                        data = b'{"type":"MODIFIED","object":{"kind":'
                        h.wfile.write(b"%x\r\n%s" % (len(data) + 10, data))
                        h.wfile.flush()
                        h.close_connection = True
                        return
                    events = [(v, t, o) for v, t, o in self.history if v > since and o.get("kind") == kind
                              and (namespace is None or (o.get("metadata") or {}).get("namespace") == namespace)]
                    if not events:
                        left = end - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(min(left, 0.5))
                        continue
                for v, t, o in events:
                    chunk(json.dumps({"type": t, "object": o}).encode() + b"\n")
                    since = v
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            h.close_connection = True

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
        server = self._server

        def quiet(request: Any, address: Any) -> None:   # a client that hung up on a watch: not news
            if not isinstance(sys.exc_info()[1], OSError):
                ThreadingHTTPServer.handle_error(server, request, address)
        self._server.handle_error = quiet  # type: ignore[method-assign]
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
        if (query.get("watch") or [""])[0] in ("true", "1"):
            return -1, (kind, namespace)
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
                     "metadata": {"resourceVersion": str(self.version)},
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
        query = parse_qs(url.query)
        code, body = self.owner.answer(url.path, query)
        if code == -1:
            return self.owner.serve_watch(self, *body, query)
        self.send_json(code, body)

    def send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
