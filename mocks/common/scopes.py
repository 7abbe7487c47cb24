"""The field-to-scope split the mocks share: a field list split by the scopes that disclose each field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["split_fields"]


def split_fields(
    field_scopes: Mapping[str, str], default: str, fields: Iterable[str], scopes: frozenset[str]
) -> tuple[list[str], list[str]]:
    """(disclosed, withheld): `fields` in their order, split by whether `scopes` covers each field's scope
    in `field_scopes` (`default` for any field the map does not name)."""
    disclosed: list[str] = []
    withheld: list[str] = []
    for field in fields:
        (disclosed if field_scopes.get(field, default) in scopes else withheld).append(field)
    return disclosed, withheld
