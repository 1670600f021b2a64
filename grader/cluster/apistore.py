"""The embedded API server's storage: objects as dicts in memory, resourceVersions, admission
hooks and change listeners (the controllers). Every read returns copies, so nothing outside the
lock can change stored state."""
from __future__ import annotations

import json
import random
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from .apitypes import (OPENSHIFT_GROUPS, ApiStatus, ResourceType, invalid, json_patch, merge_patch, not_found,
                       strategic_merge_patch, validate, validate_name)


# =============================================================================================
# Store
# =============================================================================================
Listener = Callable[[str, ResourceType, dict], None]
Admission = Callable[[ResourceType, dict, "dict | None"], None]
"""Mutating/validating hook ``(resource, new_obj, old_obj_or_None)``; raises ApiStatus to reject."""


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _comparable(obj: dict) -> dict:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


class Store:
    """All objects, one lock, one resourceVersion counter; listeners hear about every change."""

    def __init__(self, resources: tuple[ResourceType, ...]) -> None:
        self.resources = resources
        self._lock = threading.RLock()
        self._objs: dict[str, dict[tuple[str, str], dict]] = {r.key: {} for r in resources}
        self._rv = 1
        self.listeners: list[Listener] = []
        # Why indexes: controllers list each namespace's objects many times per reconcile and the
        # router looks routes up by host per request; scanning every object of a kind each time
        # made filling a class quadratic (1,000 namespaces of ex6: a minute).
        self._names: dict[str, dict[str, set[str]]] = {r.key: {} for r in resources}   # kind → ns → names
        self._indexes: dict[str, dict[str, tuple[Callable[[dict], Iterable[str]], dict[str, set[tuple[str, str]]]]]] = {}

    def rt(self, plural: str, group: str = "") -> ResourceType:
        for r in self.resources:
            if r.plural == plural and r.group == group:
                return r
        raise KeyError(f"{plural}.{group}")

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def add_index(self, rt: ResourceType, name: str, values: Callable[[dict], Iterable[str]]) -> None:
        """Keep ``rt``'s objects findable by ``values(obj)`` (``lookup``), e.g. routes by host."""
        with self._lock:
            if name in self._indexes.get(rt.key, {}):
                return
            table: dict[str, set[tuple[str, str]]] = {}
            self._indexes.setdefault(rt.key, {})[name] = (values, table)
            for key, obj in self._objs[rt.key].items():
                for v in values(obj):
                    table.setdefault(v, set()).add(key)

    def lookup(self, rt: ResourceType, name: str, value: str) -> list[dict]:
        """Copies of the objects whose index ``name`` holds ``value``, sorted by (namespace, name)."""
        with self._lock:
            keys = sorted(self._indexes[rt.key][name][1].get(value, ()))
            return [_copy(self._objs[rt.key][k]) for k in keys]

    def _indexed(self, rt: ResourceType, key: tuple[str, str], old: dict | None, new: dict | None) -> None:
        """Move ``key`` in the indexes from ``old``'s entries to ``new``'s (None: absent)."""
        if old is None:
            self._names[rt.key].setdefault(key[0], set()).add(key[1])
        elif new is None:
            names = self._names[rt.key].get(key[0])
            if names is not None:
                names.discard(key[1])
        for values, table in self._indexes.get(rt.key, {}).values():
            for v in values(old) if old is not None else ():
                table.get(v, set()).discard(key)
            for v in values(new) if new is not None else ():
                table.setdefault(v, set()).add(key)

    def _keys(self, rt: ResourceType, namespace: str | None) -> list[tuple[str, str]]:
        if namespace is None:
            return sorted(self._objs[rt.key])
        return sorted((namespace, n) for n in self._names[rt.key].get(namespace, ()))

    def _notify(self, event: str, rt: ResourceType, obj: dict) -> None:
        for listener in self.listeners:
            listener(event, rt, obj)

    # --- reads --------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str, raise_missing: bool = False) -> dict | None:
        with self._lock:
            obj = self._objs[rt.key].get((namespace if rt.namespaced else "", name))
            if obj is None:
                if raise_missing:
                    raise not_found(rt, name)
                return None
            return _copy(obj)

    def list(self, rt: ResourceType, namespace: str | None = None) -> tuple[list[dict], str]:
        """Copies sorted by (namespace, name), and the resourceVersion they were read at."""
        with self._lock:
            table = self._objs[rt.key]
            return [_copy(table[k]) for k in self._keys(rt, namespace)], str(self._rv)

    def find(self, rt: ResourceType, keep: Callable[[dict], bool]) -> list[dict]:
        """Copies of just the objects ``keep`` accepts; the data plane's lookups (a route by host)
        would otherwise copy every object of the kind on every request."""
        with self._lock:
            return [_copy(o) for o in self._objs[rt.key].values() if keep(o)]

    def list_page(self, rt: ResourceType, namespace: str | None, keep: Callable[[dict], bool],
                  after: tuple[str, str] | None, limit: int) -> tuple[list[str], str, tuple[str, str] | None, int]:
        """One page of a list as JSON texts (without kind/apiVersion), for the HTTP list path.

        Why not ``list()``: that deep-copies every object of the kind for every page, so paging
        through 5,000 pods 500 at a time made 50,000 copies. Here objects are filtered in place
        and only the page is encoded, under the lock (a consistent read at one resourceVersion).
        Returns (items, resourceVersion, key of the last item when more remain, remaining count).
        """
        with self._lock:
            table = self._objs[rt.key]
            keys = [k for k in self._keys(rt, namespace) if after is None or k > after]
            items: list[str] = []
            last: tuple[str, str] | None = None
            remaining = 0
            for i, k in enumerate(keys):
                obj = table[k]
                if not keep(obj):
                    continue
                if limit and len(items) == limit:
                    remaining = sum(1 for k2 in keys[i:] if keep(table[k2]))
                    break
                items.append(json.dumps({f: v for f, v in obj.items() if f not in ("kind", "apiVersion")},
                                        separators=(",", ":")))
                last = k
            return items, str(self._rv), (last if remaining else None), remaining

    def exists(self, rt: ResourceType, namespace: str, name: str) -> bool:
        with self._lock:
            return (namespace if rt.namespaced else "", name) in self._objs[rt.key]

    # --- writes -------------------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, obj: dict, *, admit: Admission | None = None,
               dry_run: bool = False, keep_status: bool = False) -> dict:
        obj = _copy(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiStatus(400, "BadRequest", "metadata must be an object")
        if obj.get("kind") not in (None, rt.kind) or obj.get("apiVersion") not in (None, rt.api_version):
            raise ApiStatus(400, "BadRequest",
                            f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                            f"expected API version ({rt.api_version})" if obj.get("apiVersion") != rt.api_version
                            else f"kind {obj.get('kind')} does not match the resource {rt.plural}")
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise ApiStatus(400, "BadRequest", "the namespace of the provided object does not "
                                "match the namespace sent on the request")
            namespace = namespace or meta.get("namespace") or "default"
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
            else:
                raise invalid(rt, "", "metadata.name", "FieldValueRequired",
                              "Required value: name or generateName is required")
        validate_name(rt, meta["name"])
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        if rt.has_status and not keep_status:
            obj.pop("status", None)
        if rt.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        validate(rt, obj)
        with self._lock:
            if rt.namespaced and ("", namespace) not in self._objs["namespaces"]:
                raise ApiStatus(404, "NotFound", f'namespaces "{namespace}" not found',
                                {"name": namespace, "kind": "namespaces"})
            key = (namespace, meta["name"])
            if key in self._objs[rt.key]:
                what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                raise ApiStatus(409, "AlreadyExists", f'{what} "{meta["name"]}" already exists',
                                {"name": meta["name"], "group": rt.group, "kind": rt.plural})
            if admit is not None:
                admit(rt, obj, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if "spec" in obj or rt.plural in ("deployments", "replicasets", "replicationcontrollers"):
                meta["generation"] = 1
            meta.pop("resourceVersion", None)
            if dry_run:
                return obj
            meta["resourceVersion"] = self._next_rv()
            self._objs[rt.key][key] = obj
            self._indexed(rt, key, None, obj)
            self._notify("ADDED", rt, obj)
            return _copy(obj)

    def replace(self, rt: ResourceType, namespace: str, name: str, obj: dict, *,
                admit: Admission | None = None, subresource: str = "", dry_run: bool = False) -> dict:
        """PUT semantics: optimistic concurrency on resourceVersion, status only via /status."""
        obj = _copy(obj)
        with self._lock:
            key = (namespace if rt.namespaced else "", name)
            old = self._objs[rt.key].get(key)
            if old is None:
                raise not_found(rt, name)
            meta = obj.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiStatus(400, "BadRequest", "the name of the object does not match the name on the URL")
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                raise ApiStatus(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": the '
                                "object has been modified; please apply your changes to the latest "
                                "version and try again", {"name": name, "group": rt.group, "kind": rt.plural})
            if subresource == "status":
                new = _copy(old)
                new["status"] = obj.get("status")
            else:
                new = obj
                if rt.has_status:
                    if "status" in old:
                        new["status"] = _copy(old["status"])
                    else:
                        new.pop("status", None)
                if rt.plural == "namespaces":
                    new["status"], new["spec"] = old.get("status"), old.get("spec")
            nm = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "namespace", "generation", "deletionTimestamp",
                      "deletionGracePeriodSeconds"):
                if k in old["metadata"]:
                    nm[k] = old["metadata"][k]
            nm["name"] = name
            if rt.namespaced:
                nm["namespace"] = namespace
            new["kind"], new["apiVersion"] = rt.kind, rt.api_version
            if subresource != "status":
                validate(rt, new)
                if admit is not None:
                    admit(rt, new, _copy(old))
                strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
                if "generation" in nm and strip(new) != strip(old):
                    nm["generation"] = old["metadata"]["generation"] + 1
            return self._commit(rt, key, old, new, dry_run)

    def _commit(self, rt: ResourceType, key: tuple[str, str], old: dict, new: dict, dry_run: bool) -> dict:
        if _comparable(new) == _comparable(old):
            return _copy(old)
        if dry_run:
            return new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") and rt.plural != "pods":
            return self._remove(rt, key, old, new)    # the last finalizer went: the deletion completes
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._objs[rt.key][key] = new
        self._indexed(rt, key, old, new)
        self._notify("MODIFIED", rt, new)
        return _copy(new)

    def put(self, rt: ResourceType, obj: dict) -> bool:
        """Controller write: whole object, no admission; False when nothing changed or it is gone."""
        with self._lock:
            meta = obj["metadata"]
            key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
            old = self._objs[rt.key].get(key)
            if old is None or old["metadata"]["uid"] != meta.get("uid"):
                return False
            before = self._rv
            self._commit(rt, key, old, _copy(obj), False)
            return self._rv != before

    def patch(self, rt: ResourceType, namespace: str, name: str, ctype: str, body: bytes, *,
              admit: Admission | None = None, subresource: str = "", dry_run: bool = False) -> dict:
        try:
            patch = json.loads(body or b"null")
        except ValueError:
            if ctype == "application/apply-patch+yaml":
                import yaml
                patch = yaml.safe_load(body)
            else:
                raise ApiStatus(400, "BadRequest", "the patch is not valid JSON") from None
        with self._lock:
            current = self.get(rt, namespace, name)
            if current is None:
                if ctype == "application/apply-patch+yaml":
                    return self.create(rt, namespace, patch, admit=admit, dry_run=dry_run)
                raise not_found(rt, name)
            if ctype == "application/json-patch+json":
                try:
                    new = json_patch(current, patch)
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise ApiStatus(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}") from None
            elif ctype == "application/strategic-merge-patch+json":
                if rt.group in OPENSHIFT_GROUPS:
                    raise ApiStatus(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
                new = strategic_merge_patch(current, patch)
            elif ctype in ("application/merge-patch+json", "application/apply-patch+yaml"):
                new = merge_patch(current, patch)
            else:
                raise ApiStatus(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
            if not isinstance(patch, dict) or "resourceVersion" not in (patch.get("metadata") or {}):
                new.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self.replace(rt, namespace, name, new, admit=admit, subresource=subresource, dry_run=dry_run)

    def delete(self, rt: ResourceType, namespace: str, name: str, *, dry_run: bool = False,
               missing_ok: bool = False, grace: int | None = None, uid: str | None = None) -> dict:
        """DELETE. A pod is deleted gracefully (see ``_graceful``): it stays, Terminating, and the
        kubelet removes it later with ``grace=0``; everything else goes at once. ``uid`` is the
        DeleteOptions precondition (409 when the object was replaced meanwhile)."""
        with self._lock:
            key = (namespace if rt.namespaced else "", name)
            obj = self._objs[rt.key].get(key)
            if obj is None or (uid is not None and missing_ok and obj["metadata"].get("uid") != uid):
                if missing_ok:
                    return {}
                raise not_found(rt, name)
            if uid is not None and obj["metadata"].get("uid") != uid:
                raise ApiStatus(409, "Conflict", f'Operation cannot be fulfilled on {rt.plural} "{name}": '
                                f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                                f"{obj['metadata'].get('uid')}", {"name": name, "kind": rt.plural})
            if rt.plural == "pods" and not rt.group:
                period = _grace_period(obj, grace)
                if period > 0:
                    return self._graceful(rt, key, obj, period, dry_run)
            if obj["metadata"].get("finalizers") and rt.plural not in ("namespaces", "pods"):
                return self._finalizing(rt, key, obj, dry_run)   # stays until its finalizers are removed
            if dry_run:
                return _copy(obj)
            if rt.plural == "namespaces":
                for r in self.resources:
                    if r.namespaced:
                        for k in self._keys(r, name):
                            gone = self._objs[r.key].pop(k)
                            self._indexed(r, k, gone, None)
                            self._next_rv()
                            self._notify("DELETED", r, gone)
            del self._objs[rt.key][key]
            self._indexed(rt, key, obj, None)
            self._next_rv()
            out = _copy(obj)
            out["metadata"]["deletionTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._notify("DELETED", rt, obj)
            return out


    def _finalizing(self, rt: ResourceType, key: tuple[str, str], obj: dict, dry_run: bool) -> dict:
        """DELETE of an object with finalizers: ``deletionTimestamp`` is set and it stays (the
        registry's ``BeforeDelete`` for graceful-less kinds) until a controller removes them."""
        if obj["metadata"].get("deletionTimestamp"):
            return _copy(obj)
        new = _copy(obj)
        new["metadata"]["deletionTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        return new if dry_run else self._commit(rt, key, obj, new, False)

    def _remove(self, rt: ResourceType, key: tuple[str, str], stored: dict, obj: dict) -> dict:
        del self._objs[rt.key][key]
        self._indexed(rt, key, stored, None)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._notify("DELETED", rt, obj)
        return _copy(obj)

    def _graceful(self, rt: ResourceType, key: tuple[str, str], obj: dict, period: int, dry_run: bool) -> dict:
        """Graceful deletion as ``BeforeDelete`` (k8s.io/apiserver/pkg/registry/rest/delete.go)
        does it: ``deletionTimestamp`` = now + grace and ``deletionGracePeriodSeconds`` = grace;
        a second DELETE may only shorten a pending grace period, never lengthen it."""
        meta = obj["metadata"]
        pending = meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and isinstance(pending, int) and pending <= period:
            return _copy(obj)
        new = _copy(obj)
        at = datetime.now(timezone.utc) + timedelta(seconds=min(period, 10**9))   # no year-10000 overflow
        new["metadata"]["deletionTimestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        new["metadata"]["deletionGracePeriodSeconds"] = period
        if dry_run:
            return new
        return self._commit(rt, key, obj, new, False)


def _grace_period(pod: dict, requested: int | None) -> int:
    """The grace period of a pod's deletion, as ``CheckGracefulDelete`` in
    pkg/registry/core/pod/strategy.go decides it: the request's ``gracePeriodSeconds``, else the
    pod's ``terminationGracePeriodSeconds`` (defaulted to 30); 0 for a pod never scheduled or
    already finished; a negative value becomes 1."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    period = requested
    if period is None:
        period = spec.get("terminationGracePeriodSeconds")
        period = period if isinstance(period, int) and not isinstance(period, bool) else 0
    if not spec.get("nodeName") or status.get("phase") in ("Failed", "Succeeded"):
        period = 0
    return 1 if period < 0 else period
