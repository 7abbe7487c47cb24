"""`/v1/audit`: read the disclosure audit (the `audit.read` scope: auditors' clients or keys only).

There is no way to change it: no route writes the audit but the disclosures themselves, and SQLite
triggers refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from mocks.ndxp.deps import AuditDep, AuditorDep
from mocks.ndxp.models import AuditEntriesPublic, AuditEntryPublic

__all__ = ["router"]

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("")
async def read_audit(
    _auditor: AuditorDep,
    audit: AuditDep,
    agency: Annotated[str | None, Query(description="only this agency's disclosures")] = None,
    request_id: Annotated[str | None, Query(description="only this request's disclosures")] = None,
    personal_id: Annotated[str | None, Query(description="only this citizen's disclosures")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AuditEntriesPublic:
    """The newest `limit` disclosures matching every filter given, newest first.

    To trace one record of a run: its Kafka message's `x-request-id` header is the request ID of the
    worker's NDXP call; filter by that `request_id` and the record's `personal_id`.
    """
    entries = await run_in_threadpool(
        audit.read, agency=agency, request_id=request_id, personal_id=personal_id, limit=limit
    )
    public = [AuditEntryPublic.model_validate(e, from_attributes=True) for e in entries]
    return AuditEntriesPublic(entries=public, count=len(public))
