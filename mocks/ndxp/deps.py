"""FastAPI dependencies: settings, stores, the caller (bearer token or API key → agency and scopes, rate
limited per agency) and the request ID.

Authentication, in order: `Authorization: Bearer <token>` from `POST /oauth/token`; else the deprecated
`X-API-Key` (its answers carry `Deprecation: true`), which grants every citizen scope, or `audit.read`
for an auditor key. Then the agency's token bucket: over the limit is 429 with `Retry-After`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends

from mocks.common import agency
from mocks.common.agency import Principal, key_principals, require_scope
from mocks.common.audit import AuditLog
from mocks.common.deps import request_id, state_dependency
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

_api_key = agency.api_key_scheme(
    "deprecated: your agency's API key, issued by the NDXP operator; use OAuth2 instead"
)
_oauth2 = agency.oauth2_scheme(
    {
        "citizen.identity": "personal and legacy ID, name, birth date, gender",
        "citizen.residence": "permanent and current residence, birth province",
        "citizen.status": "alive or deceased, date of death",
        "citizen.family": "marital status, parents, spouse, household head",
        "citizen.other": "ethnicity, religion, nationality, blood type and any other field",
        AUDIT_READ: "read the disclosure audit (auditors only)",
        CIVIL_REGISTER: "register births, deaths and marriages (changes the NPD, discloses nothing)",
        RESIDENCE_WRITE: "register and end permanent residences (changes the NPD, discloses nothing)",
    },
    "client credentials of your agency; send the token as `Authorization: Bearer …`",
)
_CITIZEN = frozenset(CITIZEN_SCOPES)


def build_principals(settings: NdxpSettings) -> dict[str, Principal]:
    """API-key digest → principal: agency keys carry every citizen scope (what a key disclosed before
    scopes existed), auditor keys `audit.read`."""
    return {
        **key_principals(settings.api_keys, _CITIZEN),
        **key_principals(settings.auditor_keys, frozenset({AUDIT_READ})),
    }


# Authentication (bearer token, else the deprecated X-API-Key), then the agency's token bucket.
_principal = agency.principal_dependency(_oauth2, _api_key, realm="ndxp", log=_log)
_agency = agency.any_scope_dependency(
    _principal,
    _CITIZEN,
    "may not look citizens up: its credentials carry no citizen.* scope "
    "(an auditor's credentials read the audit only)",
)
# The caller, if its credentials carry `audit.read`; 403 otherwise.
auditor = agency.scope_dependency(_principal, AUDIT_READ, "read the audit (auditors only)")

SettingsDep = Annotated[NdxpSettings, Depends(state_dependency("settings"))]
StoreDep = Annotated[PopulationStore, Depends(state_dependency("db"))]
AuditDep = Annotated[AuditLog, Depends(state_dependency("audit"))]
RequestIdDep = Annotated[str, Depends(request_id)]
AgencyDep = Annotated[Principal, Depends(_agency)]
AuditorDep = Annotated[Principal, Depends(auditor)]
