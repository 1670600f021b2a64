"""``pods/exec`` (placeholder until the WebSocket exec lands)."""
from __future__ import annotations

from typing import Any

from .apitypes import ApiStatus


def serve(handler: Any, api: Any, route: Any) -> None:
    raise ApiStatus(400, "BadRequest", "Upgrade request required")
