"""FastAPI dependencies every mock shares: what its app keeps on `app.state`, and the request ID.

`async def` on purpose: FastAPI runs plain `def` dependencies in the thread pool, a thread hop per
dependency per request for work that never blocks.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

__all__ = ["request_id", "state_dependency"]


def state_dependency(attribute: str) -> Callable[[Request], Awaitable[Any]]:
    """The dependency that answers `request.app.state.<attribute>` (read at every request: tests swap it)."""

    async def from_state(request: Request) -> Any:
        return getattr(request.app.state, attribute)

    return from_state


async def request_id(request: Request) -> str:
    """The request's ID (set by the request-ID middleware), else a fresh one."""
    return str(getattr(request.state, "request_id", None) or uuid.uuid4().hex)
