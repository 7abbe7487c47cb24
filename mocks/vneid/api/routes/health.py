"""`GET /health`: liveness, without an API key and outside fault injection."""

from __future__ import annotations

from fastapi import APIRouter

from mocks.vneid.models import HealthPublic

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> HealthPublic:
    """Answers as soon as the server accepts requests."""
    return HealthPublic()
