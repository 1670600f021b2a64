"""The pod and workload subresources beyond ``status`` and ``proxy``: ``scale``, ``log`` and
``exec``, each in its own module; the HTTP layer hands them the request here (one hook)."""
from __future__ import annotations

from typing import Any

from . import podexec, podlogs, scale
from .apitypes import ApiStatus

NAMES = ("scale", "log", "exec", "portforward", "attach")
# Not simulated: a plain 400 Status that says what to use instead, which kubectl prints after
# "error upgrading connection:" (rather than a 404 "could not find the requested resource", which
# reads as a broken server).
UNSIMULATED = {
    "portforward": "port-forward is not simulated by grade sandbox: reach a pod or service with kubectl exec POD -- "
                   "curl http://SERVICE/, or a route through the router line grade sandbox prints (curl --connect-to ...)",
    "attach": "attach is not simulated by grade sandbox: read the container's output with kubectl logs -f POD",
}


def handle(handler: Any, api: Any, route: Any, verb: str, params: dict[str, str], body: bytes) -> None:
    """Answer ``route`` (its ``subresource`` is one of ``NAMES``) on ``handler``'s connection."""
    sub = route.subresource
    if sub == "scale":
        handler._send_json(200, scale.serve(api.store, api.admit, route.rt, route.namespace, route.name, verb,
                                            handler.headers.get("Content-Type") or "", body, "dryRun" in params))
    elif sub in UNSIMULATED:
        raise ApiStatus(400, "BadRequest", UNSIMULATED[sub])
    elif sub == "log":
        podlogs.serve(handler, api, route, params)
    else:
        podexec.serve(handler, api, route)
