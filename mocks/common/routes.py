"""Routers every agency-facing mock serves the same way: `POST /oauth/token` (client credentials) and
`GET /audit` (the disclosure audit, for auditors).

The token endpoint: OAuth2 client credentials (RFC 6749 §4.4) → a short-lived bearer token. The client
authenticates with HTTP Basic (`client_secret_basic`) or with `client_id` and `client_secret` form fields
(`client_secret_post`), never both. `scope` is optional: without it the client gets every scope it is
registered for; with it, exactly those (each must be registered). Issuing a token discloses no citizen:
nothing here writes the audit.

The audit has no way to be changed: no route writes it but the disclosures themselves, and SQLite
triggers refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mocks.common.agency import AgencySettings, Principal
from mocks.common.audit import AuditLog
from mocks.common.models import AuditEntriesPublic, AuditEntryPublic, OAuthErrorPublic, TokenPublic
from mocks.common.security import (
    OAuthError,
    authenticate_client,
    basic_credentials,
    grant_scopes,
    parse_scope,
)

__all__ = ["audit_router", "token_router"]

# Tokens are credentials: no cache may keep them (RFC 6749 §5.1).
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorPublic, "description": "invalid_request, unsupported_grant_type, invalid_scope"},
    401: {"model": OAuthErrorPublic, "description": "invalid_client: unknown client or wrong secret"},
}


class TokenForm(BaseModel):
    """The token request's form fields (`application/x-www-form-urlencoded`)."""

    grant_type: str | None = None
    scope: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


def _client_credentials(form: TokenForm, authorization: str | None) -> tuple[str, str]:
    basic = basic_credentials(authorization)
    posted = form.client_id is not None or form.client_secret is not None
    if basic and posted:
        raise OAuthError("invalid_request", "send the client credentials in Basic or in the form, not both")
    if basic:
        return basic
    if not form.client_id or not form.client_secret:
        raise OAuthError(
            "invalid_client",
            "no client credentials: send Authorization: Basic base64(client_id:client_secret), "
            "or client_id and client_secret form fields",
            401,
        )
    return form.client_id, form.client_secret


def token_router(log: logging.Logger, realm: str) -> APIRouter:
    """`POST /oauth/token` of a mock whose `app.state` holds `settings` (`AgencySettings`) and `tokens`;
    `log` is the mock's package logger (it carries the ID-masking filter)."""
    router = APIRouter(prefix="/oauth", tags=["oauth"])

    def error(exc: OAuthError, request_id: str) -> JSONResponse:
        log.warning("request %s: token refused: %s", request_id, exc.error)
        headers = dict(_NO_STORE)
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = exc.challenge("Basic", realm=realm)
        body = OAuthErrorPublic(error=exc.error, error_description=exc.description).model_dump()
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @router.post("/token", response_model=TokenPublic, responses=_ERRORS)
    async def token(
        request: Request,
        form: Annotated[TokenForm, Form()],
        authorization: Annotated[str | None, Header(description="Basic base64(client_id:secret)")] = None,
    ) -> JSONResponse:
        """A bearer access token for the authenticated client, valid `expires_in` seconds."""
        settings: AgencySettings = request.app.state.settings
        request_id = str(getattr(request.state, "request_id", "-"))
        try:
            if form.grant_type != "client_credentials":
                raise OAuthError(
                    "unsupported_grant_type", "grant_type must be client_credentials (the only grant here)"
                )
            client_id, secret = _client_credentials(form, authorization)
            client = authenticate_client(settings.oauth_clients, client_id, secret)
            scopes = grant_scopes(client, parse_scope(form.scope))
        except OAuthError as exc:
            return error(exc, request_id)
        access_token, claims = request.app.state.tokens.issue(client_id, scopes)
        log.info("request %s: token issued to %s (scope %s)", request_id, client_id, claims.scope)
        body = TokenPublic(
            access_token=access_token, expires_in=claims.expires_at - claims.issued_at, scope=claims.scope
        )
        return JSONResponse(body.model_dump(), headers=_NO_STORE)

    return router


def audit_router(auditor: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """`GET /audit` of a mock whose `app.state.audit` is its `AuditLog`; `auditor` is the dependency
    that admits auditors only (the `audit.read` scope)."""
    router = APIRouter(prefix="/audit", tags=["audit"])

    @router.get("", dependencies=[Depends(auditor)])
    async def read_audit(
        request: Request,
        agency: Annotated[str | None, Query(description="only this agency's disclosures")] = None,
        request_id: Annotated[str | None, Query(description="only this request's disclosures")] = None,
        personal_id: Annotated[str | None, Query(description="only this citizen's disclosures")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> AuditEntriesPublic:
        """The newest `limit` disclosures matching every filter given, newest first.

        To trace one request: send your own `X-Request-ID` (or read the one echoed) and filter by it,
        with the citizen's `personal_id`.
        """
        audit: AuditLog = request.app.state.audit
        entries = await run_in_threadpool(
            audit.read, agency=agency, request_id=request_id, personal_id=personal_id, limit=limit
        )
        public = [AuditEntryPublic.model_validate(e, from_attributes=True) for e in entries]
        return AuditEntriesPublic(entries=public, count=len(public))

    return router
