"""The only module that talks to the ``kubernetes`` client.

It loads kubeconfig or in-cluster config, reads lists as raw JSON (no model deserialisation: it
costs more than the grading), pages with ``limit``/``continue``, retries transient faults with
capped exponential backoff and jitter (honouring ``Retry-After``), and turns ``ApiException`` and
connection errors into the project's errors using the Status body's ``message``:

* 401, unreachable, TLS, missing kubeconfig  → ``ClusterUnavailable`` (the run stops, exit 3)
* 403, or a kind the server does not serve   → ``CannotSee`` (that check is an *error*)
* other statuses after retries                → ``ApiError``

Through the service proxy a pod may answer anything, Status bodies included: ``Api.fetch`` reads
such answers within hard bounds and ``grader.proxy`` decides whose answer it is.
"""
from __future__ import annotations

import json
import os
import random
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .errors import ApiError, CannotSee, ClusterUnavailable, GraderError, Unauthorized
from .i18n import Raw, Text, t
from .sanitize import clean, remember_client
from .wire import TRANSIENT as _TRANSIENT, HttpAnswer, Unreachable  # noqa: F401 (HttpAnswer: re-exported)
from .wire import retry_after as _retry_after, status_doc as _status_doc, status_message

# Where a pod's service account token, CA and namespace are mounted (in-cluster config).
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The least time left in the retry deadline worth one more attempt.
_LAST_TRY = 0.05
# The kubeconfig extension where the embedded cluster names its router and route domain; the
# cluster writes it under the same name (``grader.cluster.SANDBOX_EXTENSION``), a shared wire format.
SANDBOX_EXTENSION = "grader.dev/sandbox"


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


@dataclass
class RetryPolicy:
    """How hard one logical request tries before its failure is reported.

    The numbers serve two promises at once: a flaky API server (a third of requests failing at
    random) must not change a grade, so up to 12 attempts with capped "full jitter" backoff; and
    an unusable cluster must be reported within 15 s of starting ``grade``, so every attempt's
    timeouts are clipped to what is left of a 9 s deadline (one black-holed attempt cannot
    overrun it), and a refused connection — a closed port, which a retry rarely fixes — gets only
    3 quick attempts.
    """

    attempts: int = 12
    base: float = 0.1
    cap: float = 2.0
    deadline: float = 9.0           # seconds for one logical request, retries included
    connect_timeout: float = 3.0
    read_timeout: float = 8.0
    refused_attempts: int = 3
    # The time backoff is measured and spent in: a test gives a fake clock whose sleep only moves
    # it forward, so retry and deadline logic are checked exactly, without waiting.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: at least the server's Retry-After, else full jitter."""
        if retry_after is not None:
            return max(0.0, retry_after) + random.uniform(0, self.base)
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))


class Api:
    """A read-mostly view of one cluster through the official client."""

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None,
                 retry: RetryPolicy | None = None, timeout: float | None = None,
                 serviceaccount_dir: str = SERVICEACCOUNT_DIR) -> None:
        import yaml
        from kubernetes import client, config  # imported here: ~0.3 s, and only when a cluster is used
        from kubernetes.config.config_exception import ConfigException

        self.retry = retry or RetryPolicy()
        if timeout is not None:
            self.retry.read_timeout = timeout
        self.namespace: str | None = None
        self.extensions: dict[str, Any] = {}
        self.requests_made = 0
        self._lock = threading.Lock()
        self._served: dict[str, bool] = {}
        self._down: ClusterUnavailable | None = None
        cfg = client.Configuration()
        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
        in_cluster = not kubeconfig and not os.path.exists(path) and "KUBERNETES_SERVICE_HOST" in os.environ
        self.source = "in-cluster" if in_cluster else path
        try:
            if in_cluster:
                from kubernetes.config.incluster_config import InClusterConfigLoader
                InClusterConfigLoader(token_filename=os.path.join(serviceaccount_dir, "token"),
                                      cert_filename=os.path.join(serviceaccount_dir, "ca.crt")
                                      ).load_and_set(client_configuration=cfg)
                try:
                    with open(os.path.join(serviceaccount_dir, "namespace")) as f:
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
            raise ClusterUnavailable(t(
                "kubeconfig {p} を使えません: {e}。`oc login` でログインし直すか、--kubeconfig/--context を確認してください。",
                "cannot use kubeconfig {p}: {e}; log in again with `oc login` or check --kubeconfig/--context.",
                p=Raw(path), e=Raw(_short(e)))) from None
        except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError) as e:  # unreadable, not YAML
            raise ClusterUnavailable(t(
                "kubeconfig {p} を読み込めません: {e}。`oc login` で作り直してください。",
                "cannot read kubeconfig {p}: {e}; recreate it with `oc login`.",
                p=Raw(path), e=Raw(_short(e)))) from None
        cfg.retries = False             # retries are ours: one policy, one deadline
        cfg.refresh_api_key_hook = _at_most_every(REFRESH_SECONDS, cfg.refresh_api_key_hook)
        # Live mode's watch streams (one per kind, or per namespace) and the service-proxy probes'
        # control requests (16 at a time) share this pool; a smaller one would open and discard
        # connections (and urllib3 warns on stderr each time). The probes' GETs have their own.
        cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, 32)
        self.server = cfg.host
        self._client = client.ApiClient(cfg)
        self._conns: Any = None         # apiconn.connections(cfg), made at the first probe
        remember_client(cfg)    # its token is redacted from every message the run shows, from now on

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
        if self._conns is not None:
            self._conns.close()

    # --- raw requests ----------------------------------------------------------------------
    def _request(self, method: str, path: str, query: list[tuple[str, Any]] | None = None,
                 body: Any = None, timeout: tuple[float, float] | None = None) -> tuple[int, Any, bytes]:
        """One HTTP exchange through the client (auth, TLS, proxies from kubeconfig);
        (status, headers, body). No HTTP answer at all raises ``Unreachable``."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        with self._lock:
            self.requests_made += 1
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        timeout = timeout or (self.retry.connect_timeout, self.retry.read_timeout)
        try:
            m, url, hdrs, data, _ = self._client.param_serialize(
                method=method, resource_path=path, query_params=query or [], header_params=headers,
                body=body, auth_settings=["BearerToken"])
            resp = self._client.call_api(m, url, header_params=hdrs, body=data, _request_timeout=timeout)
            return resp.status, resp.headers, resp.read() or b""
        except (ApiException, HTTPError, OSError) as e:
            raise self._unreachable(e) from None

    def _unreachable(self, e: BaseException) -> Unreachable:
        """A one-line, actionable message for a request that got no HTTP answer."""
        text = " ".join(f"{getattr(e, 'reason', '')} {e!r}".split())
        tls = re.search(r"certificate verify failed[^'\")(]*", text) or \
            re.search(r"(SSL: [A-Z_]+\][^'\")(]*|wrong version number|hostname mismatch[^'\")(]*)", text)
        if tls or isinstance(e, ssl.SSLError) or "SSLError" in text:
            why = tls.group(0).strip(" ,.") if tls else "TLS handshake failed"
            return Unreachable(t(
                "{srv} の TLS 証明書を検証できません ({e})。kubeconfig の certificate-authority を確認するか、`oc login` でログインし直してください。",
                "TLS verification of {srv} failed ({e}); check certificate-authority in your kubeconfig or log in again with `oc login`.",
                srv=Raw(self.server), e=Raw(_short(why))), "tls")
        if "timed out" in text.lower() or "timeout" in type(e).__name__.lower():
            cause, why_ja, why_en = ("timeout", f"{self.retry.deadline:g} 秒以内に応答がありません",
                                     f"no answer within {self.retry.deadline:g} s")
        elif "refused" in text.lower():
            cause, why_ja, why_en = "refused", "接続を拒否されました", "connection refused"
        elif "Name or service not known" in text or "nodename nor servname" in text or "NameResolution" in text:
            cause, why_ja, why_en = "refused", "ホスト名を解決できません", "the host name does not resolve"
        elif any(w in text for w in ("reset", "aborted", "RemoteDisconnected", "closed connection", "IncompleteRead",
                                     "Broken pipe", "ProtocolError")):
            cause, why_ja, why_en = "reset", "接続が切断されました", "the connection was closed without an answer"
        else:
            cause, why_ja, why_en = "other", _short(text), _short(text)
        return Unreachable(Text(
            f"{self.server} に接続できません ({why_ja})。クラスターが起動しているか、`oc login` のサーバーを確認してください。",
            f"cannot reach {self.server} ({why_en}); check the cluster is up and the server in `oc login`."), cause)

    def _error(self, status: int, headers: Any, body: bytes) -> GraderError:
        """The project's error for a non-2xx answer, from the Status body's message."""
        message = status_message(body, 300) or str(status)
        if status == 401:
            return Unauthorized(t(
                "{srv} が認証を拒否しました (401: {m})。`oc login` でログインし直してください。",
                "{srv} refused the credentials (401: {m}): log in again with `oc login`.",
                srv=Raw(self.server), m=Raw(_short(message))))
        if status in (403, 404):
            return CannotSee(t("読み取れません ({s}: {m})", "cannot read it ({s}: {m})", s=status, m=Raw(_short(message))),
                             status, body=body)
        return ApiError(t("API サーバーが {s} を返しました: {m}", "the API server answered {s}: {m}",
                          s=status, m=Raw(_short(message))), status, body=body)

    def _attempts(self) -> Iterator[tuple[int, tuple[float, float]]]:
        """(attempt number, timeouts) while the retry deadline lasts; raises ``self._down``
        when an earlier logical request already found the cluster unreachable."""
        if self._down is not None:
            raise self._down
        started = self.retry.clock()
        for attempt in range(self.retry.attempts):
            left = self.retry.deadline - (self.retry.clock() - started)
            if left <= _LAST_TRY:
                return
            yield attempt, (min(self.retry.connect_timeout, left), min(self.retry.read_timeout, left))

    def _sleep(self, attempt: int, retry_after: float | None, started: float) -> bool:
        """Back off before the next attempt; False when no attempt would fit after it (never a
        sleep only to give up)."""
        delay = self.retry.delay(attempt + 1, retry_after)
        if self.retry.clock() - started + delay >= self.retry.deadline - _LAST_TRY:
            return False
        self.retry.sleep(delay)
        return True

    def _call(self, path: str, query: list[tuple[str, Any]] | None = None, *,
              raw: bool = False, retry: bool = True,
              accept: Callable[[int, bytes], bool] | None = None) -> Any:
        """GET with retries of transient failures (429, 5xx, resets, timeouts) until the deadline.

        A 401 or a TLS failure is final at once (retrying cannot fix credentials or a CA); a
        refused connection gets ``refused_attempts``. When no attempt got any HTTP answer, the
        cluster is marked unreachable so the rest of the run fails fast instead of waiting out
        the deadline again for every kind.
        """
        started = self.retry.clock()
        failure: GraderError | None = None
        answered = False
        refused = 0
        for attempt, timeout in self._attempts():
            retry_after: float | None = None
            try:
                status, headers, data = self._request("GET", path, query, timeout=timeout)
            except Unreachable as e:
                failure = e
                if e.cause == "tls" or not retry:
                    break
                refused += e.cause == "refused"
                if refused >= self.retry.refused_attempts:
                    break
            else:
                answered = True
                if accept is not None and accept(status, data):   # an answer this caller takes as it is
                    return data
                if 200 <= status < 300:
                    try:
                        return data if raw else json.loads(data)
                    except ValueError:
                        failure = ApiError(t("API サーバーの応答が JSON ではありません",
                                             "the API server's answer is not JSON"), status)
                else:
                    failure = self._error(status, headers, data)
                    if status not in _TRANSIENT or not retry:
                        raise failure
                    retry_after = _retry_after(headers)
            if not self._sleep(attempt, retry_after, started):
                break
        if failure is None:  # the deadline passed before a first attempt (only with tiny deadlines)
            failure = ApiError(t("再試行の期限内に要求を送れませんでした", "no attempt fitted in the retry deadline"))
        if isinstance(failure, Unreachable) and not answered:
            self._down = failure
        raise failure

    # --- reads -----------------------------------------------------------------------------
    # Objects per list request. kubectl asks for 500 (--chunk-size), but a class is read in one
    # pass: 10,000 students' pods in a handful of requests, not a hundred. kube-apiserver honours
    # any limit (it may return fewer, and says so with ``continue``, which is always followed).
    PAGE = 5000

    def list(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
             limit: int = PAGE) -> list[dict[str, Any]]:
        """Every object of a kind (all namespaces when ``namespace`` is None), page by page."""
        return [item for page in self._pages(kind, namespace, label_selector, limit) for item in page]

    def _pages(self, kind: str, namespace: str | None, selector: str | None, limit: int,
               max_pages: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        res, cont, seen = resource(kind), None, {}   # token → page that returned it: tokens must advance
        for page in range(max_pages):
            body = self._call(res.path(namespace), [("limit", limit), *([("labelSelector", selector)] if selector else []),
                                                    *([("continue", cont)] if cont else [])])
            items, meta = (body.get("items"), body.get("metadata")) if isinstance(body, dict) else (None, None)
            yield [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
            cont = meta.get("continue") if isinstance(meta, dict) else None
            if not cont or not isinstance(cont, str):
                return
            if seen.setdefault(cont, page) != page:     # returned by an earlier page already
                raise ApiError(t("API サーバーが {k} の一覧で同じ continue トークンを繰り返しました",
                                 "the API server repeated a continue token while listing {k}", k=Raw(res.plural)))
        raise ApiError(t("{k} の一覧が {n} ページを超えました (API サーバーのページングが終わりません)",
                         "listing {k} passed {n} pages (the API server's paging does not end)", k=Raw(res.plural), n=max_pages))

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
                      max_body: int = 1 << 20, timeout: float = 5.0) -> HttpAnswer:
        """GET through the API server's service proxy; ``grader.proxy`` decides whose answer it is."""
        from .proxy import service_proxy
        return service_proxy(self, namespace, service, port, path, max_body, timeout)

    def fetch(self, path: str, *, deadline: float, max_body: int, seconds: float) -> HttpAnswer:
        """One GET whose answer a student's pod may have written (the service proxy), ended at
        ``deadline`` (``time.monotonic``) however it trickles, the body read raw and capped by
        ``grader.bounded``. No HTTP answer at all (including none by the deadline) raises
        ``Unreachable``.

        It goes over the API server's own connections (``bounded.Connections``, kept after a
        clean answer: a new TLS handshake per probe was most of a probe's CPU), opened as the
        client opens its own (``grader.apiconn``), and carries the client's credentials."""
        from .apiconn import ProxyNotSupported, connections, target
        from .bounded import NoAnswer
        cfg = self._client.configuration
        with self._lock:
            self.requests_made += 1
            if self._conns is None:     # the client's proxy rule (kubernetes/client/rest.py)
                from kubernetes.client.rest import should_bypass_proxies
                bypass = not cfg.proxy or should_bypass_proxies(cfg.host, cfg.no_proxy or "")
                self._conns = connections(cfg, None if bypass else cfg.proxy, self.retry.connect_timeout)
            conns = self._conns
        host, url = target(cfg, path)
        headers = {"Host": host, "User-Agent": self._client.user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
        self._client.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
        try:
            got = conns.get(url, headers, deadline, max_body, seconds)
        except NoAnswer as e:
            if isinstance(e.error, ProxyNotSupported):
                raise ClusterUnavailable(e.error.text) from None
            raise self._unreachable(TimeoutError("timed out") if e.late else e.error) from None
        return HttpAnswer(got.status, got.body.data, error=got.body.error, headers=got.headers, cut=got.body.cut)

# The client's kubeconfig loader installs a hook that runs before every request: it re-checks the
# token's expiry and sets the whole configuration again (host, TLS files, proxies from the
# environment), about 1 ms of CPU a request, the largest single cost of a probe. The loader already
# renews a token 5 minutes before it expires (and the in-cluster loader re-reads the token file
# every minute), so asking every 10 s changes nothing but the cost.
REFRESH_SECONDS = 10.0


def _at_most_every(seconds: float, hook: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    """``hook`` run at most once per ``seconds``. The loader's hook installs itself again each
    time it runs, so the newly installed one is kept as the one to call and the throttle put back."""
    if hook is None:
        return None
    lock = threading.Lock()
    last = [-seconds]
    inner = [hook]

    def throttled(cfg: Any) -> None:
        if time.monotonic() - last[0] < seconds:
            return
        with lock:
            if time.monotonic() - last[0] >= seconds:
                inner[0](cfg)
                if cfg.refresh_api_key_hook is not throttled and cfg.refresh_api_key_hook is not None:
                    inner[0] = cfg.refresh_api_key_hook
                cfg.refresh_api_key_hook = throttled
                last[0] = time.monotonic()
    return throttled


def _short(e: Any) -> str:
    """One clean line of at most 160 characters (``sanitize.clean``): the server chose the text."""
    return clean(e, 160)
