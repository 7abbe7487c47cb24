"""What a request discloses: look citizens up, judge claimed fields, keep to the caller's scopes, and
audit every disclosure.

Everything but `lookup_and_audit` is pure; that one does the I/O (blocking: callers run it in the thread
pool). A field the caller's scopes do not cover is withheld: left out of the answer and named in the
answer's `withheld` list, and left out of the audit entry, which records what was actually disclosed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import JsonValue
from pydantic_core import to_json

from mocks.common.audit import AuditLog, Disclosure
from mocks.ndxp.db import PopulationStore
from mocks.ndxp.models import FieldResult, VerifyPublic, VerifyQuery
from mocks.ndxp.scopes import split_fields
from schemas.citizen import Citizen
from schemas.names import fold_diacritics, normalize_name

__all__ = [
    "BAD_ID",
    "FieldFilter",
    "batch_json",
    "citizen_fields",
    "judge_name",
    "lookup_and_audit",
    "verify_disclosed",
    "verify_fields",
    "verify_result",
]

_log = logging.getLogger("mocks.ndxp")  # the package logger: it carries the ID-masking filter

BAD_ID = "not an ID: expected a string of 9 or 12 ASCII digits"
_ID = re.compile(r"[0-9]{12}|[0-9]{9}")
_BAD_ID_JSON = to_json(BAD_ID).decode()
_CITIZEN_FIELDS = tuple(Citizen.model_fields)


def citizen_fields(citizen: Citizen) -> list[str]:
    """Every field a full disclosure of `citizen` shows (the basic fields and the NPD's extras)."""
    return [*_CITIZEN_FIELDS, *(citizen.model_extra or {})]


class _Split(NamedTuple):
    disclosed: list[str]
    withheld: list[str]
    include: set[str] | None  # what to serialise; None: everything (the fast path)
    withheld_json: str


class FieldFilter:
    """Splits citizens' fields by the caller's scopes, memoised per field list (the citizens of a batch
    share a handful of field lists, so a 1,000-ID batch splits a few times, not a thousand)."""

    def __init__(self, scopes: frozenset[str]) -> None:
        self.scopes = scopes
        self._splits: dict[tuple[str, ...], _Split] = {}

    def split(self, citizen: Citizen) -> _Split:
        fields = (*_CITIZEN_FIELDS, *(citizen.model_extra or {}))
        split = self._splits.get(fields)
        if split is None:
            shown, withheld = split_fields(fields, self.scopes)
            include = set(shown) if withheld else None
            split = self._splits[fields] = _Split(shown, withheld, include, to_json(withheld).decode())
        return split

    def disclosed(self, citizen: Citizen) -> list[str]:
        """The fields of `citizen` this caller is shown (what its audit entry records)."""
        return self.split(citizen).disclosed

    def citizen_json(self, citizen: Citizen) -> tuple[str, str]:
        """(the citizen object as JSON with only the disclosed fields, the `withheld` list as JSON)."""
        split = self.split(citizen)
        body = (
            citizen.model_dump_json()
            if split.include is None
            else citizen.model_dump_json(include=split.include)
        )
        return body, split.withheld_json

    def document(self, citizen: Citizen) -> bytes:
        """`GET /v1/citizens/{id}`'s body: the disclosed fields and `withheld`."""
        split = self.split(citizen)
        body = citizen.model_dump(mode="json", include=split.include)
        return to_json({**body, "withheld": split.withheld})


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


def verify_result(query: VerifyQuery, citizen: Citizen | None, scopes: frozenset[str]) -> dict[str, Any]:
    """The verification's JSON body: what `verify_disclosed` names, less what `scopes` do not cover."""
    if citizen is None:
        return VerifyPublic(found=False).model_dump(mode="json")
    body = VerifyPublic(
        found=True,
        personal_id=citizen.personal_id,
        fields=verify_fields(query, citizen),
        deceased=citizen.deceased,
        permanent_province=citizen.permanent_province,
    ).model_dump(mode="json")
    _, withheld = split_fields(verify_disclosed(query), scopes)
    for name in withheld:
        if name in body:
            del body[name]  # personal_id, deceased, permanent_province
        else:
            del body["fields"][name]  # a claimed field's result
    body["withheld"] = withheld
    return body


def queryable(ids: Sequence[JsonValue]) -> list[str]:
    """The items of a batch that are IDs (strings of 9 or 12 ASCII digits)."""
    return [i for i in ids if isinstance(i, str) and _ID.fullmatch(i)]


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
    # The request ID ties this line to the audit entries and to the caller's own logs (X-Road style).
    _log.info("request %s: %s, %s: %d citizens disclosed", request_id, agency, endpoint, len(citizens))
    return found


def batch_json(ids: Sequence[JsonValue], found: dict[str, Citizen], fields: FieldFilter) -> bytes:
    """`BatchPublic` of the answers to `ids` as JSON, built directly.

    The batch endpoint is the workers' hot path: building 1000 response models and letting FastAPI
    dump, re-validate and serialise them cost about three times the database work. Each citizen is
    serialised once by pydantic (only the fields `fields` lets through); the rest is stitched here.
    The integration tests check the body against `BatchPublic`.
    """
    citizens: dict[str, tuple[str, str]] = {}
    parts = []
    for query_id in ids:
        qid = to_json(query_id).decode()
        if not (isinstance(query_id, str) and _ID.fullmatch(query_id)):
            parts.append(
                f'{{"query_id":{qid},"found":false,"citizen":null,"withheld":[],"error":{_BAD_ID_JSON}}}'
            )
        elif (citizen := found.get(query_id)) is None:
            parts.append(f'{{"query_id":{qid},"found":false,"citizen":null,"withheld":[],"error":null}}')
        else:
            answer = citizens.get(citizen.personal_id)
            if answer is None:
                answer = citizens[citizen.personal_id] = fields.citizen_json(citizen)
            body, withheld = answer
            parts.append(
                f'{{"query_id":{qid},"found":true,"citizen":{body},"withheld":{withheld},"error":null}}'
            )
    return f'{{"results":[{",".join(parts)}]}}'.encode()
