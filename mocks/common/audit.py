"""The disclosure audit of a mock (NDXP, VNeID): who saw which citizen's fields, when, why, under which
request. Append-only: SQLite triggers refuse UPDATE and DELETE on the table.

`AuditStore` is the interface; `AuditLog` is its SQLite implementation and
`mocks.common.audit_postgres.PostgresAuditLog` its PostgreSQL one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from anyio import to_thread

__all__ = ["AuditEntry", "AuditLog", "AuditStore", "Connections", "Disclosure", "DisclosureBatch"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,           -- UTC, ISO 8601
    agency TEXT NOT NULL,       -- who: the agency (OAuth client or API key holder)
    personal_id TEXT NOT NULL,  -- which citizen
    fields TEXT NOT NULL,       -- which fields, a JSON array
    purpose TEXT NOT NULL,      -- why, as the caller stated it
    request_id TEXT NOT NULL,
    endpoint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_agency ON audit (agency, seq);
CREATE INDEX IF NOT EXISTS audit_request_id ON audit (request_id);
-- Append-only in the database itself, not only for lack of an API: an update or delete aborts.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
"""
_INSERT = (
    "INSERT INTO audit (at, agency, personal_id, fields, purpose, request_id, endpoint) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# A batch's rows in one statement: ?7 lists [personal_id, index into ?6] per citizen, in order, and ?6 the
# distinct field lists (each as its JSON text). SQLite inserts the lot in one step without coming back to
# Python between rows, so the GIL is free for the whole insert and the statement's set-up is paid once.
_INSERT_BATCH = (
    "INSERT INTO audit (at, agency, personal_id, fields, purpose, request_id, endpoint) "
    "SELECT ?1, ?2, json_extract(c.value, '$[0]'), "
    "json_extract(?6, '$[' || json_extract(c.value, '$[1]') || ']'), ?3, ?4, ?5 "
    "FROM json_each(?7) AS c ORDER BY c.key"
)
_COLUMNS = "seq, at, agency, personal_id, fields, purpose, request_id, endpoint"


def audit_query(
    placeholder: str, agency: str | None, request_id: str | None, personal_id: str | None, limit: int
) -> tuple[str, list[object]]:
    """The newest-first SELECT of `AuditStore.read` and its parameters, in the driver's `placeholder`."""
    where, params = [], []
    for column, value in (("agency", agency), ("request_id", request_id), ("personal_id", personal_id)):
        if value is not None:
            where.append(f"{column} = {placeholder}")
            params.append(value)
    sql = f"SELECT {_COLUMNS} FROM audit"  # noqa: S608 - constant columns; values are bound
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY seq DESC LIMIT {placeholder}", [*params, limit]


def audit_entry(row: Sequence[Any], at: datetime) -> AuditEntry:
    """An entry from a row of `_COLUMNS` (`at` as the driver's value, read by the caller)."""
    return AuditEntry(
        seq=row[0],
        at=at,
        agency=row[2],
        personal_id=row[3],
        fields=json.loads(row[4]),
        purpose=row[5],
        request_id=row[6],
        endpoint=row[7],
    )


class Connections(Protocol):
    """Per-thread connections to the mock's SQLite file (`mocks.ndxp.sqlite.SqliteConnections`)."""

    def get(self) -> sqlite3.Connection: ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One citizen's fields shown to one agency."""

    agency: str
    personal_id: str
    fields: Sequence[str]
    purpose: str
    request_id: str
    endpoint: str
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class DisclosureBatch:
    """Citizens shown to one agency in one request (a batch look-up): one audit row per citizen, as
    many `Disclosure`s would be, without an object per citizen. `citizens` holds (personal_id, fields)
    in the order the rows are appended."""

    agency: str
    purpose: str
    request_id: str
    endpoint: str
    citizens: Sequence[tuple[str, Sequence[str]]]
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A stored disclosure with its sequence number."""

    seq: int
    at: datetime
    agency: str
    personal_id: str
    fields: list[str]
    purpose: str
    request_id: str
    endpoint: str


class AuditStore(Protocol):
    """What the mocks need from an audit: append disclosures, read them back, count them. Nothing updates
    or deletes an entry, and the database refuses to."""

    def record(self, disclosures: Sequence[Disclosure]) -> None: ...
    def record_batch(self, batch: DisclosureBatch) -> None: ...
    async def arecord(self, disclosures: Sequence[Disclosure]) -> None:
        """`record` for async handlers: the event loop is never blocked."""
        ...

    async def arecord_batch(self, batch: DisclosureBatch) -> None:
        """`record_batch` for async handlers: the event loop is never blocked."""
        ...

    def read(
        self,
        *,
        agency: str | None = None,
        request_id: str | None = None,
        personal_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]: ...
    def count(self) -> int: ...


class AuditLog:
    """The audit table, in the same SQLite file as the mock's data (its own table, its own triggers)."""

    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self.connections.get().executescript(_SCHEMA)

    def record(self, disclosures: Sequence[Disclosure]) -> None:
        """Append disclosures in one transaction (one executemany)."""
        if not disclosures:
            return
        # A batch's disclosures share their time and field list: encode each distinct value once.
        times: dict[datetime, str] = {}
        field_lists: dict[tuple[str, ...], str] = {}
        rows = []
        for d in disclosures:
            at = times.get(d.at) or times.setdefault(d.at, d.at.astimezone(UTC).isoformat())
            key = tuple(d.fields)
            fields = field_lists.get(key) or field_lists.setdefault(key, json.dumps(list(key)))
            rows.append((at, d.agency, d.personal_id, fields, d.purpose, d.request_id, d.endpoint))
        self._commit(lambda conn: conn.executemany(_INSERT, rows))

    def record_batch(self, batch: DisclosureBatch) -> None:
        """Append one row per citizen of `batch` in one transaction: the rows `record` would write for
        the same disclosures, in one statement (SQLite's JSON functions, built in since 3.38)."""
        if not batch.citizens:
            return
        # The citizens of a batch share a handful of field lists: encode each once, refer to it by index.
        indexes: dict[tuple[str, ...], int] = {}
        field_lists: list[str] = []
        citizens = []
        for personal_id, fields in batch.citizens:
            key = tuple(fields)
            index = indexes.get(key)
            if index is None:
                index = indexes[key] = len(field_lists)
                field_lists.append(json.dumps(list(key)))
            citizens.append((personal_id, index))
        at = batch.at.astimezone(UTC).isoformat()
        shared = (at, batch.agency, batch.purpose, batch.request_id, batch.endpoint)
        # orjson for the two arrays SQLite reads (a fifth of the time of json.dumps for 1000 pairs); the
        # stored field lists stay json.dumps's text, as `record` writes them.
        params = (*shared, orjson.dumps(field_lists).decode(), orjson.dumps(citizens).decode())
        self._commit(lambda conn: conn.execute(_INSERT_BATCH, params))

    async def arecord(self, disclosures: Sequence[Disclosure]) -> None:
        # SQLite's calls block: a worker thread makes them (with its own connection).
        await to_thread.run_sync(self.record, disclosures)

    async def arecord_batch(self, batch: DisclosureBatch) -> None:
        await to_thread.run_sync(self.record_batch, batch)

    def _commit(self, write: Callable[[sqlite3.Connection], object]) -> None:
        """`write` on this thread's connection, in a transaction of its own."""
        conn = self.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            write(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(
        self,
        *,
        agency: str | None = None,
        request_id: str | None = None,
        personal_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest `limit` entries matching every filter given, newest first."""
        sql, params = audit_query("?", agency, request_id, personal_id, limit)
        rows = self.connections.get().execute(sql, params).fetchall()
        return [audit_entry(r, datetime.fromisoformat(r[1])) for r in rows]

    def count(self) -> int:
        return int(self.connections.get().execute("SELECT COUNT(*) FROM audit").fetchone()[0])
