"""`/v1/legacy`: resolve a 9-digit legacy ID (CMND) to the 12-digit personal ID."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from mocks.ndxp import disclosure
from mocks.ndxp.api.routes.params import LegacyIdParam, PurposeParam
from mocks.ndxp.deps import AgencyDep, AuditDep, RequestIdDep, StoreDep, require_scope
from mocks.ndxp.models import LegacyPublic, Message
from mocks.ndxp.scopes import IDENTITY

__all__ = ["router"]

router = APIRouter(prefix="/legacy", tags=["legacy"])


@router.get(
    "/{legacy_id}",
    responses={
        403: {"model": Message, "description": "the caller lacks the citizen.identity scope"},
        404: {"model": Message, "description": "no citizen has this legacy ID"},
    },
)
async def resolve_legacy(
    legacy_id: LegacyIdParam,
    purpose: PurposeParam,
    agency: AgencyDep,
    store: StoreDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> LegacyPublic:
    """The personal ID a legacy ID maps to (needs `citizen.identity`: the answer is nothing else).
    Audited: `personal_id` disclosed."""
    require_scope(agency, IDENTITY, "resolve legacy IDs")
    found = await disclosure.lookup_and_audit(
        store,
        audit,
        [legacy_id],
        agency=agency.agency,
        purpose=purpose,
        request_id=request_id,
        endpoint="legacy.resolve",
        disclosed=lambda _: ["personal_id"],
    )
    citizen = found.get(legacy_id)
    if citizen is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no citizen with this legacy ID in the NPD")
    return LegacyPublic(legacy_id=legacy_id, personal_id=citizen.personal_id)
