"""`/v1/residence`: register and end permanent residences (scope `residence.write`), idempotent by the
caller's `reference`.

A birth leaves the child's `residence_status` `pending` until the residence is registered; a death is
followed by the residence's deregistration. Every change is one audit entry (endpoints
`residence.register`, `residence.deregister`); a refusal that reveals a field (deceased …) is audited too.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from mocks.common.audit import AuditLog, Disclosure
from mocks.ndxp.api.routes.civil import civil_registry
from mocks.ndxp.civil_db import ResidenceChange, ResidenceConflictError, UnknownCitizenError
from mocks.ndxp.deps import AgencyDep, AuditDep, Principal, RequestIdDep, require_scope
from mocks.ndxp.models import Message, ResidenceDeregistration, ResidencePublic, ResidenceRegistration
from mocks.ndxp.scopes import RESIDENCE_WRITE

__all__ = ["router"]

router = APIRouter(prefix="/residence", tags=["residence"])

_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"model": Message, "description": "the caller lacks the residence.write scope"},
    404: {"model": Message, "description": "no citizen with this personal ID"},
    409: {"model": Message, "description": "not allowed (deceased, dates, reference reused): do not retry"},
}


async def _change(
    agency: Principal,
    audit: AuditLog,
    request_id: str,
    *,
    purpose: str,
    endpoint: str,
    apply: Callable[[], ResidenceChange],
) -> ResidencePublic:
    require_scope(agency, RESIDENCE_WRITE, "change permanent residences")

    def work() -> ResidenceChange:
        try:
            change = apply()
        except ResidenceConflictError as exc:
            if exc.personal_id and exc.disclosed:
                audit.record(
                    [Disclosure(agency.agency, exc.personal_id, exc.disclosed, purpose, request_id, endpoint)]
                )
            raise
        audit.record(
            [Disclosure(agency.agency, change.personal_id, change.touched, purpose, request_id, endpoint)]
        )
        return change

    try:
        change = await run_in_threadpool(work)
    except UnknownCitizenError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ResidenceConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return ResidencePublic(
        personal_id=change.personal_id,
        residence_status=change.residence_status,
        reference=change.reference,
        replayed=change.replayed,
    )


@router.post("/registrations", responses=_ERRORS)
async def register_residence(
    body: ResidenceRegistration,
    request: Request,
    agency: AgencyDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> ResidencePublic:
    """Register the citizen's permanent residence in `province` from `since`: `residence_status`
    becomes `registered`. A repeat with the same `reference` answers the same (`replayed: true`)."""
    registry = civil_registry(request)
    return await _change(
        agency,
        audit,
        request_id,
        purpose=body.purpose,
        endpoint="residence.register",
        apply=lambda: registry.register_residence(
            agency.agency, body.personal_id, body.province, body.since, body.reference
        ),
    )


@router.post("/deregistrations", responses=_ERRORS)
async def end_residence(
    body: ResidenceDeregistration,
    request: Request,
    agency: AgencyDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> ResidencePublic:
    """End the citizen's permanent residence on `on`: `residence_status` becomes `ended`. A repeat with
    the same `reference` answers the same (`replayed: true`)."""
    registry = civil_registry(request)
    return await _change(
        agency,
        audit,
        request_id,
        purpose=body.purpose,
        endpoint="residence.deregister",
        apply=lambda: registry.end_residence(agency.agency, body.personal_id, body.on, body.reference),
    )
