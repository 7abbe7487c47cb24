"""The versioned API router (`/v1`): citizens, legacy-ID resolution, civil status, residence and the audit."""

from __future__ import annotations

from fastapi import APIRouter

from mocks.ndxp.api.routes import audit, citizens, civil, legacy, residence
from mocks.ndxp.models import Message

__all__ = ["api_router"]

api_router = APIRouter(
    responses={
        401: {"model": Message, "description": "missing or unknown X-API-Key"},
        403: {"model": Message, "description": "the key's role may not use this endpoint"},
        503: {"model": Message, "description": "temporarily unavailable; retry (see Retry-After)"},
    }
)
api_router.include_router(citizens.router)
api_router.include_router(legacy.router)
api_router.include_router(civil.router)
api_router.include_router(residence.router)
api_router.include_router(audit.router)
