"""The outcome rules 2–12 of CONTRACT.md as one pure function of record, citizen and what the source has seen.

Civil-status records change the NPD instead of only checking it: `schemas.civil.decide_civil` decides
them, and `decide` refuses them.

Rule 1 (`rejected`) is decided earlier, by `schemas.records.parse_line` / `parse_object`. The caller:

    key = lookup_key(record)                      # None: rules 2–3 decide, no NPD look-up needed
    citizen = npd.find(key) if key else None      # by 12-digit or by legacy 9-digit ID
    first = holders.get(holder_key(record))       # record_id of the source's first holder of that ID
    decision = decide(record, citizen, first)
    if decision.passed_identity and first is None:
        holders[holder_key(record)] = record.record_id
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.citizen import Citizen
from schemas.names import fold_diacritics, normalize_name
from schemas.outcomes import Outcome, Sector
from schemas.personal_id import consistent_with, id_shape
from schemas.provinces import ProvinceMap, same_province
from schemas.records import REQUIRED_FIELDS, Record

__all__ = ["Decision", "decide", "differing_fields", "holder_key", "lookup_key", "npd_corrections"]

_IDENTITY: tuple[str, ...] = ("personal_id", "full_name", "date_of_birth", "gender")
# CONTRACT.md: `fields` holds "the mismatching or missing fields, where there are any"; a malformed ID is
# neither, so its `fields` stay empty (the outcome itself names the problem).
_ID_FIELD: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """One record's outcome, the fields it names, and what the caller must remember or emit."""

    outcome: Outcome
    # missing_fields: the absent/unreadable required fields; mismatch: the differing ones;
    # malformed_id: ("personal_id",). Empty otherwise.
    fields: tuple[str, ...] = ()
    # Got past step 6 (the ID is well formed, the citizen exists and agrees with the ID): only such
    # records can be the first holder that makes later ones duplicates (rule 7).
    passed_identity: bool = False
    # corrected: field → the NPD's authoritative value, the correction to emit.
    corrections: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the outcome as its string, fields as a list."""
        return {
            "outcome": self.outcome.value,
            "fields": list(self.fields),
            "passed_identity": self.passed_identity,
            "corrections": dict(self.corrections),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Inverse of `to_dict` (for a decision read back from a topic)."""
        return cls(
            outcome=Outcome(data["outcome"]),
            fields=tuple(data.get("fields", ())),
            passed_identity=bool(data.get("passed_identity", False)),
            corrections=dict(data.get("corrections", {})),
        )


# The decisions that carry nothing but their outcome, built once: `decide` runs for every record, and a
# frozen dataclass costs more to build than the rules cost to apply. Never mutated (frozen; the empty
# corrections are only read).
_NOT_FOUND = Decision(Outcome.NOT_FOUND)
_MALFORMED = Decision(Outcome.MALFORMED_ID, _ID_FIELD)
_DUPLICATE = Decision(Outcome.DUPLICATE, passed_identity=True)
_DECEASED = Decision(Outcome.DECEASED, passed_identity=True)
_MOVED = Decision(Outcome.MOVED, passed_identity=True)
_CLEANED = Decision(Outcome.CLEANED, passed_identity=True)
_CIVIL = Sector.CIVIL_STATUS.value
_LABOUR = Sector.LABOUR.value


def _missing(record: Record) -> tuple[str, ...]:
    """Rule 2's fields: `record.missing`, plus any identity field the record lacks (in required order).

    For a parsed record of the sectors `decide` judges this is `record.missing`; the union keeps `decide`
    total for a hand-built Record whose `missing` forgot a None field.
    """
    if (
        not record.missing
        and record.personal_id is not None
        and record.full_name is not None
        and record.date_of_birth is not None
        and record.gender is not None
    ):
        return ()
    absent = set(record.missing)
    absent.update(name for name in _IDENTITY if getattr(record, name) is None)
    if not absent:
        return ()
    order = REQUIRED_FIELDS.get(record.sector, _IDENTITY)
    return tuple(f for f in order if f in absent) + tuple(sorted(absent.difference(order)))


def lookup_key(record: Record) -> str | None:
    """The trimmed ID to look up in the NPD, or None when rules 2–3 already decide the record."""
    if _missing(record) or record.personal_id is None or id_shape(record.personal_id) == "malformed":
        return None
    return record.personal_id


def holder_key(record: Record) -> tuple[str, str, str] | None:
    """The key of rule 7's first-holder state: source (sector, province) and the trimmed ID as carried."""
    if record.personal_id is None:
        return None
    return (record.sector, record.province, record.personal_id)


def decide(
    record: Record,
    citizen: Citizen | None,
    first_holder: str | None,
    *,
    provinces: ProvinceMap = ProvinceMap.LEGACY,
) -> Decision:
    """Apply rules 2–12 in order; the first that applies wins.

    `citizen` is the NPD's answer for `lookup_key(record)` (None when absent or not looked up);
    `first_holder` is the record_id of the source's earliest record with the same trimmed personal_id
    that got past step 6, or None. `provinces` is the map rule 9 compares residences by (`map_for` of a
    scenario's `as_of`): under the current one, old Hà Giang (002) and Tuyên Quang (008) are one province.
    A civil_status record raises ValueError: use `schemas.civil`.
    """
    if record.sector == _CIVIL:
        raise ValueError(
            f"record {record.record_id!r} is a civil_status record: civil-status events change the NPD and "
            "are decided by schemas.civil.decide_civil, not schemas.rules.decide"
        )
    pid, name, born, gender = record.personal_id, record.full_name, record.date_of_birth, record.gender
    # Rule 2.
    missing = _missing(record)
    if missing or pid is None or name is None or born is None or gender is None:
        return Decision(Outcome.MISSING_FIELDS, missing)
    # Rule 3.
    shape = id_shape(pid)
    if shape == "malformed":
        return _MALFORMED
    # Rules 4 and 5: the caller looked the ID up (a legacy one through its mapping) and found nobody.
    if citizen is None:
        return _NOT_FOUND
    # Rule 6: the NPD's own gender and birth year against the ID's G and YY digits; a legacy ID has
    # no such digits, so the 12-digit ID it maps to is checked.
    checked_id = citizen.personal_id if shape == "legacy" else pid
    if not consistent_with(checked_id, citizen.gender, citizen.date_of_birth.year):
        return _MALFORMED
    # Rule 7: comparing record_ids keeps a re-delivered first holder first (at-least-once processing).
    if first_holder is not None and first_holder != record.record_id:
        return _DUPLICATE
    # Rule 8.
    if citizen.deceased:
        return _DECEASED
    # Rule 9: labour forms are not written for citizens who moved their permanent residence.
    if record.sector == _LABOUR and not same_province(citizen.permanent_province, record.province, provinces):
        return _MOVED
    # Rule 10.
    differing = differing_fields(record, citizen)
    if differing:
        return Decision(Outcome.MISMATCH, differing, passed_identity=True)
    # Rule 11.
    corrections = npd_corrections(record, citizen, shape)
    if corrections:
        return Decision(Outcome.CORRECTED, passed_identity=True, corrections=corrections)
    # Rule 12.
    return _CLEANED


def differing_fields(record: Record, citizen: Citizen) -> tuple[str, ...]:
    """Rule 10: the identity fields that differ from the NPD's, a name only if it differs even with
    diacritics removed. Shared with the civil-status rules (D8, M8); the record has a name (rule 2)."""
    assert record.full_name is not None
    differing: tuple[str, ...] = ()
    # Names equal as written, or after the harmless normalisation, are equal folded too (the common case).
    name, npd_name = record.full_name, citizen.full_name
    if (
        name != npd_name
        and normalize_name(name) != normalize_name(npd_name)
        and fold_diacritics(name) != fold_diacritics(npd_name)
    ):
        differing = ("full_name",)
    if record.date_of_birth != citizen.date_of_birth:
        differing += ("date_of_birth",)
    if record.gender != citizen.gender:
        differing += ("gender",)
    return differing


def npd_corrections(record: Record, citizen: Citizen, shape: str) -> dict[str, str]:
    """Rule 11: the NPD is authoritative for the 12-digit ID (of a legacy `shape` ID) and the name with its
    diacritics. Shared with the civil-status rules; the record has a name (rule 2)."""
    assert record.full_name is not None
    corrections: dict[str, str] = {}
    if shape == "legacy":
        corrections["personal_id"] = citizen.personal_id
    if record.full_name != citizen.full_name and normalize_name(record.full_name) != normalize_name(
        citizen.full_name
    ):
        corrections["full_name"] = citizen.full_name
    return corrections
