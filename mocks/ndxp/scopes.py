"""Which basic fields of a citizen each OAuth scope discloses (least privilege per agency). Pure.

| scope               | fields                                                                  |
|---------------------|-------------------------------------------------------------------------|
| `citizen.identity`  | personal_id, legacy_id, full_name, date_of_birth, gender                |
| `citizen.residence` | permanent_province, current_residence, birth_province, home_town,       |
|                     | residence_status, residence_since, residence_ended_on                   |
| `citizen.status`    | status, date_of_death (and `deceased` in a verification)                |
| `citizen.family`    | marital_status, parents', spouse's, household head's names and IDs      |
| `citizen.other`     | ethnicity, religion, nationality, blood_type, and any field not above   |
| `audit.read`        | no citizen field: reading the disclosure audit (auditors only)          |
| `civil.register`    | no field: registering births, deaths, marriages (changes the NPD)       |
| `residence.write`   | no field: registering and ending permanent residences                   |

A field the map does not name falls under `citizen.other`, so a new field of the NPD is withheld from
every agency not explicitly trusted with "everything else", never disclosed by default.
"""

from __future__ import annotations

from collections.abc import Iterable

from mocks.common import scopes as shared
from mocks.common.agency import AUDIT_READ

__all__ = [
    "AUDIT_READ",
    "CITIZEN_SCOPES",
    "CIVIL_REGISTER",
    "FAMILY",
    "FIELD_SCOPES",
    "IDENTITY",
    "KNOWN_SCOPES",
    "OTHER",
    "RESIDENCE",
    "RESIDENCE_WRITE",
    "STATUS",
    "WRITE_SCOPES",
    "field_scope",
    "split_fields",
]

IDENTITY, RESIDENCE, STATUS, FAMILY, OTHER = (
    "citizen.identity",
    "citizen.residence",
    "citizen.status",
    "citizen.family",
    "citizen.other",
)
# Scopes that change the NPD; they disclose no field by themselves.
CIVIL_REGISTER, RESIDENCE_WRITE = "civil.register", "residence.write"
CITIZEN_SCOPES: tuple[str, ...] = (IDENTITY, RESIDENCE, STATUS, FAMILY, OTHER)
WRITE_SCOPES: tuple[str, ...] = (CIVIL_REGISTER, RESIDENCE_WRITE)
KNOWN_SCOPES: frozenset[str] = frozenset({*CITIZEN_SCOPES, AUDIT_READ, *WRITE_SCOPES})

_FIELDS: dict[str, tuple[str, ...]] = {
    IDENTITY: ("personal_id", "legacy_id", "full_name", "date_of_birth", "gender"),
    RESIDENCE: (
        "permanent_province",
        "current_residence",
        "birth_province",
        "home_town",
        "residence_status",  # pending (a birth awaiting registration), registered, ended
        "residence_since",
        "residence_ended_on",
    ),
    STATUS: ("status", "date_of_death", "deceased"),
    FAMILY: (
        "marital_status",
        "father_id",
        "father_name",
        "mother_id",
        "mother_name",
        "spouse_id",
        "spouse_name",
        "household_head_id",
        "household_head_name",
        "relation_to_head",
    ),
    OTHER: ("ethnicity", "religion", "nationality", "blood_type"),
}
FIELD_SCOPES: dict[str, str] = {field: scope for scope, fields in _FIELDS.items() for field in fields}


def field_scope(field: str) -> str:
    """The scope that discloses `field` (`citizen.other` for any field the map does not name)."""
    return FIELD_SCOPES.get(field, OTHER)


def split_fields(fields: Iterable[str], scopes: frozenset[str]) -> tuple[list[str], list[str]]:
    """(disclosed, withheld): `fields` in their order, split by whether `scopes` covers each."""
    return shared.split_fields(FIELD_SCOPES, OTHER, fields, scopes)
