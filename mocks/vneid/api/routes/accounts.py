"""`/v1/accounts`: applications and their lifecycle (the police's `account.officer` scope), the citizen's
activation, and the agencies' audited status look-up (`account.status`, `account.identity`).

Every answer about an account to an agency or a police unit is one audit entry: the look-up (the fields
shown after scopes, or `exists` for "no account"), each officer's operation (the fields of the account
answered, or the fields a refusal names: an NPD mismatch, the status that forbids the change).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, status
from fastapi.concurrency import run_in_threadpool

from mocks.common.audit import AuditLog, Disclosure
from mocks.common.errors import ValidationErrorPublic
from mocks.common.fields import NOT_BLANK, NotBlank
from mocks.vneid.accounts import Account
from mocks.vneid.deps import AgencyDep, AuditDep, OfficerDep, Principal, RequestIdDep, ServiceDep
from mocks.vneid.exceptions import (
    AccountError,
    AccountExistsError,
    AccountNotFoundError,
    IllegalTransitionError,
    MatchError,
)
from mocks.vneid.matching import Applicant
from mocks.vneid.models import (
    PERSONAL_ID_PATTERN,
    AccountLookupPublic,
    AccountPublic,
    AccountStatusPublic,
    ActivationCreate,
    ApplicationCreate,
    ApprovalPublic,
    LockCreate,
    MatchErrorPublic,
    Message,
)
from mocks.vneid.scopes import split_fields
from mocks.vneid.service import Approval

__all__ = ["router"]

router = APIRouter(prefix="/accounts", tags=["accounts"])

PersonalIdParam = Annotated[str, Path(pattern=PERSONAL_ID_PATTERN, description="12-digit personal ID")]
PurposeParam = Annotated[
    str,
    Query(
        min_length=1,
        max_length=500,
        json_schema_extra=NOT_BLANK,
        description="why the status is needed; audited",
    ),
    NotBlank,
]
_LOOKUP_FIELDS = list(AccountStatusPublic.model_fields)
_OFFICER_FIELDS = list(AccountPublic.model_fields)
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Message, "description": "the account's status does not allow this change"}
}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_CONFLICT,
    404: {"model": Message, "description": "no e-ID account for this personal ID"},
}
_MATCH: dict[int | str, dict[str, Any]] = {
    # Two kinds of 422 share the status: the request does not fit the API (FastAPI's list of reasons),
    # or it does and the application disagrees with the NPD (a sentence and the fields that differ).
    422: {
        "model": ValidationErrorPublic | MatchErrorPublic,
        "description": "the request is invalid, or the application disagrees with the NPD",
    },
    503: {"model": Message, "description": "no population database to match against"},
}
_T = TypeVar("_T", Account, Approval)


def _public(account: Account) -> AccountPublic:
    return AccountPublic.model_validate(account, from_attributes=True)


def _refused_fields(exc: AccountError) -> Sequence[str]:
    """What a refusal tells the officer about the citizen (nothing for an activation-code error)."""
    if isinstance(exc, MatchError):
        return exc.fields  # the NPD's fields that disagree with the application
    if isinstance(exc, IllegalTransitionError):
        return ("status", "level")  # the message names the status and level that forbid the change
    if isinstance(exc, AccountExistsError | AccountNotFoundError):
        return ("exists",)
    return ()


async def _officer_call(
    officer: Principal,
    audit: AuditLog,
    request_id: str,
    personal_id: str,
    action: str,
    call: Callable[[], _T],
) -> _T:
    """Run an officer's operation in the thread pool and audit what its answer shows, success or refusal."""

    def record(fields: Sequence[str]) -> None:
        audit.record(
            [Disclosure(officer.agency, personal_id, fields, action, request_id, f"accounts.{action}")]
        )

    def run() -> _T:
        try:
            result = call()
        except AccountError as exc:
            if fields := _refused_fields(exc):
                record(fields)
            raise
        with_code = isinstance(result, Approval) and result.activation_code is not None
        record([*_OFFICER_FIELDS, "activation_code"] if with_code else _OFFICER_FIELDS)
        return result

    return await run_in_threadpool(run)


@router.post("", status_code=status.HTTP_201_CREATED, responses=_CONFLICT)
async def apply(
    body: ApplicationCreate,
    officer: OfficerDep,
    service: ServiceDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> AccountPublic:
    """File an application (status `applied`) for an account of level 1 or 2. One account per citizen."""
    applicant = Applicant(body.personal_id, body.full_name, body.date_of_birth, body.gender)
    account = await _officer_call(
        officer,
        audit,
        request_id,
        body.personal_id,
        "apply",
        lambda: service.apply(applicant, body.province, body.level),
    )
    return _public(account)


@router.post("/{personal_id}/approve", responses={**_CHANGE, **_MATCH})
async def approve(
    personal_id: PersonalIdParam,
    officer: OfficerDep,
    service: ServiceDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> ApprovalPublic:
    """Level 1: match the application against the NPD automatically and approve it. The answer carries the
    one-time activation code for the citizen."""
    approval = await _officer_call(
        officer, audit, request_id, personal_id, "approve", lambda: service.approve(personal_id)
    )
    return ApprovalPublic.of(approval)


@router.post("/{personal_id}/verify-in-person", responses={**_CHANGE, **_MATCH})
async def verify_in_person(
    personal_id: PersonalIdParam,
    officer: OfficerDep,
    service: ServiceDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> ApprovalPublic:
    """Level 2: an officer has verified the citizen in person (the NPD must agree too). Approves an
    application at level 2, or upgrades an approved or activated level-1 account."""
    approval = await _officer_call(
        officer,
        audit,
        request_id,
        personal_id,
        "verify_in_person",
        lambda: service.verify_in_person(personal_id),
    )
    return ApprovalPublic.of(approval)


@router.post("/{personal_id}/activate", responses={**_CONFLICT, 403: {"model": Message}})
async def activate(
    personal_id: PersonalIdParam, body: ActivationCreate, service: ServiceDep
) -> AccountStatusPublic:
    """The citizen's first log-in (no credentials: the activation code is the credential): sets the
    passcode."""
    account = await run_in_threadpool(service.activate, personal_id, body.activation_code, body.passcode)
    return AccountStatusPublic.of(account)


@router.post("/{personal_id}/lock", responses=_CHANGE)
async def lock(
    personal_id: PersonalIdParam,
    body: LockCreate,
    officer: OfficerDep,
    service: ServiceDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> AccountPublic:
    """Lock the account: no log-in, outstanding tokens stop working. Unlocking restores the status."""
    account = await _officer_call(
        officer, audit, request_id, personal_id, "lock", lambda: service.lock(personal_id, body.reason)
    )
    return _public(account)


@router.post("/{personal_id}/unlock", responses=_CHANGE)
async def unlock(
    personal_id: PersonalIdParam,
    officer: OfficerDep,
    service: ServiceDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> AccountPublic:
    """Return a locked account to the status it was locked from."""
    account = await _officer_call(
        officer, audit, request_id, personal_id, "unlock", lambda: service.unlock(personal_id)
    )
    return _public(account)


@router.get(
    "/{personal_id}",
    response_model=AccountLookupPublic,
    response_model_exclude_unset=True,
    responses={404: {"model": Message, "description": "no account"}},
)
async def read_status(
    personal_id: PersonalIdParam,
    purpose: PurposeParam,
    caller: AgencyDep,
    service: ServiceDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> AccountLookupPublic:
    """An account's status, level, province and dates, and its personal ID: the fields the caller's scopes
    cover (`account.status`, `account.identity`); the others are left out and named in `withheld`.
    Audited: who asked, about which citizen, which fields were shown, when, why, under which request."""

    def lookup() -> AccountLookupPublic:
        account = service.find(personal_id)
        disclosed, withheld = split_fields(_LOOKUP_FIELDS, caller.scopes)
        # "No account" tells something about the citizen too: every look-up is audited.
        fields = disclosed if account else ["exists"]
        audit.record([Disclosure(caller.agency, personal_id, fields, purpose, request_id, "accounts.read")])
        if account is None:
            raise AccountNotFoundError("no e-ID account for this personal ID")
        shown = {field: getattr(account, field) for field in disclosed}
        return AccountLookupPublic(**shown, withheld=withheld)

    return await run_in_threadpool(lookup)
