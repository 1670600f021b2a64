"""The instructor's live server: the class page at ``/``, its data at ``/class.json``, and
``GET /grades.json`` = ``{"updated": "<RFC 3339>", "namespaces": {ns: {ex: {"score", "max_score",
"errors"}}}}``.

A stdlib ``ThreadingHTTPServer``: it serves one instructor's browser and a script or two, and
only reads what the grading loop publishes (``Board.publish`` swaps in a new mapping under a
lock; a request never waits on a grading). It listens on loopback unless ``--serve-public``:
the page names every student and their progress, which is not for the whole network to read.
"""
from __future__ import annotations

import ipaddress
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence

from .classpage import class_data, render_class_page
from .errors import UsageError
from .i18n import Raw, t
from .results import ExerciseResult, Outcome

DEFAULT = "127.0.0.1:8080"


def parse_address(text: str, *, public: bool) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) to listen on; a usage error for a malformed one, or a
    non-loopback host without ``public``."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(t("--serve {a}: HOST:PORT の形で指定してください (例: 127.0.0.1:8080)",
                           "--serve {a}: give HOST:PORT, e.g. 127.0.0.1:8080", a=Raw(text)))
    if not public and not _loopback(host):
        raise UsageError(t("--serve {a}: ループバック以外のアドレスで公開するには --serve-public を付けてください (クラス全員の成績が見えます)",
                           "--serve {a}: not a loopback address; add --serve-public to serve the class's grades to the network",
                           a=Raw(text)))
    return host, int(port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def grades(by_ns: Mapping[str, Sequence[ExerciseResult]], updated: datetime) -> dict[str, Any]:
    return {"updated": rfc3339(updated), "namespaces": {
        ns: {r.exercise_id: {"score": _num(r.score), "max_score": _num(r.max_score),
                             "errors": r.count(Outcome.ERROR) + (r.error is not None)} for r in rs}
        for ns, rs in sorted(by_ns.items())}}


_DATA = "class_data"     # not a path (paths start with "/"): the page's data in Board's cache


class Board:
    """What the server shows: the latest results per namespace, swapped in whole."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._lock = threading.Lock()
        self._by_ns: dict[str, Sequence[ExerciseResult]] = {}
        self._updated = datetime.now(timezone.utc)
        # path → its answer, and _DATA → class_data, once per publish (dropped by the next one)
        self._cache: dict[str, Any] = {}
        self._version = 0

    def _once(self, key: str, version: int, build: Callable[[], Any]) -> Any:
        """``build()`` once per publish (``version``, from ``read``), however often it is asked
        for: a class page polls every second, and a script may poll faster."""
        with self._lock:
            got = self._cache.get(key) if version == self._version else None
        if got is None:
            got = build()
            with self._lock:
                if version == self._version:
                    self._cache[key] = got
        return got

    def answer(self, path: str, version: int, build: Callable[[], str]) -> bytes:
        return self._once(path, version, lambda: build().encode("utf-8"))

    def class_data(self, by_ns: Mapping[str, Sequence[ExerciseResult]], version: int) -> dict[str, Any]:
        """The page's data for the grades of ``version``, computed once for ``/`` and ``/class.json``."""
        return self._once(_DATA, version, lambda: class_data(by_ns, lang=self.lang))

    def publish(self, by_ns: Mapping[str, Sequence[ExerciseResult]], data: dict[str, Any] | None = None) -> None:
        """The grades now; ``by_ns``'s lists are never changed after (a new grade is a new list).
        ``data``: their ``class_data``, when the caller computed it already (for DIR/index.html)."""
        new = dict(by_ns)
        with self._lock:
            self._by_ns, self._updated = new, datetime.now(timezone.utc)
            self._cache, self._version = ({} if data is None else {_DATA: data}), self._version + 1

    def read(self) -> tuple[dict[str, Sequence[ExerciseResult]], datetime, int]:
        with self._lock:
            return self._by_ns, self._updated, self._version


class LiveServer:
    def __init__(self, board: Board, host: str, port: int) -> None:
        self.board = board

        class _H(_Handler):
            owner = self

        try:
            self.httpd = ThreadingHTTPServer((host, port), _H)
        except OSError as e:
            raise UsageError(t("--serve {h}:{p}: 待ち受けできません ({why})", "--serve {h}:{p}: cannot listen ({why})",
                               h=Raw(host), p=port, why=Raw(e.strerror or type(e).__name__))) from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="live-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/" if ":" not in str(host) else f"http://[{host}]:{port}/"

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: LiveServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        board = self.owner.board
        by_ns, updated, version = board.read()
        lang = board.lang
        if path == "/grades.json":
            self._send(200, "application/json", board.answer(path, version, lambda: json.dumps(grades(by_ns, updated))))
        elif path == "/class.json":
            self._send(200, "application/json", board.answer(path, version, lambda: json.dumps(
                board.class_data(by_ns, version), ensure_ascii=False)))
        elif path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", board.answer("/", version, lambda: render_class_page(
                by_ns, lang=lang, live="/class.json", data=board.class_data(by_ns, version))))
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, code: int, kind: str, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


__all__ = ["Board", "DEFAULT", "LiveServer", "grades", "parse_address", "rfc3339"]
