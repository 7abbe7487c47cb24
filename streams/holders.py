"""Rule 7's first holders, kept in memory and written to a faust table once per batch and partition."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["FirstHolders"]

log = logging.getLogger(__name__)


def raw_items(table: Any) -> list[tuple[Any, Any]]:
    """A faust table's entries in the order they were written (recovery replays the changelog in order).

    A memory-store table keeps them in a plain dict behind its `Store`; reading that dict directly spares
    the `Mapping` machinery (a test's stand-in table is that dict itself).
    """
    data = table.data
    inner = getattr(data, "data", data)
    return list(inner.items()) if isinstance(inner, Mapping) else list(data.items())


class FirstHolders:
    """Holder key (`sector|province|trimmed ID`) → record_id of the source's first record past step 6.

    faust writes one changelog message per table write, and that costs more than deciding a record
    (FACTS.md: consume + changelog per event halves a worker's rate). So the table holds one entry per
    batch and records-partition: the holders that batch found, as one JSON string. The look-ups use an
    index derived from the entries, rebuilt after every recovery. A holder once set never changes: a
    replayed batch finds its first holder already there and writes nothing new for it.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.index: dict[str, str] = {}
        self._new: dict[int, list[list[str]]] = {}  # partition -> [holder key, record_id] of this batch
        self._entry: dict[int, str] = {}  # partition -> the table key of this batch's entry

    def get(self, key: str) -> str | None:
        return self.index.get(key)

    def hold(self, partition: int, key: str, record_id: str, origin: str) -> None:
        """Make `record_id` the first holder of `key` unless one is known; `origin` names the batch entry."""
        if key in self.index:
            return
        self.index[key] = record_id
        self._new.setdefault(partition, []).append([key, record_id])
        self._entry.setdefault(partition, origin)

    def write(self) -> None:
        """Write this batch's new holders: one table entry (one changelog message) per partition."""
        for partition, pairs in self._new.items():
            key = f"holders|{self._entry[partition]}"
            value = orjson.dumps(pairs).decode()
            self.table.data[key] = value
            self.table.send_changelog(partition, key, value)
        self._new.clear()
        self._entry.clear()

    async def rebuild(self) -> None:
        """Derive the index again from the recovered table (faust calls this after every recovery)."""
        index: dict[str, str] = {}
        for _, value in raw_items(self.table):
            for key, record_id in orjson.loads(value):
                index.setdefault(key, record_id)  # the earliest entry holds
        self.index = index
        log.info("first holders rebuilt: %d", len(index))
