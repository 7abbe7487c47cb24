"""The VNeID's transactional outbox in PostgreSQL: `PostgresOutbox`, the `OutboxStore` on `postgresql://`.

As the SQLite table: an event is a fact, never deleted (a statement trigger refuses DELETE and TRUNCATE)
and never rewritten (a row trigger refuses any change but setting `sent_at`, once). An account change
appends its event on the change's own connection, in the change's transaction (`insert`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from mocks.ndxp.postgres import PostgresPool
from mocks.vneid.outbox import AccountEvent, event_from_row

__all__ = ["SCHEMA", "PostgresOutbox"]

_FACTS = "seq, event_id, account_id, personal_id, province, action, from_status, to_status, level, at"
_NEW, _OLD = (", ".join(f"{row}.{c}" for c in _FACTS.split(", ")) for row in ("NEW", "OLD"))
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order events happened in
    event_id text NOT NULL UNIQUE,                        -- consumers deduplicate on it
    account_id text NOT NULL,
    personal_id text NOT NULL,
    province text NOT NULL,
    action text NOT NULL,
    from_status text,                                     -- NULL for an application
    to_status text NOT NULL,
    level integer NOT NULL,
    at timestamptz NOT NULL,
    sent_at timestamptz                                   -- NULL until the broker confirmed it
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE OR REPLACE FUNCTION outbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'outbox events are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF ROW({_NEW}) IS DISTINCT FROM ROW({_OLD}) THEN
        RAISE EXCEPTION 'outbox events are never rewritten' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.sent_at IS NOT NULL AND NEW.sent_at IS DISTINCT FROM OLD.sent_at THEN
        RAISE EXCEPTION 'an outbox event is marked sent once' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER outbox_never_deleted BEFORE DELETE OR TRUNCATE ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_guard();
CREATE OR REPLACE TRIGGER outbox_facts_fixed BEFORE UPDATE ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_guard();
"""
_INSERT = (
    "INSERT INTO outbox (event_id, account_id, personal_id, province, action, from_status, to_status, "
    "level, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_MARK = "UPDATE outbox SET sent_at = %s WHERE event_id = ANY(%s) AND sent_at IS NULL"


class PostgresOutbox:
    """The outbox table, in the accounts' PostgreSQL database."""

    def __init__(self, pool: PostgresPool, *, owns_pool: bool = False) -> None:
        self.pool = pool
        self._owns_pool = owns_pool
        self.pool.ensure_schema(SCHEMA)

    @classmethod
    def open(cls, database_url: str) -> PostgresOutbox:
        """The outbox of the VNeID database `database_url` names, for a connector process."""
        return cls(PostgresPool(database_url, max_size=4, name="vneid-outbox"), owns_pool=True)

    def close(self) -> None:
        if self._owns_pool:
            self.pool.close()

    @staticmethod
    def insert(conn: psycopg.Connection[Any], event: AccountEvent) -> None:
        """Append `event` on `conn` inside the caller's transaction: a change and its event commit as one."""
        conn.execute(
            _INSERT,
            (
                event.event_id, event.account_id, event.personal_id, event.province, event.action,
                event.from_status, event.to_status, event.level, event.at.astimezone(UTC),
            ),
        )  # fmt: skip

    def pending(self, limit: int = 500) -> list[AccountEvent]:
        """The oldest `limit` events not yet confirmed by the broker, in the order they happened."""
        sql = f"SELECT {_FACTS} FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT %s"  # noqa: S608
        with self.pool.connection() as conn:
            return [event_from_row(tuple(r)) for r in conn.execute(sql.encode(), (limit,))]

    def mark_sent(self, event_ids: list[str], at: datetime | None = None) -> int:
        """Mark events confirmed (one statement); returns how many were pending. Re-marking is a no-op."""
        if not event_ids:
            return 0
        stamp = (at or datetime.now(UTC)).astimezone(UTC)
        with self.pool.connection() as conn:
            return conn.execute(_MARK, (stamp, list(event_ids))).rowcount

    def events(self, personal_id: str | None = None) -> list[AccountEvent]:
        """Every event (sent or not), oldest first; only one citizen's when `personal_id` is given."""
        sql = f"SELECT {_FACTS} FROM outbox"  # noqa: S608 - constant columns
        params: tuple[str, ...] = ()
        if personal_id is not None:
            sql, params = sql + " WHERE personal_id = %s", (personal_id,)
        with self.pool.connection() as conn:
            return [event_from_row(tuple(r)) for r in conn.execute((sql + " ORDER BY seq").encode(), params)]

    def pending_count(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        return int(row[0]) if row else 0
