"""Watch streams through the ``kubernetes`` client: ``grader.kube``'s rules, for ``watch=true``.

A list that also says the resourceVersion it was read at (a watch starts from it), and one watch
request read line by line. As in ``kube``: raw JSON (no model deserialisation), the client's
auth/TLS/proxies from kubeconfig, and answers turned into the project's errors:

* an HTTP 403/404 at the start                 → ``CannotSee`` (the caller watches per namespace)
* ``410 Gone`` (an ``ERROR`` event whose Status has code 410, as a real API server sends it, or
  an HTTP 410)                                → ``Expired`` (the caller lists again)
* a connection closed mid-stream, a line over ``MAX_LINE``, a line that is not an event
                                              → ``Dropped`` (the caller backs off, lists again)

Event shapes (one JSON object per line of a chunked 200 answer: ``{"type": "ADDED", "object":
{...}}``; ``BOOKMARK`` carries only ``metadata.resourceVersion``; expiry is an ``ERROR`` event
with a ``Status`` of code 410, reason ``Expired``, message "too old resource version: ...") are
those of https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
and of kubeclient's report that a watch never answers 410 as an HTTP status
(https://github.com/ManageIQ/kubeclient/issues/452).
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterator

from .errors import ApiError
from .i18n import Raw, t
from .kube import Api, resource
from .sanitize import clean

# One event line may hold a whole object; a ConfigMap or Secret is at most 1 MiB in etcd, so a
# line ten times that is not an event of a sane server, and is never buffered past this.
MAX_LINE = 16 << 20
_SLICE = 64 << 10


class Expired(ApiError):
    """The resourceVersion a watch started from is gone (410): list again, then watch."""


class Dropped(ApiError):
    """The stream ended abnormally (closed mid-answer, an oversized or malformed line)."""


def list_versioned(api: Api, kind: str, namespace: str | None = None,
                   limit: int = Api.PAGE) -> tuple[list[dict[str, Any]], str]:
    """Every object of ``kind`` and the list's resourceVersion (of its last page), which a watch
    started from sees every change after this list and none before it."""
    res = resource(kind)
    items: list[dict[str, Any]] = []
    cont: str | None = None
    version = ""
    seen: set[str] = set()
    while True:
        body = api._call(res.path(namespace), [("limit", limit), *([("continue", cont)] if cont else [])])
        got = body.get("items") if isinstance(body, dict) else None
        meta = body.get("metadata") if isinstance(body, dict) else None
        items += [i for i in got if isinstance(i, dict)] if isinstance(got, list) else []
        meta = meta if isinstance(meta, dict) else {}
        version = str(meta.get("resourceVersion") or version)
        cont = meta.get("continue") if isinstance(meta.get("continue"), str) else None
        if not cont:
            return items, version
        if cont in seen:
            raise ApiError(t("API サーバーが {k} の一覧で同じ continue トークンを繰り返しました",
                             "the API server repeated a continue token while listing {k}", k=Raw(res.plural)))
        seen.add(cont)


class Stream:
    """One watch request. ``close()`` (from any thread) ends the read at once."""

    def __init__(self, api: Api, kind: str, namespace: str | None, version: str, *,
                 timeout_seconds: int = 300, max_line: int = MAX_LINE) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.version = version
        self.timeout_seconds = timeout_seconds
        self.max_line = max_line
        self._raw: Any = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            raw = self._raw
        if raw is not None:
            try:
                raw.shutdown()
            except (AttributeError, OSError):
                pass

    def events(self) -> Iterator[dict[str, Any]]:
        """Each event as ``{"type": ..., "object": {...}}``, ending quietly when the server ends
        the watch at ``timeoutSeconds`` or ``close()`` is called."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        res = resource(self.kind)
        query = [("watch", "true"), ("resourceVersion", self.version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", self.timeout_seconds)]
        # The read timeout outlasts the server's own end of the watch: a silent connection past
        # it is a dead one.
        timeout = (self.api.retry.connect_timeout, self.timeout_seconds + 30.0)
        with self.api._lock:
            self.api.requests_made += 1
        try:
            m, url, hdrs, _, _ = self.api._client.param_serialize(
                method="GET", resource_path=res.path(self.namespace), query_params=query,
                header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
            raw = self.api._client.call_api(m, url, header_params=hdrs, _request_timeout=timeout).response
        except (ApiException, HTTPError, OSError) as e:
            raise self.api._unreachable(e) from None
        with self._lock:
            self._raw = raw
        if self._closed.is_set():
            raw.close()
            return
        try:
            if raw.status == 410:
                raise Expired(t("監視の開始点が古すぎます (410)", "the watch's resourceVersion is too old (410)"), 410)
            if not 200 <= raw.status < 300:
                body = raw.read(64 << 10)
                raise self.api._error(raw.status, raw.headers, body)
            yield from self._lines(lambda: raw.read1(_SLICE), HTTPError)
        finally:
            with self._lock:
                self._raw = None
            raw.close()
            raw.release_conn()

    def _lines(self, read: Callable[[], bytes], http_error: type[BaseException]) -> Iterator[dict[str, Any]]:
        buf = b""
        while True:
            try:
                chunk = read()
            except (http_error, OSError, ValueError) as e:
                if self._closed.is_set():
                    return
                raise Dropped(t("監視の接続が切れました ({e})", "the watch connection dropped ({e})",
                                e=Raw(clean(type(e).__name__, 60)))) from None
            if not chunk:
                if buf.strip() and not self._closed.is_set():
                    raise Dropped(t("監視の応答が行の途中で終わりました", "the watch answer ended mid-line"))
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if len(line) > self.max_line:
                    buf = line
                    break
                if line.strip():
                    yield self._event(line)
            if len(buf) > self.max_line:
                raise Dropped(t("監視のイベントが {n} バイトを超えました", "a watch event passed {n} bytes",
                                n=self.max_line))

    def _event(self, line: bytes) -> dict[str, Any]:
        try:
            event = json.loads(line)
        except ValueError:
            raise Dropped(t("監視のイベントが JSON ではありません", "a watch event is not JSON")) from None
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise Dropped(t("監視のイベントの形が違います", "a watch event has the wrong shape"))
        if event.get("type") == "ERROR":
            status = event["object"]
            code = status.get("code")
            message = clean(status.get("message") or "", 200)
            if code == 410 or status.get("reason") in ("Expired", "Gone"):
                raise Expired(t("監視の開始点が古すぎます ({m})", "the watch's resourceVersion is too old ({m})",
                                m=Raw(message)), 410)
            raise Dropped(t("監視がエラーで終わりました ({c}: {m})", "the watch ended with an error ({c}: {m})",
                            c=Raw(str(code)), m=Raw(message)), code if isinstance(code, int) else 0)
        return event


__all__ = ["Dropped", "Expired", "MAX_LINE", "Stream", "list_versioned"]
