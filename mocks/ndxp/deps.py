"""FastAPI dependencies: settings, stores, the caller (bearer token or API key → agency and scopes, rate
limited per agency) and the request ID.

Authentication, in order: `Authorization: Bearer <token>` from `POST /oauth/token`; else the deprecated
`X-API-Key` (its answers carry `Deprecation: true`), which grants every citizen scope, or `audit.read`
for an auditor key. Then the agency's token bucket: over the limit is 429 with `Retry-After`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, OAuth2

from mocks.common.agency import Principal, key_principals, principal_dependency, require_scope
from mocks.common.audit import AuditLog
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
    "auditor",
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


def build_principals(settings: NdxpSettings) -> dict[str, Principal]:
    """API-key digest → principal: agency keys carry every citizen scope (what a key disclosed before
    scopes existed), auditor keys `audit.read`."""
    return {
        **key_principals(settings.api_keys, _CITIZEN),
        **key_principals(settings.auditor_keys, frozenset({AUDIT_READ})),
    }


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


# Authentication (bearer token, else the deprecated X-API-Key), then the agency's token bucket.
_principal = principal_dependency(_oauth2, _api_key, realm="ndxp", log=_log)


async def _agency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.scopes & _CITIZEN:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.agency} may not look citizens up: its credentials carry no citizen.* scope "
            "(an auditor's credentials read the audit only)",
        )
    return principal


async def auditor(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """The caller, if its credentials carry `audit.read`; 403 otherwise."""
    require_scope(principal, AUDIT_READ, "read the audit (auditors only)")
    return principal


SettingsDep = Annotated[NdxpSettings, Depends(_settings)]
StoreDep = Annotated[PopulationStore, Depends(_store)]
AuditDep = Annotated[AuditLog, Depends(_audit)]
RequestIdDep = Annotated[str, Depends(_request_id)]
AgencyDep = Annotated[Principal, Depends(_agency)]
AuditorDep = Annotated[Principal, Depends(auditor)]
