"""Excerpts of what a caller sent, for the error answers that quote it: never the whole of it (a 20 MB
value quoted in a 422 made a 147 MB answer). Pure."""

from __future__ import annotations

__all__ = ["EXCERPT_CHARS", "excerpt"]

EXCERPT_CHARS = 100


def excerpt(value: str, limit: int = EXCERPT_CHARS) -> str:
    """`value`, or its first characters and "..." when it is longer than `limit`."""
    return value if len(value) <= limit else value[: limit - 3] + "..."
