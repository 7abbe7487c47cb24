"""`/v1/civil-status`: register births, deaths and marriages (scope `civil.register`): they change the NPD.

The records are the sector's own, as published; the rules are in `schemas/civil.py` and
docs/civil-status.md. A request is decided and applied in order in one transaction (all or nothing),
and answered in request order. Only synced results carry personal IDs; each citizen a request changed
or named is one audit entry (endpoint `civil.register`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic_core import to_json

from mocks.common.audit import Disclosure
from mocks.ndxp.civil_db import CivilRegistry, CivilResult
from mocks.ndxp.db import PopulationStore
from mocks.ndxp.deps import AgencyDep, AuditDep, RequestIdDep, require_scope
from mocks.ndxp.models import CivilRegistrationsPublic, CivilRegistrationsQuery, Message
from mocks.ndxp.scopes import CIVIL_REGISTER, IDENTITY

__all__ = ["civil_registry", "router"]

router = APIRouter(prefix="/civil-status", tags=["civil-status"])

ENDPOINT = "civil.register"


def civil_registry(request: Request) -> CivilRegistry:
    """The app's registry over its population database (made on first use: the app's lifespan opens
    the database, and the registry holds no connection of its own)."""
    registry: CivilRegistry | None = getattr(request.app.state, "civil", None)
    db: PopulationStore = request.app.state.db
    if registry is None or registry.db is not db:
        registry = request.app.state.civil = CivilRegistry(db)
    return registry


def audit_entries(
    results: Sequence[CivilResult], *, agency: str, purpose: str, request_id: str
) -> list[Disclosure]:
    """One entry per citizen the request changed or named, with every field written or disclosed."""
    fields: dict[str, dict[str, None]] = {}
    for result in results:
        for personal_id, touched in result.touched:
            fields.setdefault(personal_id, {}).update(dict.fromkeys(touched))
    at = datetime.now(UTC)
    return [
        Disclosure(agency, pid, list(names), purpose, request_id, ENDPOINT, at)
        for pid, names in sorted(fields.items())
    ]


@router.post(
    "/registrations",
    response_model=CivilRegistrationsPublic,
    responses={403: {"model": Message, "description": "the caller lacks civil.register or citizen.identity"}},
)
async def register(
    query: CivilRegistrationsQuery,
    request: Request,
    agency: AgencyDep,
    audit: AuditDep,
    request_id: RequestIdDep,
) -> Response:
    """Decide and apply 1–1000 civil_status records in order, all or nothing; results in request order.

    Needs `civil.register`, and `citizen.identity` since the answers carry personal IDs. A record
    registered before (same province, registration_no and record_id) answers as it did then, with
    `replayed: true`, and changes nothing. Audited: each citizen changed or named, once per request.
    """
    require_scope(agency, CIVIL_REGISTER, "register civil-status events")
    require_scope(agency, IDENTITY, "receive the personal IDs civil-status registrations answer with")
    registry = civil_registry(request)

    def work() -> bytes:
        results = registry.register(query.registrations)
        # Written right after the registrations' commit (the audit log opens its own transaction). Should
        # it fail, the request answers 500, the caller retries, and the retry, a replay, is audited.
        audit.record(
            audit_entries(results, agency=agency.agency, purpose=query.purpose, request_id=request_id)
        )
        return to_json({"results": [r.public() for r in results]})

    return Response(await run_in_threadpool(work), media_type="application/json")
