"""What crosses the wire between the grader and an API server, below both ``kube`` (the client)
and ``proxy`` (whose answer is it?): an HTTP answer as a probe saw it, "no answer at all", the
statuses worth retrying, and how to read a ``Status`` body and a ``Retry-After`` header.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import ClusterUnavailable
from .i18n import Text
from .sanitize import clean

TRANSIENT = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpAnswer:
    """What an HTTP probe saw; ``error`` is set when no HTTP answer came at all."""

    status: int
    body: bytes = b""
    error: str | None = None
    headers: dict[str, str] | None = None
    clipped: bool = False   # the grader kept only the start of the body (memory budget of a batch)
    cut: bool = False       # the answer was longer than the probe's cap (1 MiB): ``body`` is its start

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Unreachable(ClusterUnavailable):
    """No HTTP answer at all (refused, reset, timed out, TLS); ``cause`` says which, for retries."""

    def __init__(self, message: Text, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


def status_doc(body: Any) -> dict[str, Any] | None:
    """The body as a Kubernetes ``Status`` object, if it is one."""
    try:
        doc = json.loads(body)
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("kind") == "Status" else None


def status_message(body: Any, limit: int = 300, doc: dict[str, Any] | None = None) -> str | None:
    """The Status ``message`` (else ``reason``, else the body's start), cleaned and cut to
    ``limit``: whoever answered chose the text (``sanitize``). None for an empty non-Status body.
    ``doc``: the body as a ``Status``, if the caller has read it already."""
    doc = doc if doc is not None else status_doc(body)
    if doc is not None:
        return clean(doc.get("message") or doc.get("reason") or "", limit)
    if not body:
        return None
    return clean(body[:limit * 4] if isinstance(body, (bytes, str)) else body, limit)


def retry_after(headers: Any) -> float | None:
    """The server's ``Retry-After`` in seconds, if it sent a number."""
    try:
        value = headers.get("Retry-After") if headers else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


__all__ = ["TRANSIENT", "HttpAnswer", "Unreachable", "status_doc", "retry_after"]
