"""An in-process Kubernetes API server on loopback, spoken to over real HTTP.

The grader, the tests, the demo and ``grade sandbox`` all talk to a cluster through the real
``kubernetes`` client or ``kubectl``; this server lets them do so without a cluster, so every path
they exercise is the production path.  It is written on ``http.server`` rather than kmock because
kmock has no label selectors, pagination or Status bodies shaped like the real server's.

``/openapi/v3`` says the server does field validation itself, so ``kubectl create -f`` and
``kubectl apply -f`` work with their default flags, and carries schemas for ``kubectl explain``
(``openapi``); ``/openapi/v2`` in JSON (protobuf: no definitions). Aggregated discovery is not
served; kubectl falls back to the legacy ``/api`` + ``/apis`` documents. kubectl sends credentials only over TLS,
so the port speaks both plain HTTP and TLS (``apiport.DualServer``).

Module layout: ``apitypes`` (resource table, Status errors, selectors, patches), ``apistore``
(the objects, graceful deletion, finalizers), ``apidocs`` (discovery, OpenAPI), ``tables``,
``subresources`` (scale, log, exec), ``apiport`` (plain+TLS port, fault injection, request
records), ``apiwatch`` (watch streams), and this module (HTTP, auth, the request log).

The behaviour of the cluster (scheduling, replicas, endpoints, binding) lives in
``grader.cluster.controllers``; this module only stores, validates, authorizes and serves.
"""
import base64
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from .apidocs import (RawDoc, api_versions_doc, group_doc, group_list_doc, openapi_doc, resource_list_doc,
                      table_doc, version_doc)
from .apiport import DualServer, Faults, RequestAttributes, RequestRecord, end_with, server_tls
from .apirequests import delete_options, forbidden, not_found_path, parse, parse_protobuf, strict_fields
from .apistore import Admission, Store
from .apiwatch import WatchHub, serve_watch
from . import subresources
from .apitypes import (RESOURCES, ApiStatus, ResourceType, find_resource, known_kinds, match_fields,
                       parse_label_selector, resources_for, status_body)


__all__ = [
    "ApiServer", "ApiStatus", "Faults", "RequestAttributes", "RequestRecord", "ResourceType",
    "Store", "known_kinds", "find_resource", "RESOURCES",
]

Authorizer = Callable[["RequestAttributes"], bool]
ProxyHandler = Callable[[str, str, str, str, str], "tuple[int, dict[str, str], bytes]"]
"""Proxy backend ``(plural, namespace, name, port, path) -> (status, headers, body)``."""


_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_REASONS = {500: "InternalError", 502: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout", 429: "TooManyRequests", 409: "Conflict"}


@dataclass
class _Route:
    """A parsed API path."""

    rt: ResourceType | None
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    rest: str = ""          # for proxy: the path after .../proxy
    discovery: Any = None   # a ready discovery document instead of a resource


class ApiServer:
    """Store + HTTP front end.  ``start()`` binds a loopback port; ``url`` is where to connect."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, route_api: bool = True,
                 auth: bool = True, admin_token: str | None = None) -> None:
        self.route_api = route_api
        self.resources = resources_for(route_api)
        self.store = Store(self.resources)
        self.auth = auth
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.watch = WatchHub(self.store)   # ?watch=true streams (apiwatch)
        self.faults = Faults(_watches=self.watch)
        self.admission: list[Admission] = []
        self.proxy_handler: ProxyHandler | None = None
        self._users: dict[str, tuple[str, Authorizer | None]] = {
            self.admin_token: ("system:admin", None)}
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.started = datetime.now(timezone.utc)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "ApiServer":
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = DualServer((self._host, self._port), Handler)
        self.ca_pem: str | None
        self._httpd.tls, self.ca_pem = server_tls()
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="apiserver",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.watch.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        """Plain HTTP address (the same port also speaks TLS, see ``https_url``)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def https_url(self) -> str | None:
        """TLS address, trusted through ``ca_pem``; None when openssl was not available."""
        return self.url.replace("http://", "https://") if self.ca_pem else None

    # --- users and log ------------------------------------------------------------------------
    def add_user(self, token: str, username: str, authorize: Authorizer | None = None) -> None:
        """Register a bearer token; ``authorize=None`` allows everything."""
        self._users[token] = (username, authorize)

    def remove_user(self, token: str) -> None:
        self._users.pop(token, None)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def reset_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _record(self, rec: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(rec)

    # --- write path shared by HTTP and in-process callers -------------------------------------
    def admit(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        for hook in self.admission:
            hook(rt, obj, old)


# ---------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 keep-alive connection to the API."""

    api: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "grader-embedded-apiserver"
    # Headers and body leave in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (~40 ms per request on Linux). kube-apiserver (Go) sets
    # TCP_NODELAY too.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def do_GET(self) -> None: self._serve()
    def do_HEAD(self) -> None: self._serve()
    def do_POST(self) -> None: self._serve()
    def do_PUT(self) -> None: self._serve()
    def do_PATCH(self) -> None: self._serve()
    def do_DELETE(self) -> None: self._serve()

    # --- plumbing -----------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            if k.lower() not in ("content-length", "content-type", "connection"):
                self.send_header(k, v)
        # Recorded before the client can read the answer: a test that acts on an answer and then
        # looks at the request log must find this request in it, never after a reset of the log.
        self._record_once(code)
        end_with(self, body if self.command != "HEAD" else b"")
        self._status = code

    def _record_once(self, status: int) -> None:
        record, self._unrecorded = getattr(self, "_unrecorded", None), None
        if record is not None:
            record(status)

    def _send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _serve(self) -> None:
        api = self.api
        self._status = 0
        split = urlsplit(self.path)
        path, query = split.path, split.query
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        body = self._body()
        user, verb, route = "", _VERBS.get(self.command, "get"), _Route(None)

        def record(status: int) -> None:   # sees user, verb and route as they are when it is called
            rt = route.rt
            api._record(RequestRecord(self.command, path, query, user, verb,
                                      rt.plural if rt else "", route.namespace, status))
        self._unrecorded: Callable[[int], None] | None = record
        try:
            delay, fail, reset = api.faults._decide(self.command, path)
            if delay:
                time.sleep(delay)
            if reset:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._status = 0
                return
            if fail is not None:
                try:   # for the request log only
                    route = self._route(path)
                    verb = self._verb(route, params) if route.rt else verb
                    user = self._authenticate()[0]
                except ApiStatus:
                    pass
                hdrs = {}
                if api.faults.retry_after is not None and fail in (429, 503):
                    hdrs["Retry-After"] = str(api.faults.retry_after)
                raise ApiStatus(fail, _REASONS.get(fail, "InternalError"),
                                "injected fault" if fail != 429 else "too many requests, please try again later",
                                headers=hdrs)
            user, authz = self._authenticate()
            route = self._route(path)
            if route.discovery is not None:
                self._send(200, *route.discovery) if isinstance(route.discovery, RawDoc) else self._send_json(200, route.discovery)
                return
            assert route.rt is not None
            verb = self._verb(route, params)
            if authz is not None:
                attrs = RequestAttributes(user, verb, route.rt.group, route.rt.plural,
                                          route.subresource, route.namespace, route.name)
                if not authz(attrs):
                    raise forbidden(attrs)
            self._dispatch(route, verb, params, body)
        except ApiStatus as exc:
            self._send_json(exc.code, exc.body(), headers=exc.headers)
        except Exception as exc:  # a bug here must still answer like a server would
            rt = route.rt
            if rt is not None and self.command in ("POST", "PUT", "PATCH") and \
                    isinstance(exc, (TypeError, AttributeError, KeyError, ValueError)):
                # A body of the wrong shape (metadata.name a list, spec a string) is refused by a
                # real server's decoder before anything else looks at it: 400, not 500.
                self._send_json(400, status_body(400, "BadRequest", f'{rt.kind} in version "{rt.version}" '
                                                 f"cannot be handled as a {rt.kind}: a field has the wrong type ({exc})"))
            else:
                self._send_json(500, status_body(500, "InternalError", f"internal error: {exc!r}"))
        finally:
            self._record_once(self._status)   # no answer sent (a reset): recorded now

    def _authenticate(self) -> tuple[str, Authorizer | None]:
        api = self.api
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token in api._users:
            return api._users[token]
        if not api.auth:
            return "system:anonymous", None
        raise ApiStatus(401, "Unauthorized", "Unauthorized")

    def _verb(self, route: _Route, params: dict[str, str]) -> str:
        if self.command in ("GET", "HEAD"):
            if params.get("watch") in ("true", "1"):
                return "watch"
            return "get" if route.name else "list"
        if self.command == "DELETE" and not route.name:
            return "deletecollection"
        return _VERBS.get(self.command, "get")

    # --- routing ------------------------------------------------------------------------------
    def _route(self, path: str) -> _Route:
        api = self.api
        segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        if not segs:
            return _Route(None, discovery={"paths": ["/api", "/api/v1", "/apis", "/version"]})
        if segs == ["version"]:
            return _Route(None, discovery=version_doc())
        if segs[0] == "openapi" and len(segs) >= 2 and segs[1] in ("v2", "v3"):   # apidocs.openapi_doc
            doc = openapi_doc(api.resources, segs[1], "/".join(segs[2:]), self.headers.get("Accept", ""))
            if doc is None:
                raise not_found_path(path)
            return _Route(None, discovery=doc)
        if segs[0] in ("healthz", "readyz", "livez"):
            return _Route(None, discovery="ok")
        if segs[0] == "api":
            if len(segs) == 1:
                return _Route(None, discovery=api_versions_doc())
            if segs[1] != "v1":
                raise not_found_path(path)
            group, version, rest = "", "v1", segs[2:]
        elif segs[0] == "apis":
            if len(segs) == 1:
                return _Route(None, discovery=group_list_doc(api.resources))
            if len(segs) == 2:
                doc = group_doc(api.resources, segs[1])
                if doc is None:
                    raise not_found_path(path)
                return _Route(None, discovery=doc)
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise not_found_path(path)
        if not rest:
            doc = resource_list_doc(api.resources, group, version)
            if doc is None:
                raise not_found_path(path)
            return _Route(None, discovery=doc)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        rt = find_resource(api.resources, group, version, rest[0])
        if rt is None:
            raise not_found_path(path)
        if namespace and not rt.namespaced:
            raise not_found_path(path)
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        route = _Route(rt, namespace, name, sub)
        if sub == "proxy":
            m = re.match(r"^.*?/(?:services|pods)/[^/]+/proxy(.*)$", path)
            route.rest = (m.group(1) if m else "") or "/"
        elif len(rest) > 3 or sub not in ("", "status", *subresources.NAMES):
            raise not_found_path(path)
        return route

    # --- verbs --------------------------------------------------------------------------------
    def _dispatch(self, route: _Route, verb: str, params: dict[str, str], body: bytes) -> None:
        api, rt, store = self.api, route.rt, self.api.store
        assert rt is not None
        if route.subresource == "proxy":
            self._proxy(route)
            return
        if route.subresource in subresources.NAMES:   # scale, log, exec: subresources.py
            subresources.handle(self, api, route, verb, params, body)
            return
        if verb == "watch":
            serve_watch(self, api.watch, rt, route.namespace, route.name, params, self._list_query(params)[0])
            return
        accept = self.headers.get("Accept", "")
        if verb == "list" and "as=Table" not in accept:
            self._send(200, self._list_json(rt, route.namespace, params))
            return
        if verb == "list":
            items, meta = self._list(rt, route.namespace, params)
            if "as=Table" in accept:
                self._send_json(200, table_doc(rt, items, meta, params.get("includeObject", "")))
            else:
                self._send_json(200, {"kind": rt.kind + "List", "apiVersion": rt.api_version,
                                      "metadata": meta, "items": items})
            return
        if verb == "get":
            obj = store.get(rt, route.namespace, route.name, raise_missing=True)
            if "as=Table" in accept:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                self._send_json(200, table_doc(rt, [obj], meta, params.get("includeObject", "")))
            else:
                self._send_json(200, obj)
            return
        dry = "dryRun" in params
        protobuf = (self.headers.get("Content-Type") or "").startswith("application/vnd.kubernetes.protobuf")
        if verb == "create":
            obj = parse_protobuf(body) if protobuf else strict_fields(rt, parse(body), params)   # fieldcheck.py
            if route.name:
                raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            code, out = 201, store.create(rt, route.namespace, obj, admit=api.admit, dry_run=dry)
            self._send_json(code, out)
        elif verb == "update":
            obj = parse_protobuf(body) if protobuf else strict_fields(rt, parse(body), params)   # fieldcheck.py
            out = store.replace(rt, route.namespace, route.name, obj, admit=api.admit,
                                subresource=route.subresource, dry_run=dry)
            self._send_json(200, out)
        elif verb == "patch":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            out = store.patch(rt, route.namespace, route.name, ctype, body, admit=api.admit,
                              subresource=route.subresource, dry_run=dry)
            self._send_json(200, out)
        elif verb == "delete":
            grace, uid = delete_options(body, params)
            # a pod answers with itself: Terminating (deletionTimestamp set) or as it was last
            out = store.delete(rt, route.namespace, route.name, dry_run=dry, grace=grace, uid=uid)
            if rt.plural == "pods" or out["metadata"].get("finalizers"):   # still there: itself
                self._send_json(200, out)
            else:
                self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Success", "details": {
                                          "name": route.name, "group": rt.group, "kind": rt.plural,
                                          "uid": out["metadata"].get("uid", "")}})
        elif verb == "deletecollection":
            grace, _ = delete_options(body, params)
            items, _ = self._list(rt, route.namespace, {k: v for k, v in params.items() if k not in ("limit", "continue")})
            for o in items:
                store.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], missing_ok=True,
                             grace=grace, dry_run=dry)
            self._send_json(200, {"kind": rt.kind + "List", "apiVersion": rt.api_version,
                                  "metadata": {}, "items": items})
        else:
            raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list_json(self, rt: ResourceType, namespace: str, params: dict[str, str]) -> bytes:
        """A plain JSON list (what clients page through), the same answer as ``_list`` gives,
        with only the page's objects encoded and nothing copied."""
        keep, start, limit = self._list_query(params)
        items, rv, last, remaining = self.api.store.list_page(rt, namespace or None, keep, start, limit)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if last is not None:
            token = json.dumps({"ns": last[0], "name": last[1], "rv": rv})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            meta["remainingItemCount"] = remaining
        head = json.dumps({"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta},
                          separators=(",", ":"))
        return (head[:-1] + ',"items":[' + ",".join(items) + "]}").encode()

    def _list_query(self, params: dict[str, str]) -> tuple[Callable[[dict], bool], tuple[str, str] | None, int]:
        """(object filter, continue-after key, limit) of a list request; 400 on a bad one."""
        try:
            labels = parse_label_selector(params.get("labelSelector", ""))
        except ValueError as exc:
            raise ApiStatus(400, "BadRequest", f"unable to parse requirement: {exc}") from None
        fields = params.get("fieldSelector", "")
        try:
            limit = int(params.get("limit") or 0)
        except ValueError:
            raise ApiStatus(400, "BadRequest", f"invalid limit {params.get('limit')!r}") from None
        start: tuple[str, str] | None = None
        if params.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(params["continue"].encode()))
                start = (tok["ns"], tok["name"])
            except Exception:
                raise ApiStatus(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from None

        def keep(o: dict) -> bool:
            return labels((o.get("metadata") or {}).get("labels") or {}) and match_fields(o, fields)
        return keep, start, limit

    def _list(self, rt: ResourceType, namespace: str, params: dict[str, str]) -> tuple[list[dict], dict]:
        """Copied objects of a list (for Tables and deletecollection)."""
        keep, start, limit = self._list_query(params)
        items, rv = self.api.store.list(rt, namespace or None)
        items = [o for o in items if keep(o)]
        if start is not None:
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        meta: dict[str, Any] = {"resourceVersion": rv}
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = json.dumps({"ns": last.get("namespace", ""), "name": last["name"], "rv": rv})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return items, meta

    def _proxy(self, route: _Route) -> None:
        rt = route.rt
        assert rt is not None
        if self.command not in ("GET", "HEAD"):
            raise ApiStatus(405, "MethodNotAllowed", "the embedded cluster proxies GET and HEAD only")
        name, _, port = route.name.partition(":")
        handler = self.api.proxy_handler
        if handler is None:
            raise ApiStatus(503, "ServiceUnavailable", "proxy not available")
        if rt.plural not in ("services", "pods"):
            raise not_found_path(self.path)
        status, headers, body = handler(rt.plural, route.namespace, name, port, route.rest)
        self._send(status, body, headers.get("Content-Type", "text/plain"), headers)
