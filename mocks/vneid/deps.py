"""FastAPI dependencies: settings, the service, the OIDC provider, the caller (API key → agency or police
unit), the request ID, the issuer, and the injected faults of the log-in endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from mocks.ndxp.audit import AuditLog
from mocks.ndxp.middleware import FaultInjector
from mocks.vneid.config import VneidSettings
from mocks.vneid.oidc.provider import OidcProvider
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
    "build_principals",
]

# `async def` on purpose: FastAPI runs plain `def` dependencies in the thread pool, a hop per request.

_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="your agency's or police unit's key, issued by the operator",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller an API key names: an agency that looks accounts up, or a police unit managing them."""

    name: str
    role: Literal["agency", "officer"]


def _digest(key: str) -> str:
    # Compared by digest so the dict look-up's timing says nothing about the key itself.
    return hashlib.sha256(key.encode()).hexdigest()


def build_principals(settings: VneidSettings) -> dict[str, Principal]:
    """Key digest → principal, from the settings' name → key maps."""
    principals = {_digest(k.get_secret_value()): Principal(n, "agency") for n, k in settings.api_keys.items()}
    for name, key in settings.officer_keys.items():
        principals[_digest(key.get_secret_value())] = Principal(name, "officer")
    return principals


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


async def _principal(request: Request, key: Annotated[str | None, Security(_api_key)]) -> Principal:
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header; send your VNeID API key")
    principal: Principal | None = request.app.state.principals.get(_digest(key))
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key; check the X-API-Key header")
    return principal


async def _officer(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if principal.role != "officer":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.name} may look accounts up only; changes take a police key",
        )
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
AgencyDep = Annotated[Principal, Depends(_principal)]  # agencies and police units may both look up
OfficerDep = Annotated[Principal, Depends(_officer)]
LoginFaultsDep = Depends(_login_faults)
