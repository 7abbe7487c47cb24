"""`/v1/accounts`: applications and their lifecycle (police keys), the citizen's activation, and the
agencies' audited status look-up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.concurrency import run_in_threadpool

from mocks.ndxp.audit import Disclosure
from mocks.vneid.accounts import Account
from mocks.vneid.deps import AgencyDep, AuditDep, OfficerDep, RequestIdDep, ServiceDep
from mocks.vneid.exceptions import AccountNotFoundError
from mocks.vneid.matching import Applicant
from mocks.vneid.models import (
    PERSONAL_ID_PATTERN,
    AccountPublic,
    AccountStatusPublic,
    ActivationCreate,
    ApplicationCreate,
    ApprovalPublic,
    LockCreate,
    Message,
)

__all__ = ["router"]

router = APIRouter(prefix="/accounts", tags=["accounts"])

PersonalIdParam = Annotated[str, Path(pattern=PERSONAL_ID_PATTERN, description="12-digit personal ID")]
PurposeParam = Annotated[
    str,
    Query(min_length=1, max_length=500, pattern=r"\S", description="why the status is needed; audited"),
]
_STATUS_FIELDS = list(AccountStatusPublic.model_fields)
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Message, "description": "the account's status does not allow this change"}
}
_MATCH: dict[int | str, dict[str, Any]] = {
    422: {"model": Message, "description": "the application disagrees with the NPD"},
    503: {"model": Message, "description": "no population database to match against"},
}


def _public(account: Account) -> AccountPublic:
    return AccountPublic.model_validate(account, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED, responses=_CONFLICT)
async def apply(body: ApplicationCreate, _officer: OfficerDep, service: ServiceDep) -> AccountPublic:
    """File an application (status `applied`) for an account of level 1 or 2. One account per citizen."""
    applicant = Applicant(body.personal_id, body.full_name, body.date_of_birth, body.gender)
    return _public(await run_in_threadpool(service.apply, applicant, body.province, body.level))


@router.post("/{personal_id}/approve", responses={**_CONFLICT, **_MATCH})
async def approve(personal_id: PersonalIdParam, _officer: OfficerDep, service: ServiceDep) -> ApprovalPublic:
    """Level 1: match the application against the NPD automatically and approve it. The answer carries the
    one-time activation code for the citizen."""
    return ApprovalPublic.of(await run_in_threadpool(service.approve, personal_id))


@router.post("/{personal_id}/verify-in-person", responses={**_CONFLICT, **_MATCH})
async def verify_in_person(
    personal_id: PersonalIdParam, _officer: OfficerDep, service: ServiceDep
) -> ApprovalPublic:
    """Level 2: an officer has verified the citizen in person (the NPD must agree too). Approves an
    application at level 2, or upgrades an approved or activated level-1 account."""
    return ApprovalPublic.of(await run_in_threadpool(service.verify_in_person, personal_id))


@router.post("/{personal_id}/activate", responses={**_CONFLICT, 403: {"model": Message}})
async def activate(
    personal_id: PersonalIdParam, body: ActivationCreate, service: ServiceDep
) -> AccountStatusPublic:
    """The citizen's first log-in (no API key: the activation code is the credential): sets the passcode."""
    account = await run_in_threadpool(service.activate, personal_id, body.activation_code, body.passcode)
    return AccountStatusPublic.of(account)


@router.post("/{personal_id}/lock", responses=_CONFLICT)
async def lock(
    personal_id: PersonalIdParam, body: LockCreate, _officer: OfficerDep, service: ServiceDep
) -> AccountPublic:
    """Lock the account: no log-in, outstanding tokens stop working. Unlocking restores the status."""
    return _public(await run_in_threadpool(service.lock, personal_id, body.reason))


@router.post("/{personal_id}/unlock", responses=_CONFLICT)
async def unlock(personal_id: PersonalIdParam, _officer: OfficerDep, service: ServiceDep) -> AccountPublic:
    """Return a locked account to the status it was locked from."""
    return _public(await run_in_threadpool(service.unlock, personal_id))


@router.get("/{personal_id}", responses={404: {"model": Message, "description": "no account"}})
async def read_status(
    personal_id: PersonalIdParam,
    purpose: PurposeParam,
    caller: AgencyDep,
    service: ServiceDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> AccountStatusPublic:
    """An account's status, level and dates. Audited: who asked, about which citizen, when and why."""

    def lookup() -> AccountStatusPublic:
        account = service.find(personal_id)
        # "No account" tells something about the citizen too: every look-up is audited.
        fields = _STATUS_FIELDS if account else ["exists"]
        audit.record([Disclosure(caller.name, personal_id, fields, purpose, request_id, "accounts.read")])
        if account is None:
            raise AccountNotFoundError("no e-ID account for this personal ID")
        return AccountStatusPublic.of(account)

    return await run_in_threadpool(lookup)
