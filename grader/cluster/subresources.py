"""The pod and workload subresources beyond ``status`` and ``proxy``: ``scale``, ``log`` and
``exec``, each in its own module; the HTTP layer hands them the request here (one hook)."""
from __future__ import annotations

from typing import Any

from . import podexec, podlogs, scale

NAMES = ("scale", "log", "exec")


def handle(handler: Any, api: Any, route: Any, verb: str, params: dict[str, str], body: bytes) -> None:
    """Answer ``route`` (its ``subresource`` is one of ``NAMES``) on ``handler``'s connection."""
    sub = route.subresource
    if sub == "scale":
        handler._send_json(200, scale.serve(api.store, api.admit, route.rt, route.namespace, route.name, verb,
                                            handler.headers.get("Content-Type") or "", body, "dryRun" in params))
    elif sub == "log":
        podlogs.serve(handler, api, route, params)
    else:
        podexec.serve(handler, api, route)


def start_stream(handler: Any, code: int, ctype: str, headers: dict[str, str] | None = None) -> None:
    """Send a chunked answer's head (the body follows with ``chunk`` and ``end_stream``)."""
    handler.send_response(code)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Transfer-Encoding", "chunked")
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler._record_once(code)
    handler._status = code


def chunk(handler: Any, data: bytes) -> None:
    if data:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        handler.wfile.flush()


def end_stream(handler: Any) -> None:
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()
