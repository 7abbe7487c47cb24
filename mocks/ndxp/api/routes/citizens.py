"""`/v1/citizens`: read one citizen, verify claimed fields, verify a batch of IDs (the workers' path).

Every answer keeps to the caller's scopes: a field they do not cover is left out and named in the
answer's `withheld` list; the audit entry lists the fields actually disclosed.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from pydantic_core import to_json

from mocks.ndxp import disclosure
from mocks.ndxp.api.routes.params import PersonalIdParam, PurposeParam
from mocks.ndxp.batch import answer_batch_async
from mocks.ndxp.deps import AgencyDep, AuditDep, RequestIdDep, StoreDep
from mocks.ndxp.models import (
    BatchPublic,
    BatchQuery,
    CitizenDisclosurePublic,
    Message,
    VerifyPublic,
    VerifyQuery,
)
from mocks.ndxp.scopes import split_fields

__all__ = ["router"]

router = APIRouter(prefix="/citizens", tags=["citizens"])

_JSON = "application/json"

# Every handler awaits the stores' async look-up and audit write (PostgreSQL: an async connection pool;
# SQLite: a worker thread): the event loop keeps serving the other workers' batches meanwhile.


@router.get(
    "/{personal_id}",
    response_model=CitizenDisclosurePublic,
    responses={404: {"model": Message, "description": "no such citizen"}},
)
async def read_citizen(
    personal_id: PersonalIdParam,
    purpose: PurposeParam,
    agency: AgencyDep,
    store: StoreDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> Response:
    """The citizen's basic fields that the caller's scopes cover, and `withheld`: the others.
    Audited: every field shown."""
    fields = disclosure.FieldFilter(agency.scopes)
    found = await disclosure.lookup_and_audit(
        store,
        audit,
        [personal_id],
        agency=agency.agency,
        purpose=purpose,
        request_id=request_id,
        endpoint="citizens.read",
        disclosed=fields.disclosed,
    )
    citizen = found.get(personal_id)
    if citizen is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no citizen with this personal ID in the NPD")
    return Response(fields.document(citizen), media_type=_JSON)


@router.post("/verify", response_model=VerifyPublic)
async def verify(
    query: VerifyQuery, agency: AgencyDep, store: StoreDep, audit: AuditDep, request_id: RequestIdDep
) -> Response:
    """Check claimed fields of one citizen (by 12-digit or 9-digit ID) without disclosing them.

    Each claimed field comes back as `match`, `match_without_diacritics` (names only) or `mismatch`.
    Audited: the ID mapping, `deceased`, `permanent_province` and each claimed field, as far as the
    caller's scopes cover them (`citizen.identity`, `citizen.status`, `citizen.residence`).
    """
    shown, _ = split_fields(disclosure.verify_disclosed(query), agency.scopes)
    found = await disclosure.lookup_and_audit(
        store,
        audit,
        [query.id],
        agency=agency.agency,
        purpose=query.purpose,
        request_id=request_id,
        endpoint="citizens.verify",
        disclosed=lambda _: shown,
    )
    result = disclosure.verify_result(query, found.get(query.id), agency.scopes)
    return Response(to_json(result), media_type=_JSON)


@router.post("/verify-batch", response_model=BatchPublic)
async def verify_batch(
    query: BatchQuery, agency: AgencyDep, store: StoreDep, audit: AuditDep, request_id: RequestIdDep
) -> Response:
    """Look up to 1000 IDs up in one query; results in request order.

    An item that is not a string of 9 or 12 ASCII digits is answered `found: false` with an `error`
    (the batch goes on). Each citizen carries the fields the caller's scopes cover; `withheld` names
    the others. Audited: one entry per distinct citizen found, with the fields shown.
    """
    fields = disclosure.FieldFilter(agency.scopes)
    # The citizens' JSON comes from the store as bytes, joined on the loop (under a millisecond for 1000);
    # only a caller without every scope has each citizen's JSON filtered (a few ms for 1000).
    body = await answer_batch_async(
        store,
        audit,
        query.ids,
        fields,
        agency=agency.agency,
        purpose=query.purpose,
        request_id=request_id,
        endpoint="citizens.verify_batch",
    )
    return Response(body, media_type=_JSON)
