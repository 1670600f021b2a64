"""The only module that talks to the ``kubernetes`` client.

It loads kubeconfig or in-cluster config, reads lists as raw JSON (no model deserialisation: it
costs more than the grading), pages with ``limit``/``continue``, retries transient faults with
capped exponential backoff and jitter (honouring ``Retry-After``), and turns ``ApiException`` and
connection errors into the project's errors using the Status body's ``message``:

* 401, unreachable, TLS, missing kubeconfig  → ``ClusterUnavailable`` (the run stops, exit 3)
* 403, or a kind the server does not serve   → ``CannotSee`` (that check is an *error*)
* other statuses after retries                → ``ApiError``
"""
from __future__ import annotations

import json
import os
import random
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import ApiError, CannotSee, ClusterUnavailable, GraderError, Unauthorized
from .i18n import Raw, Text, t

_TRANSIENT = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_path(self) -> str:
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        p = self.api_path
        if namespace and self.namespaced:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        return p + (f"/{name}" if name else "")

    @property
    def short(self) -> str:
        """What you type after ``oc get``."""
        return self.plural if not self.group or self.group.endswith(".k8s.io") or "." not in self.group \
            else f"{self.plural}.{self.group}"


RESOURCES: dict[str, Resource] = {r.kind: r for r in (
    Resource("Namespace", "", "v1", "namespaces", False),
    Resource("Pod", "", "v1", "pods"),
    Resource("Service", "", "v1", "services"),
    Resource("Endpoints", "", "v1", "endpoints"),
    Resource("ReplicationController", "", "v1", "replicationcontrollers"),
    Resource("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims"),
    Resource("PersistentVolume", "", "v1", "persistentvolumes", False),
    Resource("ConfigMap", "", "v1", "configmaps"),
    Resource("Secret", "", "v1", "secrets"),
    Resource("Node", "", "v1", "nodes", False),
    Resource("Deployment", "apps", "v1", "deployments"),
    Resource("ReplicaSet", "apps", "v1", "replicasets"),
    Resource("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices"),
    Resource("Ingress", "networking.k8s.io", "v1", "ingresses"),
    Resource("StorageClass", "storage.k8s.io", "v1", "storageclasses", False),
    Resource("Route", "route.openshift.io", "v1", "routes"),
    Resource("IngressConfig", "config.openshift.io", "v1", "ingresses", False),
)}


def resource(kind: str) -> Resource:
    try:
        return RESOURCES[kind]
    except KeyError:
        raise KeyError(f"grader does not know kind {kind!r}") from None


@dataclass(frozen=True)
class HttpAnswer:
    """What an HTTP probe saw; ``error`` is set when no HTTP answer came at all."""

    status: int
    body: bytes = b""
    error: str | None = None
    headers: dict[str, str] | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class RetryPolicy:
    attempts: int = 6
    base: float = 0.1
    cap: float = 2.0
    deadline: float = 30.0          # seconds for one logical request, retries included

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap * 2)
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))  # "full jitter"


class Api:
    """A read-mostly view of one cluster through the official client."""

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None,
                 retry: RetryPolicy | None = None, timeout: float = 10.0) -> None:
        from kubernetes import client, config  # imported here: ~0.3 s, and only when a cluster is used
        from kubernetes.config.config_exception import ConfigException

        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.namespace: str | None = None
        self.extensions: dict[str, Any] = {}
        self.requests_made = 0
        self._lock = threading.Lock()
        self._served: dict[str, bool] = {}
        cfg = client.Configuration()
        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
        in_cluster = not kubeconfig and not os.path.exists(path) and "KUBERNETES_SERVICE_HOST" in os.environ
        self.source = "in-cluster" if in_cluster else path
        try:
            if in_cluster:
                config.load_incluster_config(client_configuration=cfg)
                try:
                    with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                        self.namespace = f.read().strip() or None
                except OSError:
                    pass
            else:
                if not os.path.exists(path):
                    raise ClusterUnavailable(t(
                        "kubeconfig がありません ({p})。`oc login` でログインするか --kubeconfig を指定してください (クラスターなしで試すには `grade demo`)。",
                        "no kubeconfig at {p}: log in with `oc login` or pass --kubeconfig (to try without a cluster: `grade demo`).",
                        p=Raw(path)))
                config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                        persist_config=False)
                self._read_context(path, context)
        except ConfigException as e:
            raise ClusterUnavailable(t("kubeconfig {p} を使えません: {e}", "cannot use kubeconfig {p}: {e}",
                                       p=Raw(path), e=Raw(str(e)))) from None
        cfg.retries = False
        self.server = cfg.host
        self._client = client.ApiClient(cfg)

    def _read_context(self, path: str, context: str | None) -> None:
        import yaml
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
            name = context or doc.get("current-context")
            ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == name), {})
            self.namespace = ctx.get("namespace") or None
            cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or []
                            if c.get("name") == ctx.get("cluster")), {})
            for ext in cluster.get("extensions") or []:
                if isinstance(ext, dict) and isinstance(ext.get("extension"), dict):
                    self.extensions[str(ext.get("name"))] = ext["extension"]
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # the client already loaded it; the namespace is then simply unknown

    def close(self) -> None:
        self._client.close()

    # --- raw requests ----------------------------------------------------------------------
    def _request(self, method: str, path: str, query: list[tuple[str, Any]] | None = None,
                 body: Any = None) -> tuple[int, Any, bytes]:
        """One HTTP exchange through the client (auth, TLS, proxies from kubeconfig);
        (status, headers, body). Connection-level failures raise ``ClusterUnavailable``."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        with self._lock:
            self.requests_made += 1
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            m, url, hdrs, data, _ = self._client.param_serialize(
                method=method, resource_path=path, query_params=query or [], header_params=headers,
                body=body, auth_settings=["BearerToken"])
            resp = self._client.call_api(m, url, header_params=hdrs, body=data,
                                         _request_timeout=(5, self.timeout))
            return resp.status, resp.headers, resp.read() or b""
        except (ApiException, HTTPError, ssl.SSLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            if "SSL" in str(reason).upper() or "CERTIFICATE" in str(reason).upper():
                raise ClusterUnavailable(t(
                    "{srv} の TLS 証明書を検証できません: {e}。kubeconfig の certificate-authority を確認してください。",
                    "TLS verification of {srv} failed: {e}; check certificate-authority in your kubeconfig.",
                    srv=Raw(self.server), e=Raw(_short(reason)))) from None
            raise ClusterUnavailable(t(
                "{srv} に接続できません: {e}。クラスターが起動しているか、`oc login` のサーバーを確認してください。",
                "cannot reach {srv}: {e}; check the cluster is up and the server in `oc login`.",
                srv=Raw(self.server), e=Raw(_short(reason)))) from None

    def _error(self, status: int, headers: Any, body: bytes) -> GraderError:
        """The project's error for a non-2xx answer, from the Status body's message."""
        message = _status_message(body) or str(status)
        if status == 401:
            return Unauthorized(t(
                "{srv} が認証を拒否しました (401: {m})。`oc login` でログインし直してください。",
                "{srv} refused the credentials (401: {m}): log in again with `oc login`.",
                srv=Raw(self.server), m=Raw(message)))
        if status in (403, 404):
            return CannotSee(t("読み取れません ({s}: {m})", "cannot read it ({s}: {m})", s=status, m=Raw(message)),
                             status, body=body)
        return ApiError(t("API サーバーが {s} を返しました: {m}", "the API server answered {s}: {m}",
                          s=status, m=Raw(message)), status, body=body)

    def _call(self, path: str, query: list[tuple[str, Any]] | None = None, *,
              raw: bool = False, retry: bool = True) -> Any:
        """GET with retries of transient failures (429, 5xx, resets) until the retry deadline."""
        started = time.monotonic()
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                status, headers, data = self._request("GET", path, query)
                if 200 <= status < 300:
                    try:
                        return data if raw else json.loads(data)
                    except ValueError:
                        failure: GraderError = ApiError(t("API サーバーの応答が JSON ではありません",
                                                          "the API server's answer is not JSON"), status)
                else:
                    failure = self._error(status, headers, data)
                    if status not in _TRANSIENT or not retry:
                        raise failure
                    retry_after = _retry_after(headers)
            except Unauthorized:
                raise
            except ClusterUnavailable as e:
                if not retry:
                    raise
                failure = e
            attempt += 1
            delay = self.retry.delay(attempt, retry_after)
            if attempt >= self.retry.attempts or time.monotonic() - started + delay > self.retry.deadline:
                raise failure
            time.sleep(delay)

    # --- reads -----------------------------------------------------------------------------
    def list(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
             limit: int = 500) -> list[dict[str, Any]]:
        """Every object of a kind (all namespaces when ``namespace`` is None), page by page."""
        return [item for page in self._pages(kind, namespace, label_selector, limit) for item in page]

    def _pages(self, kind: str, namespace: str | None, selector: str | None,
               limit: int) -> Iterator[list[dict[str, Any]]]:
        res = resource(kind)
        cont: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", limit)]
            if selector:
                query.append(("labelSelector", selector))
            if cont:
                query.append(("continue", cont))
            body = self._call(res.path(namespace), query)
            items = body.get("items") if isinstance(body, dict) else None
            yield [i for i in items or [] if isinstance(i, dict)]
            cont = (body.get("metadata") or {}).get("continue") if isinstance(body, dict) else None
            if not cont:
                return

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self._call(resource(kind).path(namespace, name))

    # --- writes: only into namespaces the grader creates (demo, selftest, --manifests) -------
    def _write(self, method: str, path: str, body: Any = None) -> Any:
        status, headers, data = self._request(method, path, body=body)
        if not 200 <= status < 300:
            raise self._error(status, headers, data)
        return json.loads(data or b"{}")

    def create(self, obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
        kind = str(obj.get("kind", ""))
        res = RESOURCES.get(kind)
        api_version = f"{res.group}/{res.version}" if res and res.group else (res.version if res else "")
        if res is None or obj.get("apiVersion") != api_version:
            raise ApiError(t("未対応の種類です: {k} ({v})", "unsupported kind {k} ({v})",
                             k=kind, v=str(obj.get("apiVersion"))), 400)
        return self._write("POST", res.path(namespace if res.namespaced else None), obj)

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self._write("POST", "/api/v1/namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}})

    def delete_namespace(self, name: str) -> None:
        try:
            self._write("DELETE", f"/api/v1/namespaces/{name}")
        except ApiError as e:
            if e.status != 404:
                raise

    def served(self, kind: str) -> bool:
        """Whether the server serves a kind, from API discovery (cached)."""
        res = resource(kind)
        if res.api_path not in self._served:
            try:
                body = self._call(res.api_path)
                self._served[res.api_path] = True
                self._served[f"{res.api_path}/{res.plural}"] = any(
                    r.get("name") == res.plural for r in body.get("resources") or [])
            except CannotSee:
                self._served[res.api_path] = False
        return bool(self._served.get(f"{res.api_path}/{res.plural}"))

    def service_proxy(self, namespace: str, service: str, port: int | str, path: str = "/",
                      max_body: int = 1 << 20) -> HttpAnswer:
        """GET through the API server's service proxy.

        Whatever the pod answers (200, 403, 404...) and the proxy's own failures (503 no
        endpoints, 502 connection refused, 404 no such service) are answers about the student's
        work; only a 403 Status from the API server itself means the grader may not look.
        """
        url = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
        status, headers, data = self._request("GET", url)
        if status == 401:
            raise self._error(status, headers, data)
        status_doc = _status_doc(data) if status >= 400 else None
        if status == 403 and status_doc is not None and status_doc.get("reason") == "Forbidden":
            raise self._error(status, headers, data)
        error = str(status_doc.get("message")) if status_doc else None
        return HttpAnswer(status, data[:max_body], error=error, headers=dict(headers or {}))


def _status_doc(body: Any) -> dict[str, Any] | None:
    """The body as a Kubernetes ``Status`` object, if it is one."""
    try:
        doc = json.loads(body)
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("kind") == "Status" else None


def _status_message(body: Any) -> str | None:
    doc = _status_doc(body)
    if doc is not None:
        return str(doc.get("message") or doc.get("reason") or "")
    if not body:
        return None
    return body[:200].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:200]


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _short(e: Any) -> str:
    s = str(e)
    return s if len(s) < 160 else s[:157] + "..."
