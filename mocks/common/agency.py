"""Agencies as callers of a mock's API: who calls (bearer token, or a deprecated API key), with which
scopes, within its rate limit. The FastAPI side of `security.py` (tokens) and `ratelimit.py` (buckets).

A mock that admits agencies keeps on `app.state`, read at every request (tests swap them):

| attribute       | what                                                                            |
|-----------------|---------------------------------------------------------------------------------|
| `settings`      | an `AgencySettings`: `oauth_clients` (the registry) and `rate_of(agency)`       |
| `tokens`        | the `TokenService` that issued the bearer tokens                                |
| `principals`    | deprecated API keys: `key_digest(key)` → `Principal` (empty: tokens only)       |
| `limiter`       | the `RateLimiter` of the agencies' buckets                                      |
| `rate_limited`  | optional: a prometheus counter labelled by agency, counting 429s               |

`principal_dependency(...)` makes the dependency that authenticates (401 with `WWW-Authenticate`),
then takes a token from the agency's bucket (429 with `Retry-After`); `require_scope` refuses (403
`insufficient_scope`) an action the credentials do not cover.
"""

# No `from __future__ import annotations` here: FastAPI resolves a dependency's string annotations in the
# module's globals, and `principal_dependency`'s annotations name its own arguments (the schemes).
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, OAuth2
from pydantic import SecretStr

from mocks.common.ratelimit import Rate, retry_after
from mocks.common.security import OAuthClient, OAuthError, bearer_token

__all__ = [
    "AUDIT_READ",
    "AgencySettings",
    "Principal",
    "any_scope_dependency",
    "api_key_scheme",
    "key_digest",
    "key_principals",
    "oauth2_scheme",
    "principal_dependency",
    "require_scope",
    "scope_dependency",
]

AUDIT_READ = "audit.read"  # the auditors' scope on every mock: reading the disclosure audit, nothing else


class AgencySettings(Protocol):
    """What the agency checks need of a mock's settings."""

    @property
    def oauth_clients(self) -> dict[str, OAuthClient]: ...

    def rate_of(self, agency: str) -> Rate | None: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: an agency, the scopes its credentials carry, and how it authenticated."""

    agency: str
    scopes: frozenset[str]
    via: Literal["token", "api_key"] = "token"

    @property
    def role(self) -> Literal["agency", "auditor"]:
        return "auditor" if AUDIT_READ in self.scopes else "agency"


def key_digest(key: str) -> str:
    """What API keys are looked up by: the dict look-up's timing then says nothing about the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_principals(keys: Mapping[str, SecretStr], scopes: frozenset[str]) -> dict[str, Principal]:
    """Key digest → principal for `keys` (holder → key), each holder carrying `scopes`."""
    return {key_digest(k.get_secret_value()): Principal(a, scopes, "api_key") for a, k in keys.items()}


def require_scope(principal: Principal, scope: str, what: str, realm: str = "ndxp") -> None:
    """403 `insufficient_scope` unless the principal holds `scope`; `what` names the refused action."""
    if scope not in principal.scopes:
        challenge = OAuthError("insufficient_scope", f"{what} needs the {scope} scope").challenge(realm=realm)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.agency} may not {what}: it takes the {scope} scope, which its credentials lack",
            headers={"WWW-Authenticate": f'{challenge}, scope="{scope}"'},
        )


def api_key_scheme(description: str) -> APIKeyHeader:
    """A mock's deprecated `X-API-Key` scheme (refusals are made by `principal_dependency`)."""
    return APIKeyHeader(name="X-API-Key", auto_error=False, description=description)


def oauth2_scheme(scopes: dict[str, str], description: str) -> OAuth2:
    """A mock's OAuth2 client-credentials scheme (token at `/oauth/token`), `scopes` named → described."""
    return OAuth2(
        flows=OAuthFlows(
            clientCredentials=OAuthFlowClientCredentials(tokenUrl="/oauth/token", scopes=scopes)
        ),
        scheme_name="OAuth2",
        description=description,
        auto_error=False,
    )


def _from_token(request: Request, token: str, realm: str) -> Principal:
    try:
        claims = request.app.state.tokens.verify(token)
    except OAuthError as exc:
        raise HTTPException(
            exc.status_code, exc.description, {"WWW-Authenticate": exc.challenge(realm=realm)}
        ) from None
    settings: AgencySettings = request.app.state.settings
    client = settings.oauth_clients.get(claims.subject)
    if client is None:  # the client was removed since the token was issued
        gone = OAuthError("invalid_token", "the token's client is no longer registered", 401)
        challenge = {"WWW-Authenticate": gone.challenge(realm=realm)}
        raise HTTPException(gone.status_code, gone.description, challenge)
    # A client's scopes may have shrunk since the token was issued: the registry has the last word.
    return Principal(claims.subject, claims.scopes & frozenset(client.scopes), "token")


def _authenticate(request: Request, authorization: str | None, key: str | None, realm: str) -> Principal:
    unauthenticated = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
    token = bearer_token(authorization)
    if token:
        return _from_token(request, token, realm)
    if key:
        principal: Principal | None = request.app.state.principals.get(key_digest(key))
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "unknown API key; check the X-API-Key header", unauthenticated
            )
        request.state.deprecated_auth = True  # RequestIdMiddleware answers with `Deprecation: true`
        return principal
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "no credentials: send `Authorization: Bearer <token>` (get one at POST /oauth/token with your "
        "agency's client ID and secret) or, deprecated, your agency's X-API-Key",
        unauthenticated,
    )


def _admit(request: Request, principal: Principal, log: logging.Logger) -> None:
    """Take a token from the agency's bucket; 429 with `Retry-After` when it is empty."""
    settings: AgencySettings = request.app.state.settings
    wait = request.app.state.limiter.check(principal.agency, settings.rate_of(principal.agency))
    if wait <= 0:
        return
    counter = getattr(request.app.state, "rate_limited", None)
    if counter is not None:
        counter.labels(principal.agency).inc()
    seconds = retry_after(wait)
    log.info(
        "request %s: %s over its rate limit; answered 429, retry after %s s",
        getattr(request.state, "request_id", "-"),
        principal.agency,
        seconds,
    )
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"{principal.agency} is over its rate limit; retry after {seconds} s (see Retry-After)",
        {"Retry-After": seconds},
    )


def principal_dependency(
    oauth2: OAuth2, api_key: APIKeyHeader, *, realm: str, log: logging.Logger
) -> Callable[..., Awaitable[Principal]]:
    """The dependency that names the caller and spends one of its agency's requests.

    `oauth2` and `api_key` are the mock's own security schemes (their descriptions and scopes show in
    its OpenAPI document); both must have `auto_error=False`, the refusals are made here.
    """

    # `async def` on purpose: FastAPI runs plain `def` dependencies in the thread pool, a thread hop per
    # dependency per request for work that never blocks.
    async def principal(
        request: Request,
        authorization: Annotated[str | None, Security(oauth2)],
        key: Annotated[str | None, Security(api_key)],
    ) -> Principal:
        caller = _authenticate(request, authorization, key, realm)
        _admit(request, caller, log)
        return caller

    return principal


def scope_dependency(
    principal: Callable[..., Awaitable[Principal]], scope: str, what: str, realm: str = "ndxp"
) -> Callable[..., Awaitable[Principal]]:
    """The dependency that answers the caller of `principal` if it holds `scope` (`require_scope`)."""

    async def scoped(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        require_scope(caller, scope, what, realm=realm)
        return caller

    return scoped


def any_scope_dependency(
    principal: Callable[..., Awaitable[Principal]], scopes: frozenset[str], refusal: str
) -> Callable[..., Awaitable[Principal]]:
    """The dependency that answers the caller of `principal` if it holds one of `scopes`; 403 otherwise,
    saying the agency's name and then `refusal`."""

    async def scoped(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if not caller.scopes & scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{caller.agency} {refusal}")
        return caller

    return scoped
