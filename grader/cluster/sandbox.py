"""The embedded cluster as one object: API server, controllers and the HTTP router.

Tests, the demo, ``grade sandbox`` and offline ``--manifests`` grading start one of these and then
talk to it only through a kubeconfig, exactly as they would to a real cluster.  The router plays
the OpenShift ingress router: a second loopback port that picks a Route (or Ingress rule) by the
Host header, so route checks fetch pages over real HTTP.  Its address is recorded in the
kubeconfig as a cluster extension so that a probe can find it without extra flags.
"""
from __future__ import annotations

import base64
import json
import os
import pathlib
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

from .apiport import Faults, end_with
from .apiserver import ApiServer
from .apitypes import known_kinds, status_body
from .controllers import Controllers
from .kubelet import SANDBOX_MAX_GRACE
from .netcontrollers import by_host
from .podlogs import of as pod_logs
from .workloads import Unavailable, endpoint_backend, pod_port, serve, service_backend

__all__ = ["EmbeddedCluster", "RequestRefused", "SANDBOX_EXTENSION"]

# The kubeconfig extension naming the router and route domain. The grader reads it under the same
# name (``grader.kube.SANDBOX_EXTENSION``); the two sides share the name as a wire format, not code,
# as a real cluster and its client do (tests/test_layers.py checks they agree).
SANDBOX_EXTENSION = "grader.dev/sandbox"


class RequestRefused(ValueError):
    """The embedded API server refused a convenience call (``create_namespace``, ``apply``)."""

_NOT_AVAILABLE = b"""<html>
<head><title>Application is not available</title></head>
<body>
<h1>Application is not available</h1>
<p>The application is currently not serving requests at this endpoint. It may not have been started
or is still starting.</p>
</body>
</html>
"""


class EmbeddedCluster:
    """API server + controllers + router on loopback; use as a context manager."""

    def __init__(self, *, pod_start_delay: float = 0.0, nodes: int = 2, route_api: bool = True,
                 route_domain: str = "apps.sandbox.local", host: str = "127.0.0.1",
                 max_grace: float = SANDBOX_MAX_GRACE) -> None:
        """``max_grace``: longest a deleted pod stays Terminating (seconds); a real cluster
        honours the whole terminationGracePeriodSeconds (30 by default)."""
        self.route_domain = route_domain
        self.server = ApiServer(host=host, route_api=route_api)
        self.controllers = Controllers(self.server, pod_start_delay=pod_start_delay, nodes=nodes,
                                       route_domain=route_domain, max_grace=max_grace)
        self.server.proxy_handler = self._proxy
        self._host = host
        self._router: ThreadingHTTPServer | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "EmbeddedCluster":
        self.controllers.start()
        self.server.start()
        cluster = self

        class Handler(_RouterHandler):
            owner = cluster

        self._router = _RouterServer((self._host, 0), Handler)
        threading.Thread(target=self._router.serve_forever, name="router", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._router is not None:
            self._router.shutdown()
            self._router.server_close()
            self._router = None
        self.server.stop()
        self.controllers.stop()

    def __enter__(self) -> "EmbeddedCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def kinds(self) -> frozenset[tuple[str, str]]:
        """The (apiVersion, kind) pairs this cluster serves (no Route without ``route_api``)."""
        return known_kinds(self.server.route_api)

    @property
    def faults(self) -> Faults:
        """Fault settings of the API server (latency, failing the next requests, ...)."""
        return self.server.faults

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.admin_token

    @property
    def router_address(self) -> str:
        assert self._router is not None, "cluster not started"
        host, port = self._router.server_address[:2]
        return f"{host}:{port}"

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until controllers have reacted to every write (and delayed pod starts happened)."""
        self.controllers.settle(timeout)

    # --- client side --------------------------------------------------------------------------
    def write_kubeconfig(self, path: str | pathlib.Path, *, namespace: str = "default",
                         token: str | None = None, context: str = "sandbox") -> pathlib.Path:
        """A plain kubeconfig; the router address rides along as a cluster extension."""
        path = pathlib.Path(path)
        cluster: dict[str, Any] = {"server": self.url}
        if self.server.ca_pem and self.server.https_url:
            # kubectl ignores kubeconfig credentials unless the transport is TLS
            cluster = {"server": self.server.https_url, "certificate-authority-data":
                       base64.b64encode(self.server.ca_pem.encode()).decode()}
        doc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": context, "cluster": {
                **cluster,
                "extensions": [{"name": SANDBOX_EXTENSION, "extension": {
                    "router": self.router_address, "routeDomain": self.route_domain}}]}}],
            "users": [{"name": f"{context}-user", "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-user",
                                                       "namespace": namespace}}],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # whole or not at all, and never readable by others (it holds a token): a kubectl started
        # the moment the file appears must not read half of it
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(yaml.safe_dump(doc, sort_keys=False))
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {"message": str(exc)}

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        """Create a namespace (idempotent; labels are merged in if it exists)."""
        code, body = self._call("POST", "/api/v1/namespaces",
                                {"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name, "labels": labels or {}}})
        if code == 409 and labels:
            code, body = self._call("PATCH", f"/api/v1/namespaces/{name}", {"metadata": {"labels": labels}})
        if code >= 400 and code != 409:
            raise RequestRefused(f"namespace {name}: {body.get('message', code)}")

    def apply(self, docs: list[dict], namespace: str) -> list[dict]:
        """Create each object over HTTP, as ``kubectl create`` would; the API's refusal is a RequestRefused."""
        out = []
        for doc in docs:
            rt = self._resource(doc)
            base = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
            ns = (doc.get("metadata") or {}).get("namespace") or namespace
            path = f"{base}/namespaces/{ns}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
            code, body = self._call("POST", path, doc)
            if code >= 400:
                name = (doc.get("metadata") or {}).get("name", "")
                raise RequestRefused(f"{doc.get('kind')} {name!r}: {body.get('message', f'HTTP {code}')}")
            out.append(body)
        return out

    def _resource(self, doc: dict) -> Any:
        from .apitypes import resource_for_kind
        rt = resource_for_kind(str(doc.get("apiVersion")), str(doc.get("kind")), self.server.resources)
        if rt is None:
            raise RequestRefused(f"no kind {doc.get('kind')!r} in {doc.get('apiVersion')!r} on this cluster")
        return rt

    # --- data plane ---------------------------------------------------------------------------
    def _proxy(self, plural: str, namespace: str, name: str, port: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """Service/pod proxy for the API server: Status bodies on failure, page bytes otherwise."""
        store = self.server.store
        try:
            if plural == "services":
                pod, target = service_backend(store, namespace, name, port)
            else:
                pod = store.get(store.rt("pods"), namespace, name)
                if pod is None:
                    raise Unavailable(404, f'pods "{name}" not found')
                target = pod_port(pod, port) if port else 80
            code, headers, body = serve(store, namespace, pod, target, path)
            pod_logs(self.server).access(pod, target, "10.128.0.1", "GET", path, code, len(body))
            return code, headers, body
        except Unavailable as exc:
            reason = "NotFound" if exc.code == 404 else "ServiceUnavailable"
            return exc.code, {"Content-Type": "application/json"}, json.dumps(status_body(exc.code, reason, exc.message)).encode()
        except ConnectionRefusedError as exc:
            msg = f"error trying to reach service: {exc}"
            return 502, {"Content-Type": "application/json"}, json.dumps(status_body(502, "InternalError", msg)).encode()

    def route_backend(self, host: str, path: str) -> tuple[str, dict, int]:
        """(namespace, pod, port) for a request to the router; Unavailable when nothing serves it."""
        store = self.server.store
        host = host.split(":", 1)[0].lower().rstrip(".")
        best: tuple[int, str, str, Any] | None = None
        rkey = "routes.route.openshift.io"
        if any(r.key == rkey for r in store.resources):
            for route in by_host(store, store.rt("routes", "route.openshift.io"), host):
                spec = route.get("spec") or {}
                ing = ((route.get("status") or {}).get("ingress") or [{}])[0]
                admitted = any(c.get("type") == "Admitted" and c.get("status") == "True" for c in ing.get("conditions") or [])
                prefix = spec.get("path") or "/"
                if admitted and spec.get("host", "").lower() == host and path.startswith(prefix):
                    cand = (len(prefix), route["metadata"]["namespace"], (spec.get("to") or {}).get("name", ""),
                            ("route", (spec.get("port") or {}).get("targetPort")))
                    best = cand if best is None or cand[0] > best[0] else best
        for ingress in by_host(store, store.rt("ingresses", "networking.k8s.io"), host):
            for rule in (ingress.get("spec") or {}).get("rules") or []:
                if (rule.get("host") or "").lower() != host:
                    continue
                for p in (rule.get("http") or {}).get("paths") or []:
                    prefix = p.get("path") or "/"
                    svc = (p.get("backend") or {}).get("service") or {}
                    if path.startswith(prefix) and (best is None or len(prefix) > best[0]):
                        port = svc.get("port") or {}
                        best = (len(prefix), ingress["metadata"]["namespace"], svc.get("name", ""),
                                ("ingress", str(port.get("number") or port.get("name") or "")))
        if best is None:
            raise Unavailable(503, "no route")
        _, ns, svc_name, (how, port) = best
        if how == "ingress":
            pod, target = service_backend(store, ns, svc_name, port)
        elif port is None:
            pod, target = endpoint_backend(store, ns, svc_name, lambda p: True)
        else:
            pod, target = endpoint_backend(store, ns, svc_name, lambda p: p.get("name") == port or p.get("port") == port
                                           or str(p.get("port")) == str(port))
        return ns, pod, target


class _RouterServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256   # a batch probes many routes at once; the default backlog is 5

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a probe's cut at its byte cap, kubectl's Ctrl-C) is
        routine for a server, not a traceback on the student's or the test's console."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _RouterHandler(BaseHTTPRequestHandler):
    """The OpenShift router's data plane: Host header -> Route -> service endpoints -> pod."""

    owner: EmbeddedCluster
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small answers otherwise wait for a delayed ACK (~40 ms)
    server_version = "grader-embedded-router"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path if self.path.startswith("/") else "/" + self.path.split("/", 3)[-1]
        try:
            ns, pod, port = self.owner.route_backend(self.headers.get("Host", ""), path)
            code, headers, body = serve(self.owner.server.store, ns, pod, port, path)
            pod_logs(self.owner.server).access(pod, port, "10.131.0.2", self.command, path, code, len(body),
                                               self.headers.get("User-Agent", "-")[:200])
        except Unavailable:
            code, headers, body = 503, {"Content-Type": "text/html"}, _NOT_AVAILABLE
        except ConnectionRefusedError:
            code, headers, body = 502, {"Content-Type": "text/html"}, b"<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"
        self.send_response(code)
        self.send_header("Content-Type", headers.get("Content-Type", "text/html"))
        self.send_header("Content-Length", str(len(body)))
        end_with(self, body if self.command != "HEAD" else b"")

    do_POST = do_PUT = do_DELETE = do_GET
