"""The disclosure audit of a mock (NDXP, VNeID): who saw which citizen's fields, when, why, under which
request. Append-only: SQLite triggers refuse UPDATE and DELETE on the table."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["AuditEntry", "AuditLog", "Connections", "Disclosure"]

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
_COLUMNS = "seq, at, agency, personal_id, fields, purpose, request_id, endpoint"


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
        conn = self.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
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
        where, params = [], []
        for column, value in (("agency", agency), ("request_id", request_id), ("personal_id", personal_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_COLUMNS} FROM audit"  # noqa: S608 - constant columns; values are bound
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        rows = self.connections.get().execute(sql, [*params, limit]).fetchall()
        return [
            AuditEntry(
                seq=r[0],
                at=datetime.fromisoformat(r[1]),
                agency=r[2],
                personal_id=r[3],
                fields=json.loads(r[4]),
                purpose=r[5],
                request_id=r[6],
                endpoint=r[7],
            )
            for r in rows
        ]

    def count(self) -> int:
        return int(self.connections.get().execute("SELECT COUNT(*) FROM audit").fetchone()[0])
