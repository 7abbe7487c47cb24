"""FastAPI dependencies: settings, stores, the caller (bearer token or API key → agency and scopes, rate
limited per agency) and the request ID.

Authentication, in order: `Authorization: Bearer <token>` from `POST /oauth/token`; else the deprecated
`X-API-Key` (its answers carry `Deprecation: true`), which grants every citizen scope, or `audit.read`
for an auditor key. Then the agency's token bucket: over the limit is 429 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, OAuth2

from mocks.common.ratelimit import retry_after
from mocks.common.security import OAuthError, bearer_token
from mocks.ndxp.audit import AuditLog
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationStore
from mocks.ndxp.scopes import AUDIT_READ, CITIZEN_SCOPES, CIVIL_REGISTER, RESIDENCE_WRITE

__all__ = [
    "AgencyDep",
    "AuditDep",
    "AuditorDep",
    "Principal",
    "RequestIdDep",
    "SettingsDep",
    "StoreDep",
    "build_principals",
    "require_scope",
]

_log = logging.getLogger("mocks.ndxp")  # the package logger: it carries the ID-masking filter

# Dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in the thread pool,
# a thread hop per dependency per request for work that never blocks.

_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="deprecated: your agency's API key, issued by the NDXP operator; use OAuth2 instead",
)
_oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token",
            scopes={
                "citizen.identity": "personal and legacy ID, name, birth date, gender",
                "citizen.residence": "permanent and current residence, birth province",
                "citizen.status": "alive or deceased, date of death",
                "citizen.family": "marital status, parents, spouse, household head",
                "citizen.other": "ethnicity, religion, nationality, blood type and any other field",
                AUDIT_READ: "read the disclosure audit (auditors only)",
                CIVIL_REGISTER: "register births, deaths and marriages (changes the NPD, discloses nothing)",
                RESIDENCE_WRITE: "register and end permanent residences (changes the NPD, discloses nothing)",
            },
        )
    ),
    scheme_name="OAuth2",
    description="client credentials of your agency; send the token as `Authorization: Bearer …`",
    auto_error=False,
)
_CITIZEN = frozenset(CITIZEN_SCOPES)
_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="ndxp"'}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: an agency, the scopes its credentials carry, and how it authenticated."""

    agency: str
    scopes: frozenset[str]
    via: Literal["token", "api_key"] = "token"

    @property
    def role(self) -> Literal["agency", "auditor"]:
        return "auditor" if AUDIT_READ in self.scopes else "agency"


def _digest(key: str) -> str:
    # Keys are compared by digest so the dict look-up's timing says nothing about the key itself.
    return hashlib.sha256(key.encode()).hexdigest()


def build_principals(settings: NdxpSettings) -> dict[str, Principal]:
    """API-key digest → principal: agency keys carry every citizen scope (what a key disclosed before
    scopes existed), auditor keys `audit.read`."""
    principals = {
        _digest(k.get_secret_value()): Principal(a, _CITIZEN, "api_key") for a, k in settings.api_keys.items()
    }
    for agency, key in settings.auditor_keys.items():
        principals[_digest(key.get_secret_value())] = Principal(agency, frozenset({AUDIT_READ}), "api_key")
    return principals


def require_scope(principal: Principal, scope: str, what: str) -> None:
    """403 `insufficient_scope` unless the principal holds `scope`; `what` names the refused action."""
    if scope not in principal.scopes:
        challenge = OAuthError("insufficient_scope", f"{what} needs the {scope} scope").challenge()
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.agency} may not {what}: it takes the {scope} scope, which its credentials lack",
            headers={"WWW-Authenticate": f'{challenge}, scope="{scope}"'},
        )


async def _settings(request: Request) -> NdxpSettings:
    settings: NdxpSettings = request.app.state.settings
    return settings


async def _store(request: Request) -> PopulationStore:
    store: PopulationStore = request.app.state.db
    return store


async def _audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


async def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", None) or uuid.uuid4().hex)


def _from_token(request: Request, token: str) -> Principal:
    try:
        claims = request.app.state.tokens.verify(token)
    except OAuthError as exc:
        raise HTTPException(exc.status_code, exc.description, {"WWW-Authenticate": exc.challenge()}) from None
    settings: NdxpSettings = request.app.state.settings
    client = settings.oauth_clients.get(claims.subject)
    if client is None:  # the client was removed since the token was issued
        gone = OAuthError("invalid_token", "the token's client is no longer registered", 401)
        raise HTTPException(gone.status_code, gone.description, {"WWW-Authenticate": gone.challenge()})
    # A client's scopes may have shrunk since the token was issued: the registry has the last word.
    return Principal(claims.subject, claims.scopes & frozenset(client.scopes), "token")


def _authenticate(request: Request, authorization: str | None, key: str | None) -> Principal:
    token = bearer_token(authorization)
    if token:
        return _from_token(request, token)
    if key:
        principal: Principal | None = request.app.state.principals.get(_digest(key))
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "unknown API key; check the X-API-Key header", _UNAUTHENTICATED
            )
        request.state.deprecated_auth = True  # RequestIdMiddleware answers with `Deprecation: true`
        return principal
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "no credentials: send `Authorization: Bearer <token>` (get one at POST /oauth/token with your "
        "agency's client ID and secret) or, deprecated, your agency's X-API-Key",
        _UNAUTHENTICATED,
    )


async def _principal(
    request: Request,
    authorization: Annotated[str | None, Security(_oauth2)],
    key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    principal = _authenticate(request, authorization, key)
    settings: NdxpSettings = request.app.state.settings
    wait = request.app.state.limiter.check(principal.agency, settings.rate_of(principal.agency))
    if wait > 0:
        request.app.state.rate_limited.labels(principal.agency).inc()
        seconds = retry_after(wait)
        _log.info(
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
    return principal


async def _agency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.scopes & _CITIZEN:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.agency} may not look citizens up: its credentials carry no citizen.* scope "
            "(an auditor's credentials read the audit only)",
        )
    return principal


async def _auditor(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    require_scope(principal, AUDIT_READ, "read the audit (auditors only)")
    return principal


SettingsDep = Annotated[NdxpSettings, Depends(_settings)]
StoreDep = Annotated[PopulationStore, Depends(_store)]
AuditDep = Annotated[AuditLog, Depends(_audit)]
RequestIdDep = Annotated[str, Depends(_request_id)]
AgencyDep = Annotated[Principal, Depends(_agency)]
AuditorDep = Annotated[Principal, Depends(_auditor)]
