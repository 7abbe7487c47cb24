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

from mocks.common.models import OAuthErrorPublic
from mocks.common.security import www_authenticate
from mocks.vneid.deps import REALM, IssuerDep, LoginFaultsDep, ProviderDep
from mocks.vneid.exceptions import OidcError
from mocks.vneid.models import Message
from mocks.vneid.oidc.page import error_page, login_page
from mocks.vneid.oidc.pkce import CHALLENGE_PATTERN
from mocks.vneid.oidc.provider import OidcProvider
from mocks.vneid.oidc.requests import with_query

__all__ = ["router"]

router = APIRouter(tags=["oidc"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Message, "description": "log-in temporarily unavailable (see Retry-After)"}
}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_AUTHORIZE: dict[int | str, dict[str, Any]] = {
    **_UNAVAILABLE,
    400: {"content": _HTML, "description": "unknown client or redirect URI: an error page, no redirect"},
}
_REDIRECT = {"description": "to the client's redirect URI, with a code or an error, and the state"}


def _query(name: str, description: str, required: bool = False, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


# The page reads the authorization request from the query string itself (a bad one is answered as RFC 6749
# §4.1.2.1 says, not with a 422), so its parameters are described here rather than declared.
_AUTHORIZATION_REQUEST = [
    _query("response_type", "only `code`", required=True, enum=["code"]),
    _query("client_id", "a registered relying party", required=True),
    _query("redirect_uri", "one of the client's registered redirect URIs, exactly", required=True),
    _query(
        "scope",
        "space-separated; must contain `openid` (`profile` adds the name, birth date …)",
        required=True,
    ),
    _query(
        "code_challenge",
        "PKCE: BASE64URL(SHA-256(code_verifier))",
        required=True,
        pattern=f"^{CHALLENGE_PATTERN.pattern}$",
    ),
    _query("code_challenge_method", "only `S256`", required=True, enum=["S256"]),
    _query("state", "returned as is with the code or the error"),
    _query("nonce", "returned in the ID token"),
    _query("acr_values", "space-separated levels the client accepts: `1`, `2`"),
    _query("prompt", "`none` is refused: the citizen must log in"),
]
_TOKEN: dict[int | str, dict[str, Any]] = {
    **_UNAVAILABLE,
    400: {"model": OAuthErrorPublic, "description": "invalid_request, invalid_grant, unsupported_grant_type"},
    401: {"model": OAuthErrorPublic, "description": "invalid_client (see WWW-Authenticate)"},
}
_USERINFO: dict[int | str, dict[str, Any]] = {
    401: {"model": OAuthErrorPublic, "description": "no access token, or an unknown, expired or revoked one"}
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


def _json_error(exc: OidcError, challenge: str | None = None) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status_code == 401 and challenge:
        headers["WWW-Authenticate"] = challenge
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


@router.get(
    "/authorize",
    dependencies=[LoginFaultsDep],
    response_class=HTMLResponse,
    responses={**_AUTHORIZE, 302: _REDIRECT},
    openapi_extra={"parameters": _AUTHORIZATION_REQUEST},
)
async def authorize_page(request: Request, provider: ProviderDep) -> Response:
    """Check the authorization request and show the log-in form (personal ID and passcode)."""
    params = dict(request.query_params)
    try:
        checked = provider.check_request(params)
    except OidcError as exc:
        return _authorize_error(params, exc, 302)
    return HTMLResponse(login_page(checked), headers=_NO_STORE)


@router.post(
    "/authorize",
    dependencies=[LoginFaultsDep],
    response_class=RedirectResponse,
    status_code=303,
    responses={**_AUTHORIZE, 303: _REDIRECT},
)
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


@router.post("/token", dependencies=[LoginFaultsDep], responses=_TOKEN)
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
        return _json_error(exc, www_authenticate("Basic", realm=REALM))
    return JSONResponse(tokens, headers=_NO_STORE)


async def _userinfo(provider: OidcProvider, authorization: str | None) -> JSONResponse:
    try:
        claims = await run_in_threadpool(provider.userinfo, authorization)
    except OidcError as exc:
        challenge = www_authenticate("Bearer", realm=REALM, error=exc.error, description=exc.description)
        return _json_error(exc, challenge)
    return JSONResponse(claims, headers=_NO_STORE)


# GET and POST are two routes, not one `api_route`: each needs its own operation ID in the OpenAPI.
@router.get("/userinfo", responses=_USERINFO)
async def userinfo(
    provider: ProviderDep, authorization: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """The claims the access token may read: `sub`, the level (`acr`/`loa`), and with `profile` the name,
    birth date and gender."""
    return await _userinfo(provider, authorization)


@router.post("/userinfo", responses=_USERINFO)
async def userinfo_post(
    provider: ProviderDep, authorization: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """`GET /userinfo` by POST (OIDC Core §5.3.1 allows both)."""
    return await _userinfo(provider, authorization)
