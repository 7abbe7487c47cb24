"""Which fields of an e-ID account each agency scope discloses, and what the officers' scope allows. Pure.

| scope              | allows                                                                       |
|--------------------|------------------------------------------------------------------------------|
| `account.status`   | the look-up's status, level, province (where filed) and lifecycle dates      |
| `account.identity` | the look-up's personal ID, and any field of the look-up not named above      |
| `account.officer`  | the police's operations: apply, approve, verify in person, lock, unlock      |
|                    | (their answers carry the account as the police see it: name, birth date …)   |
| `audit.read`       | nothing of an account: `GET /v1/audit` only (auditors only)                  |

A look-up field the map does not name falls under `account.identity`, so a new field is withheld from
agencies trusted with the status only, never disclosed by default.
"""

from __future__ import annotations

from collections.abc import Iterable

from mocks.common import scopes as shared
from mocks.common.agency import AUDIT_READ

__all__ = [
    "ACCOUNT_SCOPES",
    "AUDIT_READ",
    "FIELD_SCOPES",
    "IDENTITY",
    "KNOWN_SCOPES",
    "LOOKUP_SCOPES",
    "OFFICER",
    "STATUS",
    "field_scope",
    "split_fields",
]

STATUS, IDENTITY, OFFICER = "account.status", "account.identity", "account.officer"
LOOKUP_SCOPES: tuple[str, ...] = (STATUS, IDENTITY)  # what an agency's status look-up may disclose
ACCOUNT_SCOPES: tuple[str, ...] = (*LOOKUP_SCOPES, OFFICER)
KNOWN_SCOPES: frozenset[str] = frozenset({*ACCOUNT_SCOPES, AUDIT_READ})

_FIELDS: dict[str, tuple[str, ...]] = {
    STATUS: (
        "status",
        "level",
        "province",
        "applied_at",
        "approved_at",
        "activated_at",
        "locked_at",
        "updated_at",
    ),
    IDENTITY: ("personal_id",),
}
FIELD_SCOPES: dict[str, str] = {field: scope for scope, fields in _FIELDS.items() for field in fields}


def field_scope(field: str) -> str:
    """The scope that discloses `field` (`account.identity` for any field the map does not name)."""
    return FIELD_SCOPES.get(field, IDENTITY)


def split_fields(fields: Iterable[str], scopes: frozenset[str]) -> tuple[list[str], list[str]]:
    """(disclosed, withheld): `fields` in their order, split by whether `scopes` covers each."""
    return shared.split_fields(FIELD_SCOPES, IDENTITY, fields, scopes)
