"""`/v1/citizens`: read one citizen, verify claimed fields, verify a batch of IDs (the workers' path)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool

from mocks.ndxp import disclosure
from mocks.ndxp.api.routes.params import PersonalIdParam, PurposeParam
from mocks.ndxp.deps import AgencyDep, AuditDep, RequestIdDep, StoreDep
from mocks.ndxp.models import BatchPublic, BatchQuery, CitizenPublic, Message, VerifyPublic, VerifyQuery

__all__ = ["router"]

router = APIRouter(prefix="/citizens", tags=["citizens"])

# Every handler does its database work (look-up and audit write) in one thread-pool call:
# SQLite calls block, and the event loop must keep serving the other workers' batches.


@router.get("/{personal_id}", responses={404: {"model": Message, "description": "no such citizen"}})
async def read_citizen(
    personal_id: PersonalIdParam,
    purpose: PurposeParam,
    agency: AgencyDep,
    store: StoreDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> CitizenPublic:
    """The citizen's basic fields. Audited: every field shown."""
    found = await run_in_threadpool(
        disclosure.lookup_and_audit,
        store,
        audit,
        [personal_id],
        agency=agency.agency,
        purpose=purpose,
        request_id=request_id,
        endpoint="citizens.read",
    )
    citizen = found.get(personal_id)
    if citizen is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no citizen with this personal ID in the NPD")
    return CitizenPublic.of(citizen)


@router.post("/verify")
async def verify(
    query: VerifyQuery, agency: AgencyDep, store: StoreDep, audit: AuditDep, request_id: RequestIdDep
) -> VerifyPublic:
    """Check claimed fields of one citizen (by 12-digit or 9-digit ID) without disclosing them.

    Each claimed field comes back as `match`, `match_without_diacritics` (names only) or `mismatch`.
    Audited: the ID mapping, `deceased`, `permanent_province` and each claimed field.
    """
    found = await run_in_threadpool(
        disclosure.lookup_and_audit,
        store,
        audit,
        [query.id],
        agency=agency.agency,
        purpose=query.purpose,
        request_id=request_id,
        endpoint="citizens.verify",
        disclosed=lambda _: disclosure.verify_disclosed(query),
    )
    return disclosure.verify_result(query, found.get(query.id))


@router.post("/verify-batch", response_model=BatchPublic)
async def verify_batch(
    query: BatchQuery, agency: AgencyDep, store: StoreDep, audit: AuditDep, request_id: RequestIdDep
) -> Response:
    """Look up to 1000 IDs up in one query; results in request order.

    An item that is not a string of 9 or 12 ASCII digits is answered `found: false` with an `error`
    (the batch goes on). Audited: one entry per distinct citizen found, every field shown.
    """

    def answer() -> bytes:
        found = disclosure.lookup_and_audit(
            store,
            audit,
            disclosure.queryable(query.ids),
            agency=agency.agency,
            purpose=query.purpose,
            request_id=request_id,
            endpoint="citizens.verify_batch",
        )
        return disclosure.batch_json(query.ids, found)

    # The JSON is built in the worker thread too: 1000 citizens' serialisation stays off the event loop.
    return Response(await run_in_threadpool(answer), media_type="application/json")
