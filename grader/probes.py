"""HTTP probes: the few checks that need the network go through here.

The probe holds the safety rules, because the hosts it is asked to fetch come from students'
objects: a route host is requested only if it lies under one of the cluster's route domains, or
through ``--router`` (which only sends the Host header to a known router); never an IP address,
localhost, or a host another namespace's route holds. No redirects are followed; a route page and a
service-proxy answer are bounded alike (``grader.bounded``): ``Accept-Encoding: identity``, at most
1 MiB kept (a gzip/deflate answer is unpacked only up to that), and one 5 s deadline for connect,
headers and body however slowly the page trickles in. Whose answer a service-proxy reply is -- the
student's or the API server's -- is ``grader.proxy``'s question. Answers are cached for one
observation, so a batch makes one request per target, not one per check.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .errors import CheckFailed, ClusterUnavailable, GraderError, InfraError
from .i18n import Raw, Text, t
from .kube import Api
from .wire import HttpAnswer

if TYPE_CHECKING:
    from .snapshot import Snapshot, View

MAX_BODY = 1 << 20
# Bodies kept for one observation of a whole class: past this, answers keep only their first
# CLIPPED bytes, and a check that needed the rest is an error, not a failure.
CACHE_BUDGET = 128 << 20
CLIPPED = 64 << 10
TIMEOUT = 5.0
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class Deferred(BaseException):
    """Raised in a check whose probe answer is not fetched yet (batch first pass only).

    A BaseException, so that a check's own ``except Exception`` cannot swallow it.
    """


class Probe:
    def __init__(self, api: Api, *, router: str | None = None, route_domains: Iterable[str] = (),
                 timeout: float = TIMEOUT, max_body: int = MAX_BODY, workers: int = 16,
                 cache_budget: int = CACHE_BUDGET) -> None:
        self.api = api
        self.router = router
        self.route_domains = tuple(d.strip(".").lower() for d in route_domains if d)
        self.timeout = timeout
        self.max_body = max_body
        self.workers = workers
        self._cache: dict[tuple[str, ...], HttpAnswer | Exception] = {}
        self._lock = threading.Lock()
        self._claims_key: tuple[int, int] | None = None
        self._claims_map: dict[str, list[tuple[str, str, str]]] = {}
        self.defer = False
        self._deferred: dict[tuple[str, ...], Callable[[], HttpAnswer]] = {}
        self.cache_budget = cache_budget
        self._cached_bytes = 0
        self._router: Any = None       # bounded.Connections to --router, made at its first GET

    def reset(self) -> None:
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0

    def _budgeted(self, answer: HttpAnswer) -> HttpAnswer:
        """The answer to cache (under the lock): its body clipped once the budget is spent."""
        if self._cached_bytes + len(answer.body) > self.cache_budget and len(answer.body) > CLIPPED:
            answer = dataclasses.replace(answer, body=answer.body[:CLIPPED], clipped=True)
        self._cached_bytes += len(answer.body)
        return answer

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
            answer = self._cache[key] = self._budgeted(answer)
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
                self._cache[key] = self._budgeted(answer) if isinstance(answer, HttpAnswer) else answer

        if len(pending) <= 1:
            for item in pending.items():
                fetch(item)
            return
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(pending)))
        finished = False
        try:
            list(pool.map(fetch, pending.items()))
            finished = True
        finally:
            # On Ctrl-C or SIGTERM the probes still queued are dropped, not run: a class's batch
            # stops now, and the few in flight end by their own deadline.
            pool.shutdown(wait=finished, cancel_futures=not finished)

    # --- service proxy ---------------------------------------------------------------------
    def service(self, namespace: str, service: str, port: int | str, path: str = "/") -> HttpAnswer:
        return self._cached(("svc", namespace, service, str(port), path),
                            lambda: self.api.service_proxy(namespace, service, port, path, self.max_body,
                                                          self.timeout))

    # --- routes and ingresses --------------------------------------------------------------
    def host_problem(self, host: str) -> str | None:
        """Why a student's host must not be requested (English; None when it is safe)."""
        h = str(host).strip().lower().rstrip(".")
        if not h or not _HOSTNAME.match(h):
            return "it is not a valid DNS host name"
        # only a name whose last label is all digits can be an address here (the pattern above
        # leaves no ':' for IPv6); ``ipaddress`` is pure Python, a visible share of a batch's checks
        if h.rpartition(".")[2].isdigit():
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

    def scoped(self, namespace: str, snapshot: "Snapshot | None" = None) -> "ScopedProbe":
        """This probe as seen by the checks of one namespace (what the runner's fixture hands out)."""
        return ScopedProbe(self, namespace, snapshot)

    def url(self, host: str, path: str = "/", *, namespace: str | None = None,
            snapshot: "Snapshot | None" = None) -> HttpAnswer:
        """GET ``http://host/path`` (through ``--router`` when set), after the safety rules.

        With a namespace and a snapshot, a host that belongs to another namespace's route is
        refused too: otherwise a student could point a route at a classmate's host and be graded
        on the classmate's page.
        """
        problem = self.host_problem(host)
        if problem:
            raise CheckFailed(t("ホスト {h} には接続しません: {why}", "the grader will not request host {h}: {why}",
                                h=host, why=Raw(problem)))
        if namespace is not None and snapshot is not None:
            claimed = self.claim_problem(host, namespace, snapshot)
            if claimed is not None:
                raise CheckFailed(claimed)
        if not path.startswith("/"):
            path = "/" + path
        return self._cached(("url", host.strip().lower().rstrip("."), path), lambda: self._get(host, path))

    def claim_problem(self, host: str, namespace: str, snapshot: "Snapshot") -> Text | None:
        """Whether ``host`` is someone else's, as the routers see it.

        Two sources, because neither covers every case: (1) the namespace's own Route whose
        ``status.ingress`` says ``Admitted=False, reason HostAlreadyClaimed`` from every router that
        wrote an entry -- OpenShift's router gives a host to the oldest route claiming it and
        refuses the rest, and that status is readable in a student's own namespace. On a cluster
        with several routers (shards) one router may refuse a host that another admits and serves,
        so a refusal counts only when no entry admitted the route; the message quotes the refusing
        router and its own reason, since an older route in the same namespace is refused the same
        way. (2) in a batch, the snapshot holds every graded namespace's Routes and Ingresses
        (Ingresses have no such admission), so an older claim of the same host elsewhere -- or any
        claim when this namespace has none -- is detected even where the cluster did not record
        it. Ties are broken by namespace name, as a stable order.
        """
        h = host.strip().lower().rstrip(".")
        own = snapshot.view(namespace)
        admitted = False
        refused: list[tuple[str, str, str]] = []
        for route in _objects(own, "Route"):
            if _route_host(route) != h:
                continue
            for ing in _as_list(_as_dict(route.get("status")).get("ingress")):
                ing = _as_dict(ing)
                for cond in _as_list(ing.get("conditions")):
                    cond = _as_dict(cond)
                    if cond.get("type") != "Admitted":
                        continue
                    if cond.get("status") == "True":
                        admitted = True
                    elif cond.get("status") == "False" and cond.get("reason") == "HostAlreadyClaimed":
                        refused.append((str(_as_dict(route.get("metadata")).get("name", "")),
                                        str(ing.get("routerName") or "?"), str(cond.get("message") or "")))
        if refused and not admitted:
            name, router, message = refused[0]
            return t("ルート {r} のホスト {h} はすでに使われています。ルーター {router} が受け付けていません (HostAlreadyClaimed: {msg})。別のホスト名にしてください。",
                     "host {h} of route {r} is already claimed: router {router} did not admit it (HostAlreadyClaimed: {msg}); use a host of your own.",
                     h=host, r=name, router=router, msg=message)
        claims = self._claims(snapshot)
        entries = claims.get(h, [])
        mine = [e for e in entries if e[1] == namespace]
        first = min(entries) if entries else None
        if first is not None and first[1] != namespace and (not mine or first < min(mine)):
            return t("ホスト {h} は別の名前空間の {kind} がすでに使っています。別のホスト名にしてください。",
                     "host {h} is already claimed by a {kind} in another namespace; use a host of your own.",
                     h=host, kind=Raw(first[2]))
        return None

    def _claims(self, snapshot: "Snapshot") -> dict[str, list[tuple[str, str, str]]]:
        """host → [(creationTimestamp, namespace, kind)] over the snapshot's namespaces, built
        once per observation (a batch of N students costs N, not N², to check)."""
        key = (id(snapshot), snapshot.generation)
        with self._lock:
            if self._claims_key == key:
                return self._claims_map
        found: dict[str, list[tuple[str, str, str]]] = {}
        if len(snapshot.namespaces) > 1:
            for ns in snapshot.namespaces:
                view = snapshot.view(ns)
                for kind in ("Route", "Ingress"):
                    for obj in _objects(view, kind):
                        ts = str(_as_dict(obj.get("metadata")).get("creationTimestamp") or "")
                        hosts = {_route_host(obj)} if kind == "Route" else {
                            str(_as_dict(rule).get("host") or "").lower().rstrip(".")
                            for rule in _as_list(_as_dict(obj.get("spec")).get("rules"))}
                        for h in hosts - {""}:
                            found.setdefault(h, []).append((ts, ns, kind))
        with self._lock:
            self._claims_key, self._claims_map = key, found
        return found

    def _get(self, host: str, path: str) -> HttpAnswer:
        """One GET bounded like a service-proxy probe (``grader.bounded``): no redirects followed,
        no proxy from the environment, ``Accept-Encoding: identity``, the body cut at
        ``max_body``, and one deadline for connect, headers and body together -- the watchdog
        starts before the connection is opened and shuts the socket at ``timeout``, so neither a
        black-holed connect nor a page that trickles one byte at a time holds the grader longer.

        Through ``--router`` every host is one address, whose connections are kept
        (``bounded.Connections``, as ``Api.fetch`` keeps the API server's) rather than a new TCP
        connection for every student's page. Without a router each host is its own address and
        every probe has its own connection."""
        import http.client
        import time

        from .bounded import Connections, NoAnswer, too_slow

        if self.router:
            with self._lock:
                if self._router is None:
                    self._router = Connections(lambda s: http.client.HTTPConnection(self.router, timeout=s), self.workers)
                conns = self._router
        else:
            conns = Connections(lambda s: http.client.HTTPConnection(host, timeout=s), 0)
        headers = {"Host": host, "User-Agent": "grader-probe", "Accept": "*/*", "Accept-Encoding": "identity"}
        try:
            got = conns.get(path, headers, time.monotonic() + self.timeout, self.max_body, self.timeout)
        except NoAnswer as e:
            return HttpAnswer(0, b"", error=too_slow(self.timeout) if e.late else
                              f"{type(e.error).__name__}: {str(e.error)[:160]}")
        return HttpAnswer(got.status, got.body.data, error=got.body.error, headers=got.headers, cut=got.body.cut)


class ScopedProbe:
    """A probe bound to the namespace whose checks use it; ``url`` applies the host-claim rule."""

    def __init__(self, probe: Probe, namespace: str, snapshot: "Snapshot | None") -> None:
        self._probe = probe
        self.namespace = namespace
        self._snapshot = snapshot

    def url(self, host: str, path: str = "/") -> HttpAnswer:
        return self._probe.url(host, path, namespace=self.namespace, snapshot=self._snapshot)

    def service(self, namespace: str, service: str, port: int | str, path: str = "/") -> HttpAnswer:
        return self._probe.service(namespace, service, port, path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._probe, name)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _route_host(route: dict[str, Any]) -> str:
    return str(_as_dict(route.get("spec")).get("host") or "").strip().lower().rstrip(".")


def _objects(view: "View", kind: str) -> list[dict[str, Any]]:
    """A kind's objects in a view, or none where the grader cannot read it (not OpenShift, 403):
    the claim rule then rests on the other source."""
    try:
        return [o for o in view.list(kind) if isinstance(o, dict)]
    except ClusterUnavailable:
        raise
    except InfraError:
        return []
