"""The NPD's citizens in PostgreSQL: `PostgresPopulation`, the `PopulationStore` over `postgresql://` URLs.

Same table as the SQLite store (the basic fields as columns, the other fields as the JSON text `extra`),
dates typed. Loads stream in with `COPY` (one transaction: a bad line or a repeated personal ID keeps
nothing); look-ups are one statement per batch (`= ANY(array)` on the primary key and the legacy index),
and the batch endpoint's JSON is written by the server, byte for byte `Citizen.model_dump_json`.
Several NDXP replicas may serve the same database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from mocks.common.audit_postgres import PostgresAuditLog
from mocks.ndxp.db import (
    COLUMNS,
    CitizenJson,
    NpdTransaction,
    chunks,
    citizen_row,
    collect_rows,
    row_citizen,
    split_ids,
)
from mocks.ndxp.exceptions import DuplicateCitizenError
from mocks.ndxp.population_file import numbered_citizens
from mocks.ndxp.postgres import PostgresPool
from schemas.citizen import Citizen, mask_id

__all__ = ["PostgresPopulation"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS citizens (
    personal_id text PRIMARY KEY,
    legacy_id text,
    full_name text NOT NULL,
    date_of_birth date NOT NULL,
    gender text NOT NULL,
    birth_province text NOT NULL,
    permanent_province text NOT NULL,
    status text NOT NULL,
    date_of_death date,
    extra text  -- the other basic fields (ethnicity, father_id ...) as a JSON object, or NULL
);
CREATE INDEX IF NOT EXISTS citizens_legacy_id ON citizens (legacy_id) WHERE legacy_id IS NOT NULL;
"""
_ALL = f"{', '.join(COLUMNS)}, extra"
_COPY = f"COPY citizens ({_ALL}) FROM STDIN"
_UPSERT = (
    f"INSERT INTO citizens ({_ALL}) VALUES ({', '.join(['%s'] * (len(COLUMNS) + 1))}) "  # noqa: S608
    "ON CONFLICT (personal_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*COLUMNS[1:], "extra"))
)


def _lookup_sql(columns: str) -> str:
    """One statement per batch, each row led by the ID it answers (as the SQLite store's)."""
    return (
        f"SELECT personal_id, {columns} FROM citizens WHERE personal_id = ANY(%(personal)s) "  # noqa: S608
        f"UNION ALL SELECT legacy_id, {columns} FROM citizens WHERE legacy_id = ANY(%(legacy)s)"
    )


_LOOKUP = _lookup_sql(_ALL)
# The citizen's JSON as `Citizen.model_dump_json` writes it: keys in the model's order, compact, strings
# escaped by to_json (the same escapes as pydantic's: the contract tests compare them), dates ISO, then the
# stored extras' members spliced in.
_BASIC = "'{' || " + " || ',' || ".join(
    f"'\"{c}\":' || coalesce(to_json({c})::text, 'null')" for c in COLUMNS
)
_LOOKUP_JSON = _lookup_sql(
    "personal_id, extra, convert_to(CASE WHEN extra IS NULL OR extra = '{}' "
    f"THEN {_BASIC} || '}}' ELSE {_BASIC} || ',' || substr(extra, 2) END, 'UTF8')"
)


# pg_advisory_xact_lock's key of the NPD's writers (civil status, residence): one at a time, as SQLite's
# BEGIN IMMEDIATE makes them, across every replica ("npd-w" in ASCII).
_WRITE_LOCK = 0x6E70642D77
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO (.*)$", re.DOTALL | re.IGNORECASE)


def postgres_dialect(sql: str) -> str:
    """SQLite's SQL as the NPD's writers write it, for PostgreSQL: `?` parameters become `%s`, `INSERT OR
    IGNORE` becomes `INSERT … ON CONFLICT DO NOTHING`, `WITHOUT ROWID` goes. Only these constructs are
    translated (the writers use no other SQLite-only one, and no `?` in a literal); the contract tests run
    the writers on both stores."""
    sql = sql.replace("WITHOUT ROWID", "").replace("%", "%%").replace("?", "%s")
    ignore = _INSERT_OR_IGNORE.match(sql)
    if ignore:
        sql = f"INSERT INTO {ignore.group(1).rstrip().rstrip(';')} ON CONFLICT DO NOTHING"
    return sql


class _PostgresTransaction:
    """A write transaction on one pooled connection; the store's look-ups and saves run on it."""

    def __init__(self, conn: psycopg.Connection[Any], store: PostgresPopulation) -> None:
        self._conn = conn
        self._store = store

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(postgres_dialect(sql).encode(), params)

    def lookup_many(self, ids: list[str]) -> dict[str, Citizen]:
        return self._store.lookup_many(ids, self._conn)

    def save(self, citizens: Iterable[Citizen]) -> None:
        self._store.save(citizens, self._conn)


class PostgresPopulation:
    """Citizens in a PostgreSQL database: bulk `load` (COPY), `load_file`, batched look-ups, `save`."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool
        self.pool.ensure_schema(_SCHEMA)

    @classmethod
    def create(cls, url: str, *, max_size: int = 16) -> PostgresPopulation:
        """Connect to the database `url` names and create the tables when absent."""
        return cls(PostgresPool(url, max_size=max_size, name="ndxp-npd"))

    @property
    def location(self) -> str:
        """Where the citizens are, without credentials (for logs)."""
        return self.pool.location

    def close(self) -> None:
        self.pool.close()

    async def aclose(self) -> None:
        await self.pool.aio.aclose()

    def audit_log(self) -> PostgresAuditLog:
        """The disclosure audit in the same database."""
        return PostgresAuditLog(self.pool)

    def ensure_schema(self, ddl: str) -> None:
        """Create the tables `ddl` describes (SQLite's dialect: see `postgres_dialect`)."""
        self.pool.ensure_schema(ddl.replace("WITHOUT ROWID", ""))

    @contextmanager
    def transaction(self) -> Iterator[NpdTransaction]:
        """A write transaction holding the NPD's write lock (an advisory lock: replicas take turns too)."""
        with self.pool.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            yield _PostgresTransaction(conn, self)

    def count(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM citizens").fetchone()
        return int(row[0]) if row else 0

    def load(self, citizens: Iterable[Citizen], batch: int = 10_000) -> int:
        """COPY citizens in one transaction (all or nothing); returns how many were loaded."""
        return self._load(enumerate(citizens, 1), batch, lambda n: f"citizen #{n}")

    def load_file(self, path: Path | str) -> int:
        """Load a JSON-lines population file (CONTRACT.md's Citizen); a bad line loads nothing."""
        path = Path(path)
        return self._load(numbered_citizens(path), 50_000, lambda n: f"{path}:{n}")

    def _load(self, items: Iterable[tuple[int, Citizen]], batch: int, where: Callable[[int], str]) -> int:
        loaded = 0
        with self.pool.transaction() as conn:
            # A bulk load trades durability for speed: a crash mid-load loses only this load.
            conn.execute("SET LOCAL synchronous_commit = off")
            for chunk in chunks(items, batch):
                try:
                    # A savepoint per chunk: a repeated personal ID is found in its chunk, on the error path.
                    with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY) as copy:
                        for _, c in chunk:
                            copy.write_row(citizen_row(c))
                except psycopg.errors.UniqueViolation:
                    raise self._duplicate(conn, chunk, where) from None
                loaded += len(chunk)
        with self.pool.connection() as conn:
            # COPY leaves the planner's statistics as they were: on a table just filled from empty it would
            # scan the whole table for a batch's IDs instead of probing the primary key (15 ms → 2 ms per
            # 1000 IDs of 20,000 citizens).
            conn.execute("ANALYZE citizens")
        return loaded

    @staticmethod
    def _duplicate(
        conn: psycopg.Connection[Any], chunk: list[tuple[int, Citizen]], where: Callable[[int], str]
    ) -> DuplicateCitizenError:
        """Which citizen of a failed chunk repeats a personal_id (error path only; the load rolls back)."""
        seen: set[str] = set()
        known = {
            r[0]
            for r in conn.execute(
                "SELECT personal_id FROM citizens WHERE personal_id = ANY(%s)",
                ([c.personal_id for _, c in chunk],),
            )
        }
        for n, c in chunk:
            if c.personal_id in known or c.personal_id in seen:
                return DuplicateCitizenError(
                    f"{where(n)}: personal_id {mask_id(c.personal_id)} is already loaded "
                    "(an earlier citizen or an earlier load has it); nothing of this load was kept"
                )
            seen.add(c.personal_id)
        return DuplicateCitizenError(f"{where(chunk[0][0])}…: a constraint failed; nothing was kept")

    def save(self, citizens: Iterable[Citizen], conn: psycopg.Connection[Any] | None = None) -> None:
        """Insert citizens, or replace those the NPD holds: inside the caller's transaction when `conn` is
        given (civil-status registrations commit all or nothing), else in a transaction of its own."""
        rows = [citizen_row(c) for c in citizens]
        if conn is not None:
            with conn.cursor() as cur:
                cur.executemany(_UPSERT, rows)
            return
        with self.pool.transaction() as own, own.cursor() as cur:
            cur.executemany(_UPSERT, rows)

    def lookup_many(self, ids: list[str], conn: psycopg.Connection[Any] | None = None) -> dict[str, Citizen]:
        """Map each queried ID (12-digit personal or 9-digit legacy) to its citizen; absent IDs are left out
        (as `PopulationDB.lookup_many`: other shapes ignored, a shared legacy ID answered by the smaller
        personal_id)."""
        return {key: row_citizen(row) for key, row in self._lookup(_LOOKUP, ids, conn).items()}

    def lookup_json(self, ids: Sequence[str]) -> dict[str, CitizenJson]:
        """`lookup_many` with each citizen as JSON (`CitizenJson`), written by the server."""
        return self._lookup(_LOOKUP_JSON, ids, None)

    async def alookup_many(self, ids: list[str]) -> dict[str, Citizen]:
        """`lookup_many` on the async pool."""
        return {key: row_citizen(row) for key, row in (await self._alookup(_LOOKUP, ids)).items()}

    async def alookup_json(self, ids: Sequence[str]) -> dict[str, CitizenJson]:
        """`lookup_json` on the async pool."""
        return await self._alookup(_LOOKUP_JSON, ids)

    async def _alookup(self, sql: str, ids: Sequence[str]) -> dict[str, Any]:
        personal, legacy = split_ids(ids)
        if not personal and not legacy:
            return {}
        async with self.pool.aio.connection() as conn:
            cursor = await conn.execute(sql, {"personal": personal, "legacy": legacy})
            return collect_rows(await cursor.fetchall())

    def _lookup(self, sql: str, ids: Sequence[str], conn: psycopg.Connection[Any] | None) -> dict[str, Any]:
        personal, legacy = split_ids(ids)
        if not personal and not legacy:
            return {}
        params = {"personal": personal, "legacy": legacy}
        if conn is not None:
            return collect_rows(conn.execute(sql, params))
        with self.pool.connection() as own:
            return collect_rows(own.execute(sql, params))
