"""A snapshot kept current by watch streams, and the changes it saw, debounced.

``LiveSnapshot`` is the run's ``Snapshot`` (the same model the checks read through a ``View``)
whose lists are not read again for each grading: the first read of a kind lists it once, as
``Snapshot`` does (cluster-wide for a class, in the namespace for a student), and then a watch
from that list's resourceVersion keeps it current. Each event names the namespace it touched, so
a re-grading runs only the changed namespaces' checks, on the same snapshot, without a new list.

How it keeps watching (one ``_Feed`` thread per kind, or per kind and namespace where the
account may not watch cluster-wide): bookmarks move the resourceVersion on; a watch the server
ends at ``timeoutSeconds`` is started again from the last version seen; ``410 Gone`` or a dropped
connection lists again (the difference with what was held is a change like any other, so no
change is lost) and watches from the new list. Every failure waits a backoff (capped exponential
with jitter, on an injectable clock) that only a delivered event resets, so a faulty server
(failing every request, or ending every watch at once) costs a request per backoff, never a spin.

``Changes`` groups what arrives together: a ``kubectl apply -f dir/`` of five objects is five
events within milliseconds, and one re-grading.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable, Iterable

from .errors import CannotSee, ClusterUnavailable, InfraError
from .kube import Api, resource
from .kubewatch import Expired, Stream, list_versioned
from .snapshot import Obj, Snapshot, metadata_of, namespace_of

QUIET = 0.1         # a burst of changes has ended after this long without one
LONGEST = 0.25      # ... and a steady trickle is graded at least this often
POLL = 2.0          # where the account may list a kind but not watch it: listed this often
# Kinds whose hosts ``Probe.claim_problem`` maps over the whole class (keyed by ``generation``).
_HOSTS = frozenset({"Route", "Ingress"})


class Backoff:
    """Capped exponential delays with full jitter; ``reset`` after progress. ``sleep`` returns
    False when the watcher is stopping."""

    def __init__(self, sleep: Callable[[float], bool], base: float = 0.5, cap: float = 30.0) -> None:
        self._sleep = sleep
        self.base = base
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def wait(self) -> bool:
        delay = min(self.cap, self.base * 2 ** self.failures)
        self.failures += 1
        return self._sleep(delay / 2 + random.uniform(0, delay / 2))


class Changes:
    """Namespaces changed since the last ``take``, with the debounce above."""

    def __init__(self, quiet: float = QUIET, longest: float = LONGEST) -> None:
        self.quiet = quiet
        self.longest = longest
        self._pending: set[str] = set()
        self._first = 0.0       # when the oldest change not yet taken arrived
        self._last = 0.0
        self._cond = threading.Condition()

    def add(self, namespaces: Iterable[str]) -> None:
        new = set(namespaces)
        if not new:
            return
        with self._cond:
            self._last = time.monotonic()
            if not self._pending:
                self._first = self._last
            self._pending |= new
            self._cond.notify_all()

    def waiting(self) -> bool:
        """Whether changes are waiting to be taken."""
        with self._cond:
            return bool(self._pending)

    def take(self, timeout: float) -> set[str]:
        """The namespaces changed, once a burst has settled; empty when none came by ``timeout``."""
        end = time.monotonic() + timeout
        with self._cond:
            while not self._pending:
                left = end - time.monotonic()
                if left <= 0:
                    return set()
                self._cond.wait(left)
            while True:          # a change that waited through a grading is not kept waiting longer
                now = time.monotonic()
                settle = min(self._last + self.quiet, self._first + self.longest) - now
                if settle <= 0:
                    break
                self._cond.wait(settle)
            got, self._pending = self._pending, set()
            return got


class LiveSnapshot(Snapshot):
    """A ``Snapshot`` whose kinds, once read, are kept current by watches (see the module)."""

    def __init__(self, api: Api, namespaces: Iterable[str], changes: Changes | None = None, *,
                 sleep: Callable[[float], bool] | None = None, timeout_seconds: int = 300) -> None:
        super().__init__(api, namespaces)
        self.changes = changes or Changes()
        self.stopping = threading.Event()
        self._sleep = sleep or (lambda s: not self.stopping.wait(s))
        self.timeout_seconds = timeout_seconds
        self._store: dict[str, dict[str | None, dict[str, Obj]]] = {}   # kind → ns (None: cluster) → name → obj
        self.feeds: list[_Feed] = []
        self._cluster_wide: dict[str, bool] = {}    # kind → watched cluster-wide (else per namespace)

    def refresh(self) -> None:
        """Nothing to forget: the watches keep every kind read current."""

    def stop(self) -> None:
        self.stopping.set()
        for feed in list(self.feeds):
            feed.close()

    def add_namespace(self, namespace: str) -> bool:
        """Grade one more namespace (a new student's); True when it is new. Kinds watched per
        namespace get a feed of their own for it."""
        with self._lock:
            if namespace in self.namespaces:
                return False
            self.namespaces.append(namespace)
            self._readable.append(namespace)
            self._wanted.add(namespace)
            per_ns = [k for k in self._kinds if not self._cluster_wide.get(k, True)]
        for kind in per_ns:
            self._start_namespace_feed(kind, namespace)
        return True

    # --- loading (under self._lock, as Snapshot._load) ------------------------------------
    def _load(self, kind: str) -> None:
        self._kinds[kind] = {ns: [] for ns in self.namespaces}
        self._store[kind] = {}
        if len(self._readable) > 1:
            try:
                items, version = list_versioned(self.api, kind)
            except CannotSee:
                pass
            except ClusterUnavailable:
                raise
            except InfraError as e:   # as Snapshot: an error for everyone, and retried by the feed
                self._denied.update({(kind, ns): e for ns in self._readable})
                self._cluster_wide[kind] = True
                self._feed(kind, None, None)
                return
            else:
                self._cluster_wide[kind] = True
                self._replace(kind, None, items)
                self._feed(kind, None, version)
                return
        self._cluster_wide[kind] = False
        for ns in list(self._readable):
            self._load_namespace(kind, ns)

    def _load_namespace(self, kind: str, ns: str) -> None:
        try:
            items, version = list_versioned(self.api, kind, ns)
        except ClusterUnavailable:
            raise
        except InfraError as e:
            self._denied[(kind, ns)] = e
            self._feed(kind, ns, None)
            return
        self._replace(kind, ns, items)
        self._feed(kind, ns, version)

    def _start_namespace_feed(self, kind: str, ns: str) -> None:
        with self._lock:
            self._kinds.setdefault(kind, {}).setdefault(ns, [])
        self._feed(kind, ns, None)

    def cluster_list(self, kind: str) -> list[Obj]:
        with self._lock:
            if kind not in self._cluster:
                self._store[kind] = {}
                try:
                    items, version = list_versioned(self.api, kind)
                except ClusterUnavailable:
                    raise
                except InfraError as e:
                    self._cluster[kind] = e
                    self._feed(kind, None, None, cluster_scoped=True)
                else:
                    self._store[kind][None] = {_key(o): o for o in items}
                    self._cluster[kind] = items
                    self._feed(kind, None, version, cluster_scoped=True)
            got = self._cluster[kind]
        if isinstance(got, InfraError):
            raise got
        return got

    def _feed(self, kind: str, scope: str | None, version: str | None, cluster_scoped: bool = False) -> None:
        feed = _Feed(self, kind, scope, version, cluster_scoped)
        self.feeds.append(feed)
        feed.start()

    # --- applying what a feed saw (feed threads) ------------------------------------------
    def _replace(self, kind: str, scope: str | None, items: list[Obj]) -> set[str]:
        """Hold ``items`` as everything of ``kind`` in ``scope`` (None: every namespace); the
        namespaces whose objects differ from before. Caller holds the lock."""
        by_ns: dict[str, dict[str, Obj]] = {}
        for obj in items:
            ns = namespace_of(obj)
            if ns is not None and (scope is None or ns == scope):
                by_ns.setdefault(ns, {})[_key(obj)] = obj
        store = self._store.setdefault(kind, {})
        old = {ns: objs for ns, objs in store.items() if ns is not None and (scope is None or ns == scope)}
        changed = {ns for ns in set(old) | set(by_ns)
                   if _versions(old.get(ns, {})) != _versions(by_ns.get(ns, {}))}
        for ns in old:
            store.pop(ns, None)
        store.update(by_ns)
        for ns in changed | ({scope} if scope else set()):
            self._publish(kind, ns)
            self._denied.pop((kind, ns), None)
        if scope is None:
            for ns in self._readable:
                self._denied.pop((kind, ns), None)
        return changed

    def _publish(self, kind: str, ns: str) -> None:
        objs = self._store[kind].get(ns, {})
        self._kinds.setdefault(kind, {})[ns] = sorted(objs.values(), key=_key)

    def apply(self, kind: str, kind_event: str, obj: Obj, cluster_scoped: bool) -> set[str]:
        """One ADDED/MODIFIED/DELETED event; the namespaces graded that it touched."""
        with self._lock:
            if kind in _HOSTS:
                self.generation += 1     # the probe's map of who claims which host is rebuilt
            if cluster_scoped:
                store = self._store.setdefault(kind, {}).setdefault(None, {})
                before = store.get(_key(obj))
                if kind_event == "DELETED":
                    store.pop(_key(obj), None)
                else:
                    store[_key(obj)] = obj
                self._cluster[kind] = sorted(store.values(), key=_key)
                if kind == "Namespace":   # a namespace's own object: that namespace (or a new one)
                    return {_key(obj)}
                return _cluster_touch(kind, before, None if kind_event == "DELETED" else obj, self._readable)
            ns = namespace_of(obj)
            if ns is None:
                return set()
            objs = self._store.setdefault(kind, {}).setdefault(ns, {})
            if kind_event == "DELETED":
                objs.pop(_key(obj), None)
            else:
                objs[_key(obj)] = obj
            self._publish(kind, ns)
            return {ns} & self._wanted

    def replace(self, kind: str, scope: str | None, items: list[Obj], cluster_scoped: bool) -> set[str]:
        """A fresh list after 410 or a drop; the namespaces graded whose objects changed."""
        with self._lock:
            if kind in _HOSTS:
                self.generation += 1
            if cluster_scoped:
                store = self._store.setdefault(kind, {})
                old = store.get(None, {})
                new = {_key(o): o for o in items}
                store[None] = new
                self._cluster[kind] = sorted(new.values(), key=_key)
                before, after = _versions(old), _versions(new)
                if kind == "Namespace":   # as for its events: the namespaces that changed
                    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
                return set(self._readable) if before != after else set()
            return self._replace(kind, scope, items) & self._wanted

    def denied(self, kind: str, scope: str | None, error: InfraError) -> None:
        with self._lock:
            for ns in ([scope] if scope else self._readable):
                self._denied[(kind, ns)] = error


def _key(obj: Obj) -> str:
    name = metadata_of(obj).get("name")
    return name if isinstance(name, str) else repr(name)


def _versions(objs: dict[str, Obj]) -> dict[str, Any]:
    return {k: metadata_of(o).get("resourceVersion") or id(o) for k, o in objs.items()}


def _cluster_touch(kind: str, before: Obj | None, after: Obj | None, readable: list[str]) -> set[str]:
    """Which namespaces a cluster-scoped object's change may change a grade of: a bound
    PersistentVolume's claim namespace; nobody for a Node's status (heartbeats); else everyone."""
    if kind == "PersistentVolume":
        refs = {((o or {}).get("spec") or {}).get("claimRef", {}).get("namespace") for o in (before, after)
                if isinstance(((o or {}).get("spec") or {}).get("claimRef"), dict)}
        if refs and None not in refs:
            return {r for r in refs if isinstance(r, str)} & set(readable)
    if before is not None and after is not None and \
            {k: v for k, v in before.items() if k not in ("status", "metadata")} == \
            {k: v for k, v in after.items() if k not in ("status", "metadata")} and \
            metadata_of(before).get("labels") == metadata_of(after).get("labels"):
        return set()
    return set(readable)


class _Feed:
    """One watch loop: watch from a version; on a clean end watch again; on 410 or a failure
    back off and list again. A 403 to a cluster-wide watch turns into one feed per namespace; a
403 to a namespace's watch (where the list was allowed) into a list every ``POLL`` seconds."""

    def __init__(self, live: LiveSnapshot, kind: str, scope: str | None, version: str | None,
                 cluster_scoped: bool) -> None:
        self.live = live
        self.kind = kind
        self.scope = scope
        self.version = version
        self.cluster_scoped = cluster_scoped
        self.backoff = Backoff(live._sleep)
        self.stream: Stream | None = None
        self.thread = threading.Thread(target=self._run, name=f"watch-{kind}-{scope or '*'}", daemon=True)
        self.relists = 0
        self.polling = False

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()

    def _run(self) -> None:
        live = self.live
        while not live.stopping.is_set():
            if self.version is None:
                listed = self._relist()
                if listed is None:
                    return
                if not listed:
                    if not self.backoff.wait():
                        return
                    continue
            if self.polling:                  # may list but not watch: list again every POLL s
                self.version = None
                if not live._sleep(POLL):
                    return
                continue
            try:
                if not self._watch():
                    return
            except Expired:
                self.version = None           # list again at once: a 410 is not a fault
                if not self.backoff.wait():
                    return
            except CannotSee:
                if self.scope is None and not self.cluster_scoped:
                    self._split()
                    return
                self.polling = True           # the list worked: what it read stays good
                self.version = None
            except InfraError:                # dropped, 5xx, unreachable: back off, list again
                self.version = None
                if not self.backoff.wait():
                    return

    def _relist(self) -> bool | None:
        """List again; False on a failure, None when this feed has handed over to per-namespace ones."""
        live = self.live
        try:
            items, version = list_versioned(live.api, self.kind, None if self.cluster_scoped else self.scope)
        except CannotSee as e:
            if self.scope is None and not self.cluster_scoped:
                self._split()
                return None
            live.denied(self.kind, self.scope, e)
            return False
        except InfraError as e:
            live.denied(self.kind, self.scope, e)
            return False
        self.relists += 1
        changed = live.replace(self.kind, self.scope, items, self.cluster_scoped)
        self.version = version
        live.changes.add(changed)
        return True

    def _watch(self) -> bool:
        """One watch request; False when stopping. A watch that ends with no event within a
        second is treated as a failure, so a server ending every watch at once is not spun on."""
        live = self.live
        assert self.version is not None
        self.stream = Stream(live.api, self.kind, None if self.cluster_scoped else self.scope, self.version,
                             timeout_seconds=live.timeout_seconds)
        started = time.monotonic()
        delivered = False
        for event in self.stream.events():
            if live.stopping.is_set():
                return False
            kind_event = event.get("type")
            obj = event["object"]
            version = metadata_of(obj).get("resourceVersion")
            if kind_event in ("ADDED", "MODIFIED", "DELETED"):
                live.changes.add(live.apply(self.kind, str(kind_event), obj, self.cluster_scoped))
            elif kind_event != "BOOKMARK":
                continue
            if isinstance(version, str) and version:
                self.version = version
            delivered = True
            self.backoff.reset()
        if live.stopping.is_set():
            return False
        if not delivered and time.monotonic() - started < 1.0:
            return self.backoff.wait()
        return True

    def _split(self) -> None:
        """Cluster-wide watching is not allowed: one feed per namespace instead."""
        live = self.live
        with live._lock:
            live._cluster_wide[self.kind] = False
            namespaces = list(live._readable)
        for ns in namespaces:
            live._start_namespace_feed(self.kind, ns)


__all__ = ["Backoff", "Changes", "LiveSnapshot", "LONGEST", "QUIET"]
