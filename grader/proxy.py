"""Service-proxy probes: is this answer the student's service, or the API server failing?

Whatever comes back through ``/api/v1/namespaces/NS/services/SVC:PORT/proxy/PATH`` may have
been written by the student's pod, and a pod can send any status with any body -- including a
Kubernetes ``Status`` JSON that reads exactly like the API server's own 500, 503, 401 or 403.
So an answer's *content* can only ever make it suspect; the grader blames itself (ERROR) only
when one of its *own* requests fails:

1. Every attempt is bounded (``Api.fetch``: 5 s overall, 1 MiB, identity encoding).
2. An answer that could be the API server's failure -- a ``Status`` with 429 or a 5xx other than
   the proxy's own verdicts on the service ("no endpoints available for service", "error trying
   to reach service", "no service port"), a ``Status`` 401, a ``Status`` 403 ``Forbidden``, or no
   HTTP answer at all -- is retried with short jittered backoff while the probe's deadline lasts
   (401/403 are not transient: they go to step 3 at once). Anything else is the answer. A retry
   that the deadline cuts shows nothing new: the answer seen before it stands.
3. If it persists, one control request asks the API server something no pod can answer: the
   same service's proxy on a port name that cannot exist (longer than the 15 characters a
   port name may have). It passes the same authentication, the same RBAC rule (``get
   services/proxy``) and the same proxy code, and a healthy server answers it itself with
   ``404`` or ``503 no endpoints available``. If the control fails too (retried like any read),
   the check is an ERROR with the API server's words; if it is answered, the suspect answer was
   the pod's: a failure of the student's service with its status and a short, cleaned excerpt.

Hence a forged 401 can never stop the run as "cluster unavailable", a forged 500 can never turn
a broken service into "not your fault", and a real outage still can never cost a student a point.
A body that trickles or breaks off after the headers came is the pod's (the API server forwards
the pod's stream once it has its headers).
"""
from __future__ import annotations

import random
import time
from typing import Any, Callable, Protocol

from .bounded import too_slow
from .errors import ApiError, CannotSee
from .i18n import Raw, t
from .sanitize import clean
from .wire import TRANSIENT as _TRANSIENT, HttpAnswer, Unreachable
from .wire import retry_after as _retry_after, status_doc as _status_doc, status_message


class Api(Protocol):
    """What this module needs of ``grader.kube.Api`` (which calls it: ``Api.service_proxy``), so
    that the client depends on this module and not the other way round."""

    def fetch(self, path: str, *, deadline: float, max_body: int, seconds: float) -> HttpAnswer: ...

    def _call(self, path: str, query: list[tuple[str, Any]] | None = None, *, raw: bool = False,
              retry: bool = True, accept: Callable[[int, bytes], bool] | None = None) -> Any: ...

# kube-apiserver's own verdicts on a student's service (the proxy's and ResourceLocation's messages).
VERDICTS = ("no endpoints available for service", "error trying to reach service", "no service port")
# A port name no Service can have (IANA service names are at most 15 characters).
CONTROL_PORT = "grader-control-probe"
EXCERPT = 120
_BASE, _CAP = 0.05, 0.5     # backoff between attempts: many fit in 5 s, so a flaky server rarely exhausts them
# ``doc`` not given: the body is read here. None given means the caller read it and it is no Status.
_UNREAD: Any = object()


def service_proxy(api: "Api", namespace: str, service: str, port: int | str, path: str = "/",
                  max_body: int = 1 << 20, timeout: float = 5.0) -> HttpAnswer:
    """The student's service's answer to ``GET path`` (see the module docstring)."""
    url = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
    deadline = time.monotonic() + timeout
    suspect = HttpAnswer(0, error="no attempt")
    attempt = 0
    while True:
        retry_after: float | None = None
        try:
            answer = api.fetch(url, deadline=deadline, max_body=max_body, seconds=timeout)
        except Unreachable as e:
            if e.cause == "tls":        # the grader's own TLS setup: no pod can cause it
                raise
            late = e.cause == "timeout" or time.monotonic() >= deadline - 0.05
            # a retry the deadline cut shows nothing new: an HTTP answer seen before it stands
            if not (late and suspect.status):
                suspect = HttpAnswer(0, error=too_slow(timeout) if late else
                                     "the connection closed without an answer")
        else:
            doc = _status_doc(answer.body) if answer.status >= 400 else None     # read once, used twice
            kind = suspicion(answer.status, answer.body, doc)
            if kind is None:
                return evidence(answer, doc=doc)
            suspect = answer
            if kind == "auth":
                break
            retry_after = _retry_after(answer.headers)
        delay = max(retry_after or 0.0, random.uniform(0, min(_CAP, _BASE * 2 ** attempt)))
        if time.monotonic() + delay >= deadline - 0.05:
            break
        time.sleep(delay)
        attempt += 1
    control(api, namespace, service)
    return evidence(suspect, confirmed=True)


def suspicion(status: int, body: bytes, doc: dict[str, Any] | None = _UNREAD) -> str | None:
    """Why an answer could be the API server's own failure ("auth", "transient"), or None;
    ``doc``: the body as a ``Status`` (None: not one), if the caller has read it already."""
    if status < 400:
        return None
    doc = _status_doc(body) if doc is _UNREAD else doc
    if doc is None:
        return None         # not a Status: only a pod writes that
    if status == 401 or (status == 403 and doc.get("reason") == "Forbidden"):
        return "auth"
    if status in _TRANSIENT and (status == 429 or not _is_verdict(doc)):
        return "transient"
    return None


def _is_verdict(doc: dict[str, Any] | None) -> bool:
    message = str((doc or {}).get("message") or "").lower()
    return any(v in message for v in VERDICTS)


def _healthy(status: int, body: bytes) -> bool:
    """The control request was answered by the API server itself (it never reaches a pod)."""
    return status in (400, 404) or (status in _TRANSIENT and _is_verdict(_status_doc(body)))


def control(api: "Api", namespace: str, service: str) -> None:
    """Return if the API server answers its own proxy request; raise the grader's error if not.

    ``Unauthorized`` (401) and ``Unreachable`` propagate as they are (the run stops: the grader
    cannot use the cluster); 403 means the grader may not use the service proxy here.
    """
    url = f"/api/v1/namespaces/{namespace}/services/{service}:{CONTROL_PORT}/proxy/"
    try:
        api._call(url, raw=True, accept=_healthy)
    except CannotSee as e:
        raise CannotSee(t(
            "採点側がサービスプロキシを使えません ({s}: {m})。services/proxy の get 権限を確認してください。",
            "the grader may not use the service proxy here ({s}: {m}); check its permission to get services/proxy.",
            s=e.status, m=Raw(status_message(e.body, EXCERPT) or clean(e.reason, EXCERPT))), e.status, body=e.body) from None
    except ApiError as e:
        if e.status:
            raise ApiError(t(
                "API サーバーがサービスプロキシの要求に {s} を返し続けました: {m}",
                "the API server kept answering {s} to the service proxy request: {m}",
                s=e.status, m=Raw(status_message(e.body, EXCERPT) or "")), e.status, body=e.body) from None
        raise


def evidence(answer: HttpAnswer, confirmed: bool = False, doc: dict[str, Any] | None = _UNREAD) -> HttpAnswer:
    """The answer as evidence about the student's service: a ``Status`` error body (the proxy's
    verdict, or a pod's imitation once the control request proved the server healthy) becomes
    ``error``, a short cleaned excerpt naming who said it."""
    if answer.status < 400 or answer.error is not None:
        return answer
    doc = _status_doc(answer.body) if doc is _UNREAD else doc
    if doc is None:
        return answer
    said = status_message(answer.body, EXCERPT, doc) or f"Status {answer.status}"
    if confirmed:       # it reads like the API server's, but the API server said otherwise
        said = f"from the service itself: {said}"
    return HttpAnswer(answer.status, answer.body, error=said, headers=answer.headers, cut=answer.cut)
