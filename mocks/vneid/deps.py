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
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from mocks.common import agency
from mocks.common.agency import Principal, key_principals
from mocks.common.audit import AuditLog
from mocks.common.deps import request_id, state_dependency
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

_api_key = agency.api_key_scheme(
    "deprecated: your agency's or police unit's key, issued by the operator; use OAuth2 instead"
)
_oauth2 = agency.oauth2_scheme(
    {
        STATUS: "an account's status, level, province and lifecycle dates",
        IDENTITY: "the account's personal ID",
        OFFICER: "the police's operations: apply, approve, verify in person, lock, unlock",
        AUDIT_READ: "read the disclosure audit (auditors only)",
    },
    "client credentials of your agency or police unit; send `Authorization: Bearer <token>`",
)
_LOOKUP = frozenset(LOOKUP_SCOPES)


def build_principals(settings: VneidSettings) -> dict[str, Principal]:
    """Deprecated API-key digest → principal: agency keys carry the look-up scopes, police keys the
    officers' scope too (each what its key could do before scopes existed)."""
    return {
        **key_principals(settings.api_keys, _LOOKUP),
        **key_principals(settings.officer_keys, _LOOKUP | {OFFICER}),
    }


_settings = state_dependency("settings")


async def _issuer(request: Request, settings: Annotated[VneidSettings, Depends(_settings)]) -> str:
    # Without a configured issuer the server names itself by the address it was reached at.
    return (settings.issuer or str(request.base_url)).rstrip("/")


_principal = agency.principal_dependency(_oauth2, _api_key, realm=REALM, log=logging.getLogger(LOGGER))
_agency = agency.any_scope_dependency(
    _principal,
    _LOOKUP,
    f"may not look accounts up: its credentials carry neither {STATUS} nor "
    f"{IDENTITY} (an auditor's credentials read the audit only)",
)
_officer = agency.scope_dependency(_principal, OFFICER, "change accounts (police units only)", realm=REALM)
# The caller, if its credentials carry `audit.read`; 403 otherwise.
auditor = agency.scope_dependency(_principal, AUDIT_READ, "read the audit (auditors only)", realm=REALM)


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
ServiceDep = Annotated[AccountService, Depends(state_dependency("service"))]
ProviderDep = Annotated[OidcProvider, Depends(state_dependency("provider"))]
AuditDep = Annotated[AuditLog, Depends(state_dependency("audit"))]
RequestIdDep = Annotated[str, Depends(request_id)]
IssuerDep = Annotated[str, Depends(_issuer)]
AgencyDep = Annotated[Principal, Depends(_agency)]  # agencies and police units with a look-up scope
OfficerDep = Annotated[Principal, Depends(_officer)]
LoginFaultsDep = Depends(_login_faults)
