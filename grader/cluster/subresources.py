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
