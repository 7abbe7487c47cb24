"""The routers: the versioned account API (`/v1`) and the OIDC endpoints at the root."""

from __future__ import annotations

from fastapi import APIRouter

from mocks.vneid.api.routes import accounts, oidc
from mocks.vneid.models import Message

__all__ = ["api_router", "oidc_router"]

api_router = APIRouter(
    responses={
        401: {"model": Message, "description": "missing or unknown X-API-Key"},
        403: {"model": Message, "description": "the key's role may not use this endpoint"},
    }
)
api_router.include_router(accounts.router)

oidc_router = oidc.router
