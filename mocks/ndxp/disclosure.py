"""What a request discloses: look citizens up, judge claimed fields, and audit every disclosure.

The judging is pure; `lookup_and_audit` does the I/O (blocking, so callers run it in the thread pool).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import JsonValue
from pydantic_core import to_json

from mocks.ndxp.audit import AuditLog, Disclosure
from mocks.ndxp.db import PopulationStore
from mocks.ndxp.models import BatchItemPublic, CitizenPublic, FieldResult, VerifyPublic, VerifyQuery
from schemas.citizen import Citizen
from schemas.names import fold_diacritics, normalize_name

__all__ = [
    "BAD_ID",
    "batch_items",
    "batch_json",
    "citizen_fields",
    "judge_name",
    "lookup_and_audit",
    "verify_fields",
    "verify_result",
]

BAD_ID = "not an ID: expected a string of 9 or 12 ASCII digits"
_ID = re.compile(r"[0-9]{12}|[0-9]{9}")
_BAD_ID_JSON = to_json(BAD_ID).decode()
_CITIZEN_FIELDS = tuple(Citizen.model_fields)


def citizen_fields(citizen: Citizen) -> list[str]:
    """Every field a full disclosure of `citizen` shows (the basic fields and the NPD's extras)."""
    return [*_CITIZEN_FIELDS, *(citizen.model_extra or {})]


def judge_name(claimed: str, actual: str) -> FieldResult:
    """`match` after harmless normalisation, else `match_without_diacritics` after folding (Đ → D),
    else `mismatch`."""
    if normalize_name(claimed) == normalize_name(actual):
        return "match"
    if fold_diacritics(claimed) == fold_diacritics(actual):
        return "match_without_diacritics"
    return "mismatch"


def verify_fields(query: VerifyQuery, citizen: Citizen) -> dict[str, FieldResult]:
    """One result per field the caller claimed."""
    results: dict[str, FieldResult] = {}
    if query.full_name is not None:
        results["full_name"] = judge_name(query.full_name, citizen.full_name)
    if query.date_of_birth is not None:
        results["date_of_birth"] = "match" if query.date_of_birth == citizen.date_of_birth else "mismatch"
    if query.gender is not None:
        results["gender"] = "match" if query.gender == citizen.gender else "mismatch"
    return results


def verify_disclosed(query: VerifyQuery) -> list[str]:
    """Fields a verification discloses: the ID mapping, the two facts it reports, and each claimed field."""
    claimed = [f for f in ("full_name", "date_of_birth", "gender") if getattr(query, f) is not None]
    return ["personal_id", "deceased", "permanent_province", *claimed]


def verify_result(query: VerifyQuery, citizen: Citizen | None) -> VerifyPublic:
    if citizen is None:
        return VerifyPublic(found=False)
    return VerifyPublic(
        found=True,
        personal_id=citizen.personal_id,
        fields=verify_fields(query, citizen),
        deceased=citizen.deceased,
        permanent_province=citizen.permanent_province,
    )


def queryable(ids: Sequence[JsonValue]) -> list[str]:
    """The items of a batch that are IDs (strings of 9 or 12 ASCII digits)."""
    return [i for i in ids if isinstance(i, str) and _ID.fullmatch(i)]


def batch_items(ids: Sequence[JsonValue], found: dict[str, Citizen]) -> list[BatchItemPublic]:
    """One item per queried ID, in request order; malformed items carry an `error`."""
    public: dict[str, CitizenPublic] = {}
    items = []
    for query_id in ids:
        if not (isinstance(query_id, str) and _ID.fullmatch(query_id)):
            items.append(BatchItemPublic(query_id=query_id, found=False, error=BAD_ID))
        elif (citizen := found.get(query_id)) is None:
            items.append(BatchItemPublic(query_id=query_id, found=False))
        else:
            if citizen.personal_id not in public:
                public[citizen.personal_id] = CitizenPublic.of(citizen)
            items.append(BatchItemPublic(query_id=query_id, found=True, citizen=public[citizen.personal_id]))
    return items


def lookup_and_audit(
    store: PopulationStore,
    audit: AuditLog,
    ids: list[str],
    *,
    agency: str,
    purpose: str,
    request_id: str,
    endpoint: str,
    disclosed: Callable[[Citizen], Sequence[str]] = citizen_fields,
) -> dict[str, Citizen]:
    """Look `ids` up and audit one disclosure per distinct citizen found (one write for the lot)."""
    found = store.lookup_many(ids)
    citizens = {c.personal_id: c for c in found.values()}
    at = datetime.now(UTC)  # one time for the whole request
    audit.record(
        [
            Disclosure(agency, pid, disclosed(c), purpose, request_id, endpoint, at)
            for pid, c in sorted(citizens.items())
        ]
    )
    return found


def batch_json(ids: Sequence[JsonValue], found: dict[str, Citizen]) -> bytes:
    """`BatchPublic(results=batch_items(ids, found))` as JSON, built directly.

    The batch endpoint is the workers' hot path: building 1000 response models and letting FastAPI
    dump, re-validate and serialise them cost about three times the database work. Each citizen is
    serialised once by pydantic (a Citizen's JSON is a CitizenPublic's); the rest is stitched here.
    The integration tests check the body against `BatchPublic`.
    """
    citizens: dict[str, str] = {}
    parts = []
    for query_id in ids:
        qid = to_json(query_id).decode()
        if not (isinstance(query_id, str) and _ID.fullmatch(query_id)):
            parts.append(f'{{"query_id":{qid},"found":false,"citizen":null,"error":{_BAD_ID_JSON}}}')
        elif (citizen := found.get(query_id)) is None:
            parts.append(f'{{"query_id":{qid},"found":false,"citizen":null,"error":null}}')
        else:
            body = citizens.get(citizen.personal_id)
            if body is None:
                body = citizens[citizen.personal_id] = citizen.model_dump_json()
            parts.append(f'{{"query_id":{qid},"found":true,"citizen":{body},"error":null}}')
    return f'{{"results":[{",".join(parts)}]}}'.encode()
