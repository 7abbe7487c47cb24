"""Bodies every agency-facing mock answers the same way: tokens, OAuth errors, the disclosure audit."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["AuditEntriesPublic", "AuditEntryPublic", "OAuthErrorPublic", "TokenPublic"]


class AuditEntryPublic(BaseModel):
    """One disclosure: who (agency), which citizen, which fields, when (UTC), why, under which request."""

    seq: int
    at: datetime
    agency: str
    personal_id: str
    fields: list[str]
    purpose: str
    request_id: str
    endpoint: str


class AuditEntriesPublic(BaseModel):
    entries: list[AuditEntryPublic]
    count: int


class TokenPublic(BaseModel):
    """`POST /oauth/token`: a bearer access token (RFC 6749 §5.1)."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int = Field(description="seconds until the token expires")
    scope: str = Field(description="the scopes granted, space-separated")


class OAuthErrorPublic(BaseModel):
    """An OAuth error (RFC 6749 §5.2): `invalid_client`, `invalid_scope`, `unsupported_grant_type` …"""

    error: str
    error_description: str
