"""The transactional outbox: every account change is written as an event in the same transaction as the
change itself, and stays `pending` until a connector has the broker's confirmation (`mark_sent`).

`OutboxStore` is what a connector needs; `Outbox` is the SQLite table and
`mocks.vneid.outbox_postgres.PostgresOutbox` the PostgreSQL one (`Outbox.open` picks by URL)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mocks.ndxp.postgres import is_postgres_url
from mocks.ndxp.sqlite import SqliteConnections, sqlite_path

__all__ = ["AccountEvent", "Outbox", "OutboxStore", "event_from_row"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order events happened in
    event_id TEXT NOT NULL UNIQUE,          -- consumers deduplicate on it
    account_id TEXT NOT NULL,
    personal_id TEXT NOT NULL,
    province TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,                       -- NULL for an application
    to_status TEXT NOT NULL,
    level INTEGER NOT NULL,
    at TEXT NOT NULL,                       -- UTC, ISO 8601
    sent_at TEXT                            -- NULL until the broker confirmed it
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
-- An event is a fact: never deleted, never rewritten; only its sent_at is set, once.
CREATE TRIGGER IF NOT EXISTS outbox_no_delete BEFORE DELETE ON outbox
BEGIN SELECT RAISE(ABORT, 'outbox events are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS outbox_facts_fixed BEFORE UPDATE OF
    seq, event_id, account_id, personal_id, province, action, from_status, to_status, level, at ON outbox
BEGIN SELECT RAISE(ABORT, 'outbox events are never rewritten'); END;
CREATE TRIGGER IF NOT EXISTS outbox_sent_once BEFORE UPDATE OF sent_at ON outbox
WHEN OLD.sent_at IS NOT NULL BEGIN SELECT RAISE(ABORT, 'an outbox event is marked sent once'); END;
"""
_COLUMNS = "seq, event_id, account_id, personal_id, province, action, from_status, to_status, level, at"
_INSERT = (
    "INSERT INTO outbox (event_id, account_id, personal_id, province, action, from_status, to_status, "
    "level, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MARK = "UPDATE outbox SET sent_at = ? WHERE event_id = ? AND sent_at IS NULL"


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """One account change: whose (account, citizen, province), from which status to which, level, when."""

    event_id: str
    account_id: str
    personal_id: str
    province: str
    action: str
    from_status: str | None
    to_status: str
    level: int
    at: datetime
    seq: int = 0  # 0 until stored

    def to_message(self) -> dict[str, Any]:
        """The Kafka message value (JSON-ready). Personal data is fine here: it is data, not a log."""
        return {
            "event_id": self.event_id,
            "account_id": self.account_id,
            "personal_id": self.personal_id,
            "province": self.province,
            "action": self.action,
            "from": self.from_status,
            "to": self.to_status,
            "level": self.level,
            "at": self.at.isoformat(),
        }


def event_from_row(row: tuple[Any, ...]) -> AccountEvent:
    """An event from a stored row (`seq, event_id, …, at`); `at` as ISO text (SQLite) or typed."""
    seq, event_id, account_id, personal_id, province, action, from_status, to_status, level, at = row
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return AccountEvent(
        event_id, account_id, personal_id, province, action, from_status, to_status, int(level),
        when.astimezone(UTC), seq=int(seq),
    )  # fmt: skip


class OutboxStore(Protocol):
    """What a connector needs from an outbox: the pending events in order, marking them sent."""

    def pending(self, limit: int = 500) -> list[AccountEvent]: ...
    def mark_sent(self, event_ids: list[str], at: datetime | None = None) -> int: ...
    def events(self, personal_id: str | None = None) -> list[AccountEvent]: ...
    def pending_count(self) -> int: ...
    def close(self) -> None: ...


class Outbox:
    """The outbox table, in the accounts' SQLite file (WAL: the server writes while a connector reads)."""

    def __init__(self, connections: SqliteConnections) -> None:
        self.connections = connections
        self.connections.get().executescript(_SCHEMA)

    @classmethod
    def open(cls, database_url: str) -> OutboxStore:
        """The outbox of the VNeID database a URL names (`sqlite:///PATH` or `postgresql://…`), for a
        connector process."""
        if is_postgres_url(database_url):
            from mocks.vneid.outbox_postgres import PostgresOutbox  # not at the top: it imports this module

            return PostgresOutbox.open(database_url)
        return cls(SqliteConnections(Path(sqlite_path(database_url))))

    def close(self) -> None:
        self.connections.close()

    @staticmethod
    def insert(conn: sqlite3.Connection, event: AccountEvent) -> None:
        """Append `event` on `conn` inside the caller's transaction: a change and its event commit as one."""
        conn.execute(
            _INSERT,
            (
                event.event_id, event.account_id, event.personal_id, event.province, event.action,
                event.from_status, event.to_status, event.level, event.at.astimezone(UTC).isoformat(),
            ),
        )  # fmt: skip

    def pending(self, limit: int = 500) -> list[AccountEvent]:
        """The oldest `limit` events not yet confirmed by the broker, in the order they happened."""
        sql = f"SELECT {_COLUMNS} FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?"  # noqa: S608
        return [event_from_row(tuple(r)) for r in self.connections.get().execute(sql, (limit,))]

    def mark_sent(self, event_ids: list[str], at: datetime | None = None) -> int:
        """Mark events confirmed (one transaction); returns how many were pending. Re-marking is a no-op."""
        if not event_ids:
            return 0
        stamp = (at or datetime.now(UTC)).astimezone(UTC).isoformat()
        conn = self.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            marked = sum(conn.execute(_MARK, (stamp, e)).rowcount for e in event_ids)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return marked

    def events(self, personal_id: str | None = None) -> list[AccountEvent]:
        """Every event (sent or not), oldest first; only one citizen's when `personal_id` is given."""
        sql = f"SELECT {_COLUMNS} FROM outbox"  # noqa: S608 - constant columns
        params: tuple[str, ...] = ()
        if personal_id is not None:
            sql, params = sql + " WHERE personal_id = ?", (personal_id,)
        return [
            event_from_row(tuple(r)) for r in self.connections.get().execute(sql + " ORDER BY seq", params)
        ]

    def pending_count(self) -> int:
        row = self.connections.get().execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        return int(row[0])
