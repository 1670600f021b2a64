"""One observation of the cluster, shared by every check of a run.

A kind is listed once per observation, however many students and checks read it: cluster-wide
and split by namespace in memory for a batch, or in the one namespace for a student. Where the
grader may not list a kind cluster-wide (403), it falls back to one list per namespace, and a
namespace it still cannot read becomes an error for that student alone.

Checks get a ``View``: plain dicts, read-only by convention, and no way to write.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping

from .errors import CannotSee, ClusterUnavailable, InfraError
from .i18n import Raw, t
from .kube import Api, resource
from .sanitize import valid_namespace

Obj = dict[str, Any]


class Snapshot:
    def __init__(self, api: Api, namespaces: Iterable[str]) -> None:
        self.api = api
        self.namespaces = list(dict.fromkeys(namespaces))
        # A name that cannot be a namespace never reaches a URL path ("a/b" would read another
        # resource): reading it is an error for that name alone.
        self._readable = [ns for ns in self.namespaces if valid_namespace(ns)]
        self._wanted = set(self._readable)
        self._lock = threading.Lock()
        self._kinds: dict[str, dict[str, list[Obj]] | None] = {}   # kind → ns → objects
        self._denied: dict[tuple[str, str], InfraError] = {}        # (kind, ns) → why not
        self._cluster: dict[str, list[Obj] | InfraError] = {}       # cluster-scoped kinds
        self._served: dict[str, bool] = {}
        # (kind, namespace or None) → (the list indexed, name → first object of that name)
        self._names: dict[tuple[str, str | None], tuple[list[Obj], dict[str, Obj]]] = {}
        self.generation = 0

    def refresh(self) -> None:
        """Forget what was seen; the next read observes the cluster again."""
        with self._lock:
            self._kinds.clear()
            self._denied.clear()
            self._cluster.clear()
            self._names.clear()
            self.generation += 1

    def view(self, namespace: str) -> "View":
        return View(self, namespace)

    # --- loading ---------------------------------------------------------------------------
    def _namespaced(self, kind: str, namespace: str) -> list[Obj]:
        with self._lock:
            if kind not in self._kinds:
                self._load(kind)
            denied = self._denied.get((kind, namespace))
            if denied is not None:
                raise denied
            return (self._kinds[kind] or {}).get(namespace, [])

    def _load(self, kind: str) -> None:
        """List ``kind`` and split it by namespace. The result is stored only once complete: a
        read that failed half way must not leave later readers a partial list (that is, a
        wrong "not found" for whichever students came after the failure)."""
        by_ns: dict[str, list[Obj]] = {ns: [] for ns in self.namespaces}
        for ns in set(self.namespaces) - self._wanted:
            self._denied[(kind, ns)] = InfraError(t(
                "{ns} は名前空間の名前ではないため読み取りません (英小文字・数字・ハイフンで 63 文字以内)",
                "{ns} is not a namespace name (lowercase letters, digits and '-', at most 63), so it is not read",
                ns=ns))
        if len(self._readable) > 1:
            try:
                for obj in self.api.list(kind):
                    ns = namespace_of(obj)
                    if ns in self._wanted:
                        by_ns[ns].append(obj)
                self._kinds[kind] = by_ns
                return
            except CannotSee:
                pass  # not allowed cluster-wide: one list per namespace below
            except ClusterUnavailable:
                raise
            except InfraError as e:  # failed after retries: an error for everyone, never "no objects"
                self._denied.update({(kind, ns): e for ns in self._readable})
                self._kinds[kind] = None
                return
        for ns in self._readable:
            try:
                by_ns[ns] = [o for o in self.api.list(kind, ns) if isinstance(o, dict)]
            except ClusterUnavailable:
                raise
            except InfraError as e:
                self._denied[(kind, ns)] = e
        self._kinds[kind] = by_ns

    def cluster_list(self, kind: str) -> list[Obj]:
        with self._lock:
            if kind not in self._cluster:
                try:
                    self._cluster[kind] = self.api.list(kind)
                except ClusterUnavailable:
                    raise
                except InfraError as e:
                    self._cluster[kind] = e
            got = self._cluster[kind]
        if isinstance(got, InfraError):
            raise got
        return got

    def by_name(self, kind: str, namespace: str | None, objects: list[Obj]) -> dict[str, Obj]:
        """Name → the first object of that name in ``objects`` (the list just read for ``kind``
        in ``namespace``, None for cluster-scoped), built once per list: finding each student's
        PersistentVolume by scanning every PV of the class would be quadratic in the class. The
        index is kept with the very list it was built from, so a list read again after
        ``refresh`` is indexed again. Only string names are keys: a malformed name (a mapping,
        a number) could not equal a name asked for anyway."""
        key = (kind, namespace)
        with self._lock:
            got = self._names.get(key)
            if got is not None and got[0] is objects:
                return got[1]
            index: dict[str, Obj] = {}
            for obj in objects:
                name = metadata_of(obj).get("name")
                if isinstance(name, str) and name not in index:
                    index[name] = obj
            self._names[key] = (objects, index)
            return index

    def served(self, kind: str) -> bool:
        with self._lock:
            if kind not in self._served:
                self._served[kind] = self.api.served(kind)
            return self._served[kind]


def metadata_of(obj: Any) -> dict[str, Any]:
    """An object's ``metadata`` when it is a mapping, else nothing: a student's (or an odd
    server's) object of the wrong shape must read as "no such field", never crash a reader."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def namespace_of(obj: Any) -> str | None:
    """The namespace an object of a cluster-wide list belongs to; None when it does not say so
    as a string. Such an object cannot be attributed to any student and is left out: it is
    never given to a namespace it may not belong to."""
    ns = metadata_of(obj).get("namespace")
    return ns if isinstance(ns, str) else None


def _matches(labels: Any, selector: Mapping[str, str]) -> bool:
    if not isinstance(labels, dict):
        return not selector
    return all(labels.get(k) == v for k, v in selector.items())


class View:
    """What a check may see of one namespace."""

    def __init__(self, snapshot: Snapshot, namespace: str) -> None:
        self._snapshot = snapshot
        self.namespace = namespace

    def list(self, kind: str) -> list[Obj]:
        if not resource(kind).namespaced:
            return self._snapshot.cluster_list(kind)
        try:
            return self._snapshot._namespaced(kind, self.namespace)
        except CannotSee as e:
            raise CannotSee(t("{kind} を名前空間 {ns} で読み取れません: {why}",
                              "cannot read {kind} in namespace {ns}: {why}",
                              kind=Raw(kind), ns=self.namespace, why=e.message), e.status, e.reason) from None

    def get(self, kind: str, name: str) -> Obj | None:
        """The first object of ``kind`` named ``name``, through the snapshot's name index."""
        objects = self.list(kind)
        if not isinstance(name, str):   # a caller passing a student's odd value: compare as before
            return next((o for o in objects if metadata_of(o).get("name") == name), None)
        namespace = self.namespace if resource(kind).namespaced else None
        return self._snapshot.by_name(kind, namespace, objects).get(name)

    def select(self, kind: str, selector: Mapping[str, str]) -> list[Obj]:
        """Objects whose labels match an equality selector (an empty selector matches nothing,
        as for a Service)."""
        if not selector:
            return []
        return [o for o in self.list(kind) if _matches(metadata_of(o).get("labels"), selector)]

    def can_read(self, kind: str) -> bool:
        try:
            self.list(kind)
            return True
        except CannotSee:
            return False

    def served(self, kind: str) -> bool:
        return self._snapshot.served(kind)
