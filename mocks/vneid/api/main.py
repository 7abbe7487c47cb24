"""The routers: the versioned API (`/v1`: accounts, audit), the agencies' token endpoint and the OIDC
endpoints at the root."""

from __future__ import annotations

from fastapi import APIRouter

from mocks.vneid.api.routes import accounts, audit, oauth, oidc
from mocks.vneid.models import Message

__all__ = ["api_router", "oauth_router", "oidc_router"]

api_router = APIRouter(
    responses={
        401: {"model": Message, "description": "no credentials, or a bad or expired token"},
        403: {"model": Message, "description": "the credentials' scopes do not allow this endpoint"},
        429: {"model": Message, "description": "over the agency's rate limit (see Retry-After)"},
    }
)
api_router.include_router(accounts.router)
api_router.include_router(audit.router)

oauth_router = oauth.router
oidc_router = oidc.router
