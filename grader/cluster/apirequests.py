"""Reading what a client sends the embedded API server: object bodies (JSON, or the protobuf
kubectl's typed commands send), DeleteOptions, and the refusals shaped like kube-apiserver's
(404 for an unknown path, 403 naming the user, verb and resource)."""
from __future__ import annotations

import json
from typing import Any

from . import apiproto
from .apiport import RequestAttributes
from .apitypes import ApiStatus
from .fieldcheck import strict_fields  # noqa: F401 - served from here to the HTTP layer


def delete_options(body: bytes, params: dict[str, str]) -> tuple[int | None, str | None]:
    """(gracePeriodSeconds, preconditions.uid) of a DELETE: the query parameter wins over the
    DeleteOptions body, as in the real server; a malformed value is 400, not a crash."""
    grace: Any = None
    uid: Any = None
    if body.strip():
        opts = parse(body)
        grace = opts.get("gracePeriodSeconds")
        uid = (opts.get("preconditions") or {}).get("uid") if isinstance(opts.get("preconditions"), dict) else None
    if params.get("gracePeriodSeconds", "") != "":
        grace = params["gracePeriodSeconds"]
    if grace is not None:
        try:
            grace = int(grace)
        except (TypeError, ValueError):
            raise ApiStatus(400, "BadRequest", f"invalid gracePeriodSeconds {grace!r}") from None
    return grace, (str(uid) if uid else None)


def parse(body: bytes) -> dict:
    try:
        obj = json.loads(body or b"null")
    except ValueError as exc:
        raise ApiStatus(400, "BadRequest", f"the object provided is unrecognized: {exc}") from None
    if not isinstance(obj, dict):
        raise ApiStatus(400, "BadRequest", "the object provided is unrecognized (must be a JSON object)")
    return obj


def parse_protobuf(body: bytes) -> dict:
    """kubectl's typed commands (``create namespace|configmap|secret``) send protobuf."""
    try:
        return apiproto.decode(body)
    except apiproto.Unsupported as exc:
        raise ApiStatus(415, "UnsupportedMediaType",
                        f"the embedded cluster does not decode protobuf bodies for {exc}: write the object "
                        f"in YAML and use `kubectl create -f FILE` (or `kubectl run`/`kubectl expose`)") from None


def not_found_path(path: str) -> ApiStatus:
    return ApiStatus(404, "NotFound", "the server could not find the requested resource",
                     details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def forbidden(a: RequestAttributes) -> ApiStatus:
    what = a.resource + (f"/{a.subresource}" if a.subresource else "")
    subject = f'{a.resource} "{a.name}"' if a.name else what
    scope = f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
    msg = (f'{subject} is forbidden: User "{a.user}" cannot {a.verb} resource "{what}" '
           f'in API group "{a.api_group}"{scope}')
    details: dict[str, Any] = {"kind": a.resource}
    if a.name:
        details["name"] = a.name
    if a.api_group:
        details["group"] = a.api_group
    return ApiStatus(403, "Forbidden", msg, details=details)
