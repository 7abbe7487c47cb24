"""FastAPI dependencies: settings, stores, the caller (API key → agency) and the request ID."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from mocks.ndxp.audit import AuditLog
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationStore

__all__ = [
    "AgencyDep",
    "AuditDep",
    "AuditorDep",
    "Principal",
    "RequestIdDep",
    "SettingsDep",
    "StoreDep",
    "build_principals",
]

# Dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in the thread pool,
# a thread hop per dependency per request for work that never blocks.

_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="your agency's API key, issued by the NDXP operator"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller an API key names: an agency that looks citizens up, or an auditor."""

    agency: str
    role: Literal["agency", "auditor"]


def _digest(key: str) -> str:
    # Keys are compared by digest so the dict look-up's timing says nothing about the key itself.
    return hashlib.sha256(key.encode()).hexdigest()


def build_principals(settings: NdxpSettings) -> dict[str, Principal]:
    """Key digest → principal, from the settings' agency → key maps."""
    principals = {_digest(k.get_secret_value()): Principal(a, "agency") for a, k in settings.api_keys.items()}
    for agency, key in settings.auditor_keys.items():
        principals[_digest(key.get_secret_value())] = Principal(agency, "auditor")
    return principals


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


async def _principal(request: Request, key: Annotated[str | None, Security(_api_key)]) -> Principal:
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header; send your agency's NDXP API key"
        )
    principal: Principal | None = request.app.state.principals.get(_digest(key))
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key; check the X-API-Key header")
    return principal


async def _agency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if principal.role != "agency":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{principal.agency} holds an auditor key, which reads the audit only"
        )
    return principal


async def _auditor(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if principal.role != "auditor":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{principal.agency} may not read the audit; it takes an auditor key"
        )
    return principal


SettingsDep = Annotated[NdxpSettings, Depends(_settings)]
StoreDep = Annotated[PopulationStore, Depends(_store)]
AuditDep = Annotated[AuditLog, Depends(_audit)]
RequestIdDep = Annotated[str, Depends(_request_id)]
AgencyDep = Annotated[Principal, Depends(_agency)]
AuditorDep = Annotated[Principal, Depends(_auditor)]
