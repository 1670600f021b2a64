"""The embedded API server's port and its instruments: plain HTTP and TLS on one loopback port
(kubectl sends kubeconfig credentials only over TLS, the Python client is happy with either),
failure injection for retry and timeout tests, and the records an authorizer decides on and a
test counts.  Kept apart from ``apiserver`` so the request handling there reads on its own."""
from __future__ import annotations

import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

__all__ = ["RequestAttributes", "RequestRecord", "Faults", "DualServer", "end_with", "self_signed_cert", "server_tls"]


def end_with(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    """End the head a handler has begun and send it with ``body`` in one write, as Go's net/http
    sends a small answer (kube-apiserver's, and the answers it proxies): it keeps the answer in
    its connection's 4 KiB buffer and writes head and body together when the handler returns,
    one TLS record. ``end_headers`` and a second write made two, and every client two reads."""
    head = getattr(handler, "_headers_buffer", [])      # what send_response and send_header buffered
    handler._headers_buffer = []
    end = b"\r\n" if handler.request_version != "HTTP/0.9" else b""     # as end_headers does
    handler.wfile.write(b"".join(head) + end + body)


@dataclass(frozen=True)
class RequestAttributes:
    """What an authorizer decides on, named like the Kubernetes SubjectAccessReview fields."""

    user: str
    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str


@dataclass(frozen=True)
class RequestRecord:
    """One served request, for tests and benchmarks that count round trips."""

    method: str
    path: str
    query: str
    user: str
    verb: str
    resource: str
    namespace: str
    status: int


@dataclass
class Faults:
    """Failure injection for the API port only; retries, timeouts and watch resumes are tested
    against it.

    Every request, watches included, first meets ``latency``, ``error_rate``/``error_statuses``
    (``retry_after`` on 429/503), ``reset_rate`` and ``fail_next()``, filtered by ``match(method,
    path)``. Open watch streams are hit on demand, each call answering how many streams it hit
    (a test polls ``open_watches()`` first so its fault lands on a stream that is there):

    * ``expire_watches(resource=None)``: each open stream (of ``resource``, a plural such as
      ``"pods"``, or all) gets an ERROR event with a 410 Expired Status and ends, as a real server
      ends a watch whose resourceVersion was compacted or whose client fell behind; the client
      must relist;
    * ``drop_watches(resource=None)``: each open stream's connection is closed without the
      closing chunk, as a network drop or a restarted server does; the client must re-watch;
    * ``open_watches(resource=None)``: how many streams are open now.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503, 504, 429)
    retry_after: int | None = None
    reset_rate: float = 0.0
    seed: int | None = None
    match: Callable[[str, str], bool] | None = None
    _next: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random | None = None
    _watches: Any = field(default=None, repr=False)   # the server's apiwatch.WatchHub

    def expire_watches(self, resource: str | None = None) -> int:
        """End open watch streams with a 410 ERROR event; how many (see the class docstring)."""
        return self._watches.inject("expire", resource) if self._watches is not None else 0

    def drop_watches(self, resource: str | None = None) -> int:
        """Cut open watch streams' connections; how many (see the class docstring)."""
        return self._watches.inject("drop", resource) if self._watches is not None else 0

    def open_watches(self, resource: str | None = None) -> int:
        """How many watch streams (of ``resource``, or all) are open now."""
        return self._watches.open_streams(resource) if self._watches is not None else 0

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """Make the next ``n`` matching requests fail with ``status``."""
        with self._lock:
            self._next.extend([status] * n)

    def clear(self) -> None:
        """Back to a healthy server."""
        with self._lock:
            self.latency = self.error_rate = self.reset_rate = 0.0
            self.retry_after = None
            self.match = None
            self._next.clear()

    def _decide(self, method: str, path: str) -> tuple[float, int | None, bool]:
        """(delay, failing status or None, reset connection) for one request."""
        if self.match is not None and not self.match(method, path):
            return 0.0, None, False
        with self._lock:
            if self._rng is None or (self.seed is not None and getattr(self, "_seeded", None) != self.seed):
                self._rng = random.Random(self.seed)
                object.__setattr__(self, "_seeded", self.seed)
            if self._next:
                return self.latency, self._next.pop(0), False
            reset = self.reset_rate > 0 and self._rng.random() < self.reset_rate
            status = None
            if not reset and self.error_rate > 0 and self._rng.random() < self.error_rate:
                status = self._rng.choice(self.error_statuses)
            return self.latency, status, reset



# --- TLS: kubectl only sends kubeconfig credentials over TLS, so the port speaks both ----------
_CERT: tuple[str, str] | None = None
_CERT_LOCK = threading.Lock()


def self_signed_cert() -> tuple[str, str] | None:
    """(cert PEM, key PEM) for 127.0.0.1/localhost, made once per process by openssl.

    Held in memory: the files openssl writes are removed at once, so no run (nor a killed one)
    leaves a directory with a private key behind in the temp directory."""
    global _CERT
    with _CERT_LOCK:
        if _CERT is None and shutil.which("openssl"):
            with tempfile.TemporaryDirectory(prefix="grader-embedded-tls-") as d:
                crt, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
                r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
                                    "-subj", "/CN=grader-embedded-apiserver", "-keyout", key, "-out", crt,
                                    "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"],
                                   capture_output=True, timeout=30)
                if r.returncode == 0:
                    with open(crt) as c, open(key) as k:
                        _CERT = (c.read(), k.read())
        return _CERT


def server_tls() -> tuple[ssl.SSLContext | None, str | None]:
    """The API port's TLS context and its CA PEM (for kubeconfigs), or (None, None) without openssl.

    ``load_cert_chain`` only reads files: the PEMs go to a private temp directory for that one call."""
    cert = self_signed_cert()
    if cert is None:
        return None, None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="grader-embedded-tls-") as d:
        paths = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        for path, pem in zip(paths, cert):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pem)
        ctx.load_cert_chain(*paths)
    return ctx, cert[0]


class DualServer(ThreadingHTTPServer):
    """Plain HTTP and TLS on one port: the first byte of a connection says which (0x16 = TLS)."""

    daemon_threads = True
    request_queue_size = 256   # the default backlog of 5 drops concurrent connects (1 s SYN retry)
    tls: ssl.SSLContext | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a probe's cut at its byte cap, kubectl's Ctrl-C) is
        routine for a server, not a traceback on the student's or the test's console."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request.settimeout(10)
                first = request.recv(1, socket.MSG_PEEK)
                request.settimeout(None)
                if first == b"\x16":
                    request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

