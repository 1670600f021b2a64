"""A real HTTP server on 127.0.0.1 that answers every GET with a test's handler: the stand-in for
a cluster's router (or any page) that probes are sent to. It records the Host of each request,
so a test can prove where the grader went, and where it did not."""
from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Handler = Callable[[BaseHTTPRequestHandler], None]


def send_page(h: BaseHTTPRequestHandler, body: bytes, status: int = 200, content_type: str = "text/html") -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    """A probe that hangs up (at its byte cap, its deadline, or on a connection it does not keep)
    is routine here, as for a real server: not a traceback in the test's output."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    def __init__(self, handler: Handler) -> None:
        self.seen: list[str] = []
        owner = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append(str(self.headers.get("Host")))
                handler(self)

        self.httpd = QuietServer(("127.0.0.1", 0), _H)
        threading.Thread(target=self.httpd.serve_forever, name="loopback", daemon=True).start()
        self.address = "%s:%d" % self.httpd.server_address[:2]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "LoopbackServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
