"""What a request discloses: look citizens up, judge claimed fields, keep to the caller's scopes, and
audit every disclosure.

Everything but `lookup_and_audit` is pure; that one does the I/O, with the stores' async look-up and audit
write (the event loop is never blocked). A field the caller's scopes do not cover is withheld: left out of
the answer and named in the answer's `withheld` list, and left out of the audit entry, which records what
was actually disclosed.
The batch endpoint's answer, built from stored rows rather than citizens, is in `mocks/ndxp/batch.py`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from pydantic_core import to_json

from mocks.common.audit import AuditStore, Disclosure
from mocks.ndxp.db import CitizenJson, PopulationStore
from mocks.ndxp.models import FieldResult, VerifyPublic, VerifyQuery
from mocks.ndxp.scopes import split_fields
from schemas.citizen import Citizen
from schemas.names import fold_diacritics, normalize_name

__all__ = [
    "BAD_ID",
    "FieldFilter",
    "citizen_fields",
    "judge_name",
    "lookup_and_audit",
    "verify_disclosed",
    "verify_fields",
    "verify_result",
]

_log = logging.getLogger("mocks.ndxp")  # the package logger: it carries the ID-masking filter

BAD_ID = "not an ID: expected a string of 9 or 12 ASCII digits"
_CITIZEN_FIELDS = tuple(Citizen.model_fields)


def citizen_fields(citizen: Citizen) -> list[str]:
    """Every field a full disclosure of `citizen` shows (the basic fields and the NPD's extras)."""
    return [*_CITIZEN_FIELDS, *(citizen.model_extra or {})]


class _Split(NamedTuple):
    disclosed: tuple[str, ...]
    withheld: list[str]
    include: set[str] | None  # what to serialise; None: everything (the fast path)
    withheld_json: bytes


def _keys(text: str) -> tuple[str, ...]:
    # orjson for speed: the keys are all that is read (it takes an integer past 64 bits for a float).
    return tuple(orjson.loads(text))


class FieldFilter:
    """Splits citizens' fields by the caller's scopes, memoised per field list (the citizens of a batch
    share a handful of field lists, so a 1,000-ID batch splits a few times, not a thousand)."""

    def __init__(self, scopes: frozenset[str]) -> None:
        self.scopes = scopes
        self._splits: dict[tuple[str, ...], _Split] = {}
        self._by_extra: dict[str | None, _Split] = {}

    def _split(self, fields: tuple[str, ...]) -> _Split:
        split = self._splits.get(fields)
        if split is None:
            shown, withheld = split_fields(fields, self.scopes)
            include = set(shown) if withheld else None
            split = self._splits[fields] = _Split(tuple(shown), withheld, include, to_json(withheld))
        return split

    def split(self, citizen: Citizen) -> _Split:
        return self._split((*_CITIZEN_FIELDS, *(citizen.model_extra or {})))

    def disclosed(self, citizen: Citizen) -> tuple[str, ...]:
        """The fields of `citizen` this caller is shown (what its audit entry records)."""
        return self.split(citizen).disclosed

    def document(self, citizen: Citizen) -> bytes:
        """`GET /v1/citizens/{id}`'s body: the disclosed fields and `withheld`."""
        split = self.split(citizen)
        body = citizen.model_dump(mode="json", include=split.include)
        return to_json({**body, "withheld": split.withheld})

    def json_split(self, citizen: CitizenJson) -> _Split:
        """The split of a citizen read as JSON (`mocks.ndxp.db.CitizenJson`)."""
        extra = citizen[1]
        # Memoised by the `extra` text: a batch's citizens share a few hundred, and only their keys count.
        split = self._by_extra.get(extra)
        if split is None:
            keys = _keys(extra) if extra else ()
            split = self._by_extra[extra] = self._split((*_CITIZEN_FIELDS, *keys))
        return split

    def json_body(self, citizen: CitizenJson) -> bytes:
        """The citizen object with only the disclosed fields: what `Citizen.model_dump_json` gives."""
        include = self.json_split(citizen).include
        if include is None:
            return citizen[2]
        # Withheld fields (a caller with fewer scopes): read and written again as the model did (stdlib
        # json keeps an integer past 64 bits exact, orjson does not).
        return to_json({k: v for k, v in json.loads(citizen[2]).items() if k in include})


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


async def lookup_and_audit(
    store: PopulationStore,
    audit: AuditStore,
    ids: list[str],
    *,
    agency: str,
    purpose: str,
    request_id: str,
    endpoint: str,
    disclosed: Callable[[Citizen], Sequence[str]] = citizen_fields,
) -> dict[str, Citizen]:
    """Look `ids` up and audit one disclosure per distinct citizen found (one write for the lot)."""
    found = await store.alookup_many(ids)
    citizens = {c.personal_id: c for c in found.values()}
    at = datetime.now(UTC)  # one time for the whole request
    await audit.arecord(
        [
            Disclosure(agency, pid, disclosed(c), purpose, request_id, endpoint, at)
            for pid, c in sorted(citizens.items())
        ]
    )
    # The request ID ties this line to the audit entries and to the caller's own logs (X-Road style).
    _log.info("request %s: %s, %s: %d citizens disclosed", request_id, agency, endpoint, len(citizens))
    return found
