"""HTTP probes: the few checks that need the network go through here.

The probe holds the safety rules, because the hosts it is asked to fetch come from students'
objects: a route host is requested only if it lies under one of the cluster's route domains, or
through ``--router`` (which only sends the Host header to a known router). No redirects are
followed, answers are cut at 1 MiB, and every request times out after 5 s. Answers are cached
for one observation, so a batch makes one request per target, not one per check.
"""
from __future__ import annotations

import ipaddress
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from .errors import CheckFailed, GraderError
from .i18n import t
from .kube import Api, HttpAnswer

MAX_BODY = 1 << 20
TIMEOUT = 5.0
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class Deferred(BaseException):
    """Raised in a check whose probe answer is not fetched yet (batch first pass only).

    A BaseException, so that a check's own ``except Exception`` cannot swallow it.
    """


class Probe:
    def __init__(self, api: Api, *, router: str | None = None, route_domains: Iterable[str] = (),
                 timeout: float = TIMEOUT, max_body: int = MAX_BODY, workers: int = 16) -> None:
        self.api = api
        self.router = router
        self.route_domains = tuple(d.strip(".").lower() for d in route_domains if d)
        self.timeout = timeout
        self.max_body = max_body
        self.workers = workers
        self._cache: dict[tuple[str, ...], HttpAnswer | Exception] = {}
        self._lock = threading.Lock()
        self._session = None
        self.defer = False
        self._deferred: dict[tuple[str, ...], Callable[[], HttpAnswer]] = {}

    def reset(self) -> None:
        with self._lock:
            self._cache.clear()

    def _cached(self, key: tuple[str, ...], fetch: Callable[[], HttpAnswer]) -> HttpAnswer:
        with self._lock:
            if key in self._cache:
                got = self._cache[key]
                if isinstance(got, Exception):
                    raise got
                return got
            if self.defer:
                self._deferred[key] = fetch
                raise Deferred()
        answer = fetch()
        with self._lock:
            self._cache[key] = answer
        return answer

    def run_deferred(self) -> None:
        """Fetch every deferred answer concurrently (bounded pool) into the cache."""
        with self._lock:
            pending, self._deferred = self._deferred, {}

        def fetch(item: tuple[tuple[str, ...], Callable[[], HttpAnswer]]) -> None:
            key, call = item
            try:
                answer: HttpAnswer | Exception = call()
            except GraderError as e:  # raised again in the check that needs it
                answer = e
            with self._lock:
                self._cache[key] = answer

        if len(pending) <= 1:
            for item in pending.items():
                fetch(item)
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(pending))) as pool:
            list(pool.map(fetch, pending.items()))

    # --- service proxy ---------------------------------------------------------------------
    def service(self, namespace: str, service: str, port: int | str, path: str = "/") -> HttpAnswer:
        return self._cached(("svc", namespace, service, str(port), path),
                            lambda: self.api.service_proxy(namespace, service, port, path, self.max_body))

    # --- routes and ingresses --------------------------------------------------------------
    def host_problem(self, host: str) -> str | None:
        """Why a student's host must not be requested (English; None when it is safe)."""
        h = host.strip().lower().rstrip(".")
        if not h or not _HOSTNAME.match(h):
            return "it is not a valid DNS host name"
        try:
            ipaddress.ip_address(h)
            return "it is an IP address, not a host under the route domain"
        except ValueError:
            pass
        if h == "localhost" or h.endswith(".localhost"):
            return "it is localhost"
        if self.router:
            return None
        if not self.route_domains:
            return "the route domain is unknown (pass --route-domain or --router)"
        if not any(h.endswith("." + d) for d in self.route_domains):
            return f"it is not under the route domain ({', '.join(self.route_domains)})"
        return None

    def url(self, host: str, path: str = "/") -> HttpAnswer:
        problem = self.host_problem(host)
        if problem:
            raise CheckFailed(t("ホスト {h} には接続しません: {why}", "the grader will not request host {h}: {why}",
                                h=host, why=problem))
        return self._cached(("url", host.lower(), path), lambda: self._get(host, path))

    def _get(self, host: str, path: str) -> HttpAnswer:
        import requests

        if self._session is None:
            with self._lock:
                if self._session is None:
                    s = requests.Session()
                    s.trust_env = False  # never through a proxy from the environment
                    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=self.workers)
                    s.mount("http://", adapter)
                    self._session = s
        target = self.router or host
        try:
            with self._session.get(f"http://{target}{path}", headers={"Host": host}, timeout=self.timeout,
                                   allow_redirects=False, stream=True) as resp:
                body = b""
                for chunk in resp.iter_content(65536):
                    body += chunk
                    if len(body) >= self.max_body:
                        body = body[:self.max_body]
                        break
                return HttpAnswer(resp.status_code, body, headers=dict(resp.headers))
        except requests.RequestException as e:
            return HttpAnswer(0, b"", error=f"{type(e).__name__}: {str(e)[:160]}")
