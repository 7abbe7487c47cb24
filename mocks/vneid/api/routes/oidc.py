"""The OIDC endpoints: discovery, JWKS, /authorize (log-in form and its POST), /token, /userinfo.

Errors follow RFC 6749 and OIDC Core: at /authorize they go back to the client's redirect URI with the
`state` (unless the client or the URI is in doubt: then a 400 page); at /token and /userinfo they are JSON
`{"error", "error_description"}` (401 with `WWW-Authenticate` for client and token errors).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from mocks.vneid.deps import IssuerDep, LoginFaultsDep, ProviderDep
from mocks.vneid.exceptions import OidcError
from mocks.vneid.oidc.page import error_page, login_page
from mocks.vneid.oidc.requests import with_query

__all__ = ["router"]

router = APIRouter(tags=["oidc"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "log-in temporarily unavailable (see Retry-After)"}
}


class LoginForm(BaseModel):
    """The authorization request's parameters (echoed from the log-in page) and the citizen's credentials."""

    personal_id: str = ""
    passcode: str = ""
    response_type: str | None = None
    client_id: str | None = None
    redirect_uri: str | None = None
    scope: str | None = None
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    acr_values: str | None = None
    prompt: str | None = None


class TokenForm(BaseModel):
    grant_type: str | None = None
    code: str | None = None
    redirect_uri: str | None = None
    code_verifier: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


def _authorize_error(params: dict[str, str], exc: OidcError, status_code: int) -> Response:
    if not exc.redirect:
        return HTMLResponse(error_page(exc.error, exc.description), status_code=400, headers=_NO_STORE)
    target = with_query(
        params["redirect_uri"],
        {"error": exc.error, "error_description": exc.description, "state": params.get("state")},
    )
    return RedirectResponse(target, status_code=status_code)


def _json_error(exc: OidcError, www_authenticate: str | None = None) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status_code == 401 and www_authenticate:
        headers["WWW-Authenticate"] = www_authenticate
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


@router.get("/.well-known/openid-configuration")
async def discovery(provider: ProviderDep, issuer: IssuerDep) -> dict[str, Any]:
    """The provider's metadata: endpoints, PKCE S256, RS256 ID tokens, pairwise subjects, levels 1/2."""
    return provider.discovery(issuer)


@router.get("/jwks")
async def jwks(provider: ProviderDep) -> dict[str, Any]:
    """The public key(s) ID tokens are signed with (JWK Set)."""
    return provider.key.jwks()


@router.get("/authorize", dependencies=[LoginFaultsDep], response_class=HTMLResponse, responses=_UNAVAILABLE)
async def authorize_page(request: Request, provider: ProviderDep) -> Response:
    """Check the authorization request and show the log-in form (personal ID and passcode)."""
    params = dict(request.query_params)
    try:
        checked = provider.check_request(params)
    except OidcError as exc:
        return _authorize_error(params, exc, 302)
    return HTMLResponse(login_page(checked), headers=_NO_STORE)


@router.post("/authorize", dependencies=[LoginFaultsDep], responses=_UNAVAILABLE)
async def authorize_login(
    request: Request, form: Annotated[LoginForm, Form()], provider: ProviderDep
) -> Response:
    """Log the citizen in and redirect to the client with a code (303), or with an error and the state.

    The request's parameters may come as form fields (from the log-in page) or in the query string;
    the credentials only as form fields, so they never appear in a URL or an access log.
    """
    fields = form.model_dump(exclude_none=True)
    personal_id, passcode = fields.pop("personal_id"), fields.pop("passcode")
    # Credentials are read from the form only; any in the query string are ignored.
    query = {k: v for k, v in request.query_params.items() if k not in ("personal_id", "passcode")}
    params = {**query, **fields}
    try:
        checked = provider.check_request(params)
        target = await run_in_threadpool(provider.login, checked, personal_id, passcode)
    except OidcError as exc:
        return _authorize_error(params, exc, 303)
    return RedirectResponse(target, status_code=303)


@router.post("/token", dependencies=[LoginFaultsDep], responses=_UNAVAILABLE)
async def token(
    form: Annotated[TokenForm, Form()],
    provider: ProviderDep,
    issuer: IssuerDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Exchange a code and its PKCE verifier for an ID token (RS256) and an access token."""
    fields = form.model_dump(exclude_none=True)
    try:
        tokens = await run_in_threadpool(provider.token, fields, authorization, issuer)
    except OidcError as exc:
        return _json_error(exc, 'Basic realm="vneid"')
    return JSONResponse(tokens, headers=_NO_STORE)


@router.api_route("/userinfo", methods=["GET", "POST"])
async def userinfo(
    provider: ProviderDep, authorization: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """The claims the access token may read: `sub`, the level (`acr`/`loa`), and with `profile` the name,
    birth date and gender."""
    try:
        claims = await run_in_threadpool(provider.userinfo, authorization)
    except OidcError as exc:
        challenge = f'Bearer error="{exc.error}", error_description="{exc.description}"'
        return _json_error(exc, challenge)
    return JSONResponse(claims, headers=_NO_STORE)
