"""The mock NPD's population store: citizens in SQLite, bulk loading and batched look-ups.

`PopulationStore` is the interface the API needs; `PopulationDB` is its SQLite implementation and
`mocks.ndxp.db_postgres.PostgresPopulation` its PostgreSQL one (`open_population` picks by URL scheme).
Both pass the same contract tests (tests/integration/test_store_contract.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import orjson
from anyio import to_thread
from pydantic_core import to_json

from mocks.common.audit import AuditLog, AuditStore
from mocks.ndxp.exceptions import DuplicateCitizenError
from mocks.ndxp.population_file import numbered_citizens, read_population_file
from mocks.ndxp.postgres import is_postgres_url
from mocks.ndxp.sqlite import CACHE_KIB, SqliteConnections, sqlite_path
from schemas.citizen import Citizen, mask_id

__all__ = [
    "COLUMNS",
    "CitizenJson",
    "NpdTransaction",
    "PopulationDB",
    "PopulationStore",
    "chunks",
    "citizen_row",
    "collect_rows",
    "open_population",
    "read_population_file",
    "row_citizen",
    "split_ids",
]

# The basic fields, in `Citizen`'s field order (a full disclosure's JSON keeps it), then `extra`.
COLUMNS = (
    "personal_id", "legacy_id", "full_name", "date_of_birth", "gender",
    "birth_province", "permanent_province", "status", "date_of_death",
)  # fmt: skip
_INSERT = (
    f"INSERT INTO citizens ({', '.join(COLUMNS)}, extra) "  # noqa: S608 - constant column names
    f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
)
# Civil-status registrations change a citizen in place: the whole row is written again.
_UPSERT = _INSERT.replace("INSERT INTO", "INSERT OR REPLACE INTO", 1)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS citizens (
    personal_id TEXT PRIMARY KEY,
    legacy_id TEXT,
    full_name TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    gender TEXT NOT NULL,
    birth_province TEXT NOT NULL,
    permanent_province TEXT NOT NULL,
    status TEXT NOT NULL,
    date_of_death TEXT,
    extra TEXT  -- the other basic fields (ethnicity, father_id …) as a JSON object, or NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS citizens_legacy_id ON citizens (legacy_id) WHERE legacy_id IS NOT NULL;
"""


def _lookup_sql(columns: str) -> str:
    """One statement for a whole batch: each ID kind arrives as one JSON array parameter (no bound-variable
    limit, no chunking), and each row is led by the ID it answers. The planner searches the primary key
    and the legacy index once per listed ID (`SEARCH citizens USING PRIMARY KEY`)."""
    return (
        f"SELECT personal_id, {columns} FROM citizens "  # noqa: S608 - constant column names
        "WHERE personal_id IN (SELECT value FROM json_each(?1)) "
        f"UNION ALL SELECT legacy_id, {columns} FROM citizens "
        "WHERE legacy_id IN (SELECT value FROM json_each(?2))"
    )


_LOOKUP = _lookup_sql(f"{', '.join(COLUMNS)}, extra")
# A citizen's JSON object as `Citizen.model_dump_json` writes it, written by SQLite: the basic fields in
# the model's order (SQLite quotes strings as pydantic does; the unit tests compare the two), then the
# stored extras' members, spliced in as they were written. The basic object ends `…"date_of_death":null}`
# or `…"date_of_death":"2020-01-01"}`: rtrim takes its one closing brace.
_BASIC_JSON = "json_object(" + ", ".join(f"'{c}', {c}" for c in COLUMNS) + ")"
_LOOKUP_JSON = _lookup_sql(
    "personal_id, extra, CAST(CASE WHEN extra IS NULL OR extra = '{}' "
    f"THEN {_BASIC_JSON} ELSE rtrim({_BASIC_JSON}, '}}') || ',' || substr(extra, 2) END AS BLOB)"
)

# A citizen as the batch endpoint reads it: (personal_id, the stored `extra` JSON text or None, the
# citizen's JSON object as `Citizen.model_dump_json` writes it).
CitizenJson = tuple[str, str | None, bytes]


class Rows(Protocol):
    """A statement's result: sqlite3's and psycopg's cursors both are."""

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class NpdTransaction(Protocol):
    """One write transaction on the NPD (`PopulationStore.transaction()`): statements in SQLite's dialect
    (`?` parameters; the PostgreSQL store translates the few constructs the NPD's writers use), and
    look-ups and saves that see the transaction's own writes."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...
    def lookup_many(self, ids: list[str]) -> dict[str, Citizen]: ...
    def save(self, citizens: Iterable[Citizen]) -> None: ...


class PopulationStore(Protocol):
    """What the NDXP API needs from the NPD's storage."""

    @property
    def location(self) -> str:
        """Where the citizens are, without credentials (for logs)."""
        ...

    def load(self, citizens: Iterable[Citizen], batch: int = 10_000) -> int: ...
    def load_file(self, path: Path | str) -> int: ...
    def lookup_many(self, ids: list[str]) -> dict[str, Citizen]: ...
    def lookup_json(self, ids: Sequence[str]) -> dict[str, CitizenJson]: ...
    async def alookup_many(self, ids: list[str]) -> dict[str, Citizen]:
        """`lookup_many` for async handlers: the event loop is never blocked."""
        ...

    async def alookup_json(self, ids: Sequence[str]) -> dict[str, CitizenJson]:
        """`lookup_json` for async handlers: the event loop is never blocked."""
        ...

    def count(self) -> int: ...
    def audit_log(self) -> AuditStore:
        """The disclosure audit kept in the same database."""
        ...

    def ensure_schema(self, ddl: str) -> None:
        """Create the tables `ddl` describes (SQLite's dialect, idempotent statements) in this database."""
        ...

    def transaction(self) -> AbstractContextManager[NpdTransaction]:
        """A write transaction that holds the NPD's write lock from its start (writers take turns, across
        replicas too): committed when the block ends, rolled back when it raises."""
        ...

    async def aclose(self) -> None:
        """Release what the async methods hold (in the loop that used them); `close()` does the rest."""
        ...

    def close(self) -> None: ...


def citizen_row(c: Citizen) -> tuple[Any, ...]:
    extra = c.model_extra
    return (
        c.personal_id, c.legacy_id, c.full_name, c.date_of_birth.isoformat(), c.gender,
        c.birth_province, c.permanent_province, c.status,
        c.date_of_death.isoformat() if c.date_of_death else None,
        to_json(extra).decode() if extra else None,
    )  # fmt: skip


def row_citizen(row: tuple[Any, ...]) -> Citizen:
    fields: dict[str, Any] = json.loads(row[9]) if row[9] else {}
    fields.update(zip(COLUMNS, row, strict=False))
    # Validating the plain row is cheaper than model_construct (pydantic-core parses the ISO dates).
    return Citizen.model_validate(fields)


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


class PopulationDB:
    """Citizens in a SQLite file (WAL): bulk `load`, `load_file`, batched `lookup_many`, `count`."""

    def __init__(self, connections: SqliteConnections) -> None:
        self.connections = connections
        self.connections.get().executescript(_SCHEMA)

    @classmethod
    def create(cls, path: Path | str, *, checkpoint_every_s: float | None = None) -> PopulationDB:
        """Open the database file at `path`, creating it (and its tables) when absent."""
        return cls(SqliteConnections(Path(path), checkpoint_every_s=checkpoint_every_s))

    @property
    def path(self) -> Path:
        return self.connections.path

    @property
    def location(self) -> str:
        return str(self.connections.path)

    def audit_log(self) -> AuditLog:
        """The disclosure audit in the same file."""
        return AuditLog(self.connections)

    def close(self) -> None:
        self.connections.close()

    async def aclose(self) -> None:
        return None  # SQLite's async methods use the thread pool's connections: `close()` closes them

    def count(self) -> int:
        row = self.connections.get().execute("SELECT COUNT(*) FROM citizens").fetchone()
        return int(row[0])

    def load(self, citizens: Iterable[Citizen], batch: int = 10_000) -> int:
        """Insert citizens in one transaction (all or nothing); returns how many were inserted."""
        return self._load(enumerate(citizens, 1), batch, lambda n: f"citizen #{n}")

    def load_file(self, path: Path | str) -> int:
        """Load a JSON-lines population file (CONTRACT.md's Citizen); a bad line loads nothing."""
        path = Path(path)
        return self._load(numbered_citizens(path), 10_000, lambda n: f"{path}:{n}")

    def _load(self, items: Iterable[tuple[int, Citizen]], batch: int, where: Callable[[int], str]) -> int:
        conn = self.connections.get()
        # A bulk load trades durability for speed: a crash mid-load loses only this load.
        conn.execute("PRAGMA synchronous=OFF")
        # Up to 1 GiB of page cache (allocated only as used): random personal IDs land all over the
        # primary-key tree, and a tree that outgrows the cache makes the load several times slower.
        conn.execute("PRAGMA cache_size=-1048576")
        loaded = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks(items, batch):
                conn.execute("SAVEPOINT chunk")
                try:
                    # Sorted by personal_id, a chunk's inserts walk the tree in order.
                    conn.executemany(_INSERT, sorted(citizen_row(c) for _, c in chunk))
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK TO chunk")
                    raise self._duplicate(conn, chunk, where) from None
                conn.execute("RELEASE chunk")
                loaded += len(chunk)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return loaded

    @staticmethod
    def _duplicate(
        conn: sqlite3.Connection, chunk: list[tuple[int, Citizen]], where: Callable[[int], str]
    ) -> DuplicateCitizenError:
        """Find which citizen of a failed chunk repeats a personal_id (error path only)."""
        seen: set[str] = set()
        for n, c in chunk:
            known = conn.execute("SELECT 1 FROM citizens WHERE personal_id = ?", (c.personal_id,)).fetchone()
            if known or c.personal_id in seen:
                return DuplicateCitizenError(
                    f"{where(n)}: personal_id {mask_id(c.personal_id)} is already loaded "
                    "(an earlier citizen or an earlier load has it); nothing of this load was kept"
                )
            seen.add(c.personal_id)
        return DuplicateCitizenError(f"{where(chunk[0][0])}…: a constraint failed; nothing was kept")

    def ensure_schema(self, ddl: str) -> None:
        self.connections.get().executescript(ddl)

    @contextmanager
    def transaction(self) -> Iterator[NpdTransaction]:
        conn = self.connections.get()
        conn.execute("BEGIN IMMEDIATE")  # the write lock now: decisions read what they then change
        try:
            yield _SqliteTransaction(conn, self)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def save(self, citizens: Iterable[Citizen]) -> None:
        """Insert citizens, or replace those the NPD holds, inside the caller's transaction on this
        thread's connection (no BEGIN of its own: the civil-status registrations commit all or nothing)."""
        self.connections.get().executemany(_UPSERT, [citizen_row(c) for c in citizens])

    def lookup_many(self, ids: list[str]) -> dict[str, Citizen]:
        """Map each queried ID (12-digit personal or 9-digit legacy) to its citizen; absent IDs are left out.

        IDs of any other shape are ignored. Should two citizens share a legacy ID, the one with the
        smaller personal_id answers (deterministic; the data is at fault). One statement for all the IDs.
        """
        return {key: row_citizen(row) for key, row in self._lookup(_LOOKUP, ids).items()}

    def lookup_json(self, ids: Sequence[str]) -> dict[str, CitizenJson]:
        """`lookup_many` with each citizen as JSON (`CitizenJson`), not validated again: the rows were
        validated as citizens when they were loaded or saved, and the batch endpoint answers with this
        JSON without a model per citizen. One statement for all the IDs."""
        return self._lookup(_LOOKUP_JSON, ids)

    async def alookup_many(self, ids: list[str]) -> dict[str, Citizen]:
        # SQLite's calls block: a worker thread makes them (with its own connection).
        return await to_thread.run_sync(self.lookup_many, ids)

    async def alookup_json(self, ids: Sequence[str]) -> dict[str, CitizenJson]:
        return await to_thread.run_sync(self.lookup_json, ids)

    def _lookup(self, sql: str, ids: Sequence[str]) -> dict[str, Any]:
        personal, legacy = split_ids(ids)
        if not personal and not legacy:
            return {}
        params = (orjson.dumps(personal).decode(), orjson.dumps(legacy).decode())
        return collect_rows(self.connections.get().execute(sql, params))


class _SqliteTransaction:
    """A write transaction on this thread's connection: the store's look-ups and saves use the same one."""

    def __init__(self, conn: sqlite3.Connection, db: PopulationDB) -> None:
        self._conn = conn
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def lookup_many(self, ids: list[str]) -> dict[str, Citizen]:
        return self._db.lookup_many(ids)

    def save(self, citizens: Iterable[Citizen]) -> None:
        self._db.save(citizens)


def split_ids(ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The personal (12 ASCII digits) and the legacy (9) IDs of a batch; anything else is left out."""
    # `str.isdigit` alone would take other scripts' digits; written out, not a function per ID: this runs
    # for every ID of every batch.
    personal = [i for i in ids if len(i) == 12 and i.isdigit() and i.isascii()]
    legacy = [i for i in ids if len(i) == 9 and i.isdigit() and i.isascii()]
    return personal, legacy


def collect_rows(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Look-up rows (the ID each answers, personal_id, …) by queried ID, the ID itself dropped. A legacy
    ID two citizens share is answered by the smaller personal_id (deterministic; the data is at fault)."""
    found: dict[str, Any] = {}
    for row in rows:
        key = row[0]
        if len(key) == 9 and key in found and found[key][0] < row[1]:
            continue
        found[key] = tuple(row[1:])
    return found


def open_population(url: str, *, checkpoint_every_s: float | None = None) -> PopulationStore:
    """Open the population store a database URL names: `sqlite:///PATH` or `postgresql://…` (other schemes
    fail clearly). `checkpoint_every_s` is SQLite's (see `SqliteConnections`)."""
    if is_postgres_url(url):
        from mocks.ndxp.db_postgres import PostgresPopulation  # not at the top: it imports this module

        return PostgresPopulation.create(url)
    return PopulationDB.create(sqlite_path(url), checkpoint_every_s=checkpoint_every_s)
