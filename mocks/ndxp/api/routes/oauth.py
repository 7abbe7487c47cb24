"""`POST /oauth/token`: OAuth2 client credentials (RFC 6749 §4.4) → a short-lived bearer token.

The client authenticates with HTTP Basic (`client_secret_basic`) or with `client_id` and
`client_secret` form fields (`client_secret_post`), never both. `scope` is optional: without it the
client gets every scope it is registered for; with it, exactly those (each must be registered).
Nothing here touches the audit: issuing a token discloses no citizen.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mocks.common.security import (
    OAuthError,
    authenticate_client,
    basic_credentials,
    grant_scopes,
    parse_scope,
)
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.models import OAuthErrorPublic, TokenPublic

__all__ = ["router"]

_log = logging.getLogger("mocks.ndxp")  # the package logger: it carries the ID-masking filter

router = APIRouter(prefix="/oauth", tags=["oauth"])

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


def _error(exc: OAuthError, request_id: str) -> JSONResponse:
    _log.warning("request %s: token refused: %s", request_id, exc.error)
    headers = dict(_NO_STORE)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = exc.challenge("Basic")
    body = OAuthErrorPublic(error=exc.error, error_description=exc.description).model_dump()
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


@router.post("/token", response_model=TokenPublic, responses=_ERRORS)
async def token(
    request: Request,
    form: Annotated[TokenForm, Form()],
    authorization: Annotated[str | None, Header(description="Basic base64(client_id:secret)")] = None,
) -> JSONResponse:
    """A bearer access token for the authenticated client, valid `expires_in` seconds."""
    settings: NdxpSettings = request.app.state.settings
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
        return _error(exc, request_id)
    access_token, claims = request.app.state.tokens.issue(client_id, scopes)
    _log.info("request %s: token issued to %s (scope %s)", request_id, client_id, claims.scope)
    body = TokenPublic(
        access_token=access_token, expires_in=claims.expires_at - claims.issued_at, scope=claims.scope
    )
    return JSONResponse(body.model_dump(), headers=_NO_STORE)
