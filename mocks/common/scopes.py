"""Field-to-scope look-ups the mocks share: which scope discloses a field, and a field list split by it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["field_scope", "split_fields"]


def field_scope(field_scopes: Mapping[str, str], default: str, field: str) -> str:
    """The scope that discloses `field` in `field_scopes` (`default` for any field the map does not name)."""
    return field_scopes.get(field, default)


def split_fields(
    field_scopes: Mapping[str, str], default: str, fields: Iterable[str], scopes: frozenset[str]
) -> tuple[list[str], list[str]]:
    """(disclosed, withheld): `fields` in their order, split by whether `scopes` covers each."""
    disclosed: list[str] = []
    withheld: list[str] = []
    for field in fields:
        (disclosed if field_scope(field_scopes, default, field) in scopes else withheld).append(field)
    return disclosed, withheld
