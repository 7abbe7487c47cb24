"""The disclosure audit in PostgreSQL: `PostgresAuditLog`, the `AuditStore` of a mock on `postgresql://`.

Append-only in the database itself: a statement trigger refuses every UPDATE, DELETE and TRUNCATE of the
table, whoever sends it, and PUBLIC holds no right to do them. The table's owner (the role the mock
connects as) could still drop the trigger; a deployment that must rule that out too lets the mock connect
as a role that owns nothing and holds only INSERT and SELECT on `audit` (and USAGE on its sequence).
Several replicas append to the same table: `seq` is one identity for all of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from mocks.common.audit import AuditEntry, Disclosure, DisclosureBatch, audit_entry, audit_query

if TYPE_CHECKING:
    from mocks.ndxp.postgres import PostgresPool

__all__ = ["APPEND_ONLY", "PostgresAuditLog"]

APPEND_ONLY = "the audit is append-only"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    agency text NOT NULL,       -- who: the agency (OAuth client or API key holder)
    personal_id text NOT NULL,  -- which citizen
    fields text NOT NULL,       -- which fields, a JSON array
    purpose text NOT NULL,      -- why, as the caller stated it
    request_id text NOT NULL,
    endpoint text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_agency ON audit (agency, seq);
CREATE INDEX IF NOT EXISTS audit_request_id ON audit (request_id);
CREATE INDEX IF NOT EXISTS audit_personal_id ON audit (personal_id, seq);
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
-- A statement trigger: it refuses even an UPDATE or DELETE that matches no row, and TRUNCATE.
CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM PUBLIC;
"""
_COLUMNS = "seq, at, agency, personal_id, fields, purpose, request_id, endpoint"
_INSERT = (
    "INSERT INTO audit (at, agency, personal_id, fields, purpose, request_id, endpoint) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
# A batch in one statement, as the SQLite store's: each citizen's personal_id and the index of its field
# list, the distinct field lists once; rows appended in the batch's order.
_INSERT_BATCH = (
    "INSERT INTO audit (at, agency, personal_id, fields, purpose, request_id, endpoint) "
    "SELECT %(at)s, %(agency)s, c.personal_id, (%(lists)s::text[])[c.list + 1], %(purpose)s, "
    "%(request_id)s, %(endpoint)s "
    "FROM unnest(%(ids)s::text[], %(indexes)s::int[]) WITH ORDINALITY AS c(personal_id, list, n) ORDER BY c.n"
)


class PostgresAuditLog:
    """The audit table, in the same PostgreSQL database as the mock's data."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool
        self.pool.ensure_schema(_SCHEMA)

    def record(self, disclosures: Sequence[Disclosure]) -> None:
        """Append disclosures in one transaction."""
        if disclosures:
            with self.pool.transaction() as conn, conn.cursor() as cur:
                cur.executemany(_INSERT, _rows(disclosures))

    async def arecord(self, disclosures: Sequence[Disclosure]) -> None:
        """`record` on the async pool."""
        if disclosures:
            async with self.pool.aio.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.executemany(_INSERT, _rows(disclosures))

    def record_batch(self, batch: DisclosureBatch) -> None:
        """Append one row per citizen of `batch` in one statement (the rows `record` would write)."""
        if batch.citizens:
            with self.pool.connection() as conn:
                conn.execute(_INSERT_BATCH, _batch_params(batch))

    async def arecord_batch(self, batch: DisclosureBatch) -> None:
        """`record_batch` on the async pool."""
        if batch.citizens:
            async with self.pool.aio.connection() as conn:
                await conn.execute(_INSERT_BATCH, _batch_params(batch))

    def read(
        self,
        *,
        agency: str | None = None,
        request_id: str | None = None,
        personal_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest `limit` entries matching every filter given, newest first."""
        sql, params = audit_query("%s", agency, request_id, personal_id, limit)
        with self.pool.connection() as conn:
            rows = conn.execute(sql.encode(), params).fetchall()
        return [audit_entry(r, r[1].astimezone(UTC)) for r in rows]

    def count(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM audit").fetchone()
        return int(row[0]) if row else 0


def _rows(disclosures: Sequence[Disclosure]) -> list[tuple[Any, ...]]:
    return [
        (d.at.astimezone(UTC), d.agency, d.personal_id, json.dumps(list(d.fields)), d.purpose,
         d.request_id, d.endpoint)
        for d in disclosures
    ]  # fmt: skip


def _batch_params(batch: DisclosureBatch) -> dict[str, Any]:
    """`_INSERT_BATCH`'s parameters: each distinct field list once, each citizen's index into them."""
    indexes: dict[tuple[str, ...], int] = {}
    lists: list[str] = []
    ids: list[str] = []
    positions: list[int] = []
    for personal_id, fields in batch.citizens:
        key = tuple(fields)
        index = indexes.get(key)
        if index is None:
            index = indexes[key] = len(lists)
            lists.append(json.dumps(list(key)))
        ids.append(personal_id)
        positions.append(index)
    return {
        "at": batch.at.astimezone(UTC),
        "agency": batch.agency,
        "purpose": batch.purpose,
        "request_id": batch.request_id,
        "endpoint": batch.endpoint,
        "lists": lists,
        "ids": ids,
        "indexes": positions,
    }
