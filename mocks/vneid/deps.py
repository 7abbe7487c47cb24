"""FastAPI dependencies: settings, the service, the OIDC provider, the caller (bearer token or deprecated
API key → agency or police unit and its scopes, rate limited per agency), the request ID, the issuer,
and the injected faults of the log-in endpoints.

Authentication, in order: `Authorization: Bearer <token>` from `POST /oauth/token`; else the deprecated
`X-API-Key` (its answers carry `Deprecation: true`): an agency key carries the look-up scopes
(`account.status`, `account.identity`: what a key saw before scopes existed), a police key those and
`account.officer`. Then the agency's token bucket: over the limit is 429 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, OAuth2

from mocks.common.agency import Principal, key_principals, principal_dependency, require_scope
from mocks.common.audit import AuditLog
from mocks.ndxp.middleware import FaultInjector
from mocks.vneid.config import VneidSettings
from mocks.vneid.logs import LOGGER
from mocks.vneid.oidc.provider import OidcProvider
from mocks.vneid.scopes import AUDIT_READ, IDENTITY, LOOKUP_SCOPES, OFFICER, STATUS
from mocks.vneid.service import AccountService

__all__ = [
    "AgencyDep",
    "AuditDep",
    "IssuerDep",
    "LoginFaultsDep",
    "OfficerDep",
    "Principal",
    "ProviderDep",
    "RequestIdDep",
    "ServiceDep",
    "SettingsDep",
    "auditor",
    "build_principals",
]

REALM = "vneid"

# `async def` on purpose: FastAPI runs plain `def` dependencies in the thread pool, a hop per request.

_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="deprecated: your agency's or police unit's key, issued by the operator; use OAuth2 instead",
)
_oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token",
            scopes={
                STATUS: "an account's status, level, province and lifecycle dates",
                IDENTITY: "the account's personal ID",
                OFFICER: "the police's operations: apply, approve, verify in person, lock, unlock",
                AUDIT_READ: "read the disclosure audit (auditors only)",
            },
        )
    ),
    scheme_name="OAuth2",
    description="client credentials of your agency or police unit; send `Authorization: Bearer <token>`",
    auto_error=False,
)
_LOOKUP = frozenset(LOOKUP_SCOPES)


def build_principals(settings: VneidSettings) -> dict[str, Principal]:
    """Deprecated API-key digest → principal: agency keys carry the look-up scopes, police keys the
    officers' scope too (each what its key could do before scopes existed)."""
    return {
        **key_principals(settings.api_keys, _LOOKUP),
        **key_principals(settings.officer_keys, _LOOKUP | {OFFICER}),
    }


async def _settings(request: Request) -> VneidSettings:
    settings: VneidSettings = request.app.state.settings
    return settings


async def _service(request: Request) -> AccountService:
    service: AccountService = request.app.state.service
    return service


async def _provider(request: Request) -> OidcProvider:
    provider: OidcProvider = request.app.state.provider
    return provider


async def _audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


async def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", None) or uuid.uuid4().hex)


async def _issuer(request: Request, settings: Annotated[VneidSettings, Depends(_settings)]) -> str:
    # Without a configured issuer the server names itself by the address it was reached at.
    return (settings.issuer or str(request.base_url)).rstrip("/")


_principal = principal_dependency(_oauth2, _api_key, realm=REALM, log=logging.getLogger(LOGGER))


async def _agency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.scopes & _LOOKUP:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.agency} may not look accounts up: its credentials carry neither {STATUS} nor "
            f"{IDENTITY} (an auditor's credentials read the audit only)",
        )
    return principal


async def _officer(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    require_scope(principal, OFFICER, "change accounts (police units only)", realm=REALM)
    return principal


async def auditor(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """The caller, if its credentials carry `audit.read`; 403 otherwise."""
    require_scope(principal, AUDIT_READ, "read the audit (auditors only)", realm=REALM)
    return principal


async def _login_faults(request: Request) -> None:
    """The log-in failures the provinces report, on demand: latency, then a 503 for a fraction of calls."""
    faults: FaultInjector = request.app.state.faults
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.should_fail():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "VNeID log-in temporarily unavailable (injected fault); retry later",
            headers={"Retry-After": "1"},
        )


SettingsDep = Annotated[VneidSettings, Depends(_settings)]
ServiceDep = Annotated[AccountService, Depends(_service)]
ProviderDep = Annotated[OidcProvider, Depends(_provider)]
AuditDep = Annotated[AuditLog, Depends(_audit)]
RequestIdDep = Annotated[str, Depends(_request_id)]
IssuerDep = Annotated[str, Depends(_issuer)]
AgencyDep = Annotated[Principal, Depends(_agency)]  # agencies and police units with a look-up scope
OfficerDep = Annotated[Principal, Depends(_officer)]
LoginFaultsDep = Depends(_login_faults)
