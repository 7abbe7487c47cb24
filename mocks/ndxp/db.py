"""The mock NPD's population store: citizens in SQLite, bulk loading and batched look-ups.

`PopulationStore` is the interface the API needs; `PopulationDB` is its SQLite implementation.
A PostgreSQL implementation can sit behind the same interface (`open_population` picks by URL scheme).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from pydantic_core import to_json

from mocks.ndxp.exceptions import DuplicateCitizenError
from mocks.ndxp.population_file import numbered_citizens, read_population_file
from mocks.ndxp.sqlite import SqliteConnections, sqlite_path
from schemas.citizen import Citizen, mask_id

__all__ = ["PopulationDB", "PopulationStore", "open_population", "read_population_file"]

_COLUMNS = (
    "personal_id", "legacy_id", "full_name", "date_of_birth", "gender",
    "birth_province", "permanent_province", "status", "date_of_death",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS)}, extra FROM citizens"  # noqa: S608 - constant column names
_INSERT = (
    f"INSERT INTO citizens ({', '.join(_COLUMNS)}, extra) "  # noqa: S608 - constant column names
    f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})"
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
_PERSONAL = re.compile(r"[0-9]{12}")  # ASCII digits only: `\d` would take other scripts' digits
_LEGACY = re.compile(r"[0-9]{9}")
_CHUNK = 900  # bound variables per look-up query, under SQLite's historical limit of 999


class PopulationStore(Protocol):
    """What the NDXP API needs from the NPD's storage."""

    def load(self, citizens: Iterable[Citizen], batch: int = 10_000) -> int: ...
    def load_file(self, path: Path | str) -> int: ...
    def lookup_many(self, ids: list[str]) -> dict[str, Citizen]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


def _row(c: Citizen) -> tuple[Any, ...]:
    extra = c.model_extra
    return (
        c.personal_id, c.legacy_id, c.full_name, c.date_of_birth.isoformat(), c.gender,
        c.birth_province, c.permanent_province, c.status,
        c.date_of_death.isoformat() if c.date_of_death else None,
        to_json(extra).decode() if extra else None,
    )  # fmt: skip


def _citizen(row: tuple[Any, ...]) -> Citizen:
    fields: dict[str, Any] = json.loads(row[9]) if row[9] else {}
    fields.update(zip(_COLUMNS, row, strict=False))
    # Validating the plain row is cheaper than model_construct (pydantic-core parses the ISO dates).
    return Citizen.model_validate(fields)


def _in_query(kind: str, column: str, n: int) -> str:
    """Rows whose `column` is one of n placeholders, led by a literal saying which ID kind they answer."""
    marks = ",".join("?" * n)
    return f"SELECT '{kind}', * FROM ({_SELECT} WHERE {column} IN ({marks}))"  # noqa: S608 - no user text


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


class PopulationDB:
    """Citizens in a SQLite file (WAL): bulk `load`, `load_file`, batched `lookup_many`, `count`."""

    def __init__(self, connections: SqliteConnections) -> None:
        self.connections = connections
        self.connections.get().executescript(_SCHEMA)

    @classmethod
    def create(cls, path: Path | str) -> PopulationDB:
        """Open the database file at `path`, creating it (and its tables) when absent."""
        return cls(SqliteConnections(Path(path)))

    @property
    def path(self) -> Path:
        return self.connections.path

    def close(self) -> None:
        self.connections.close()

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
            for chunk in _chunks(items, batch):
                conn.execute("SAVEPOINT chunk")
                try:
                    # Sorted by personal_id, a chunk's inserts walk the tree in order.
                    conn.executemany(_INSERT, sorted(_row(c) for _, c in chunk))
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
            conn.execute("PRAGMA cache_size=-2000")
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

    def save(self, citizens: Iterable[Citizen]) -> None:
        """Insert citizens, or replace those the NPD holds, inside the caller's transaction on this
        thread's connection (no BEGIN of its own: the civil-status registrations commit all or nothing)."""
        self.connections.get().executemany(_UPSERT, [_row(c) for c in citizens])

    def lookup_many(self, ids: list[str]) -> dict[str, Citizen]:
        """Map each queried ID (12-digit personal or 9-digit legacy) to its citizen; absent IDs are left out.

        IDs of any other shape are ignored. One query per chunk of 900 IDs. Should two citizens share a
        legacy ID, the one with the smaller personal_id answers (deterministic; the data is at fault).
        """
        personal = sorted({i for i in ids if _PERSONAL.fullmatch(i)})
        legacy = sorted({i for i in ids if _LEGACY.fullmatch(i)})
        conn = self.connections.get()
        found: dict[str, Citizen] = {}
        for chunk in _chunks([*(("p", i) for i in personal), *(("l", i) for i in legacy)], _CHUNK):
            parts, params = [], []
            for kind, column in (("p", "personal_id"), ("l", "legacy_id")):
                these = [i for k, i in chunk if k == kind]
                if these:
                    parts.append(_in_query(kind, column, len(these)))
                    params += these
            for kind, *row in conn.execute(" UNION ALL ".join(parts), params):
                key = row[0] if kind == "p" else row[1]
                if kind == "l" and key in found and found[key].personal_id < row[0]:
                    continue
                found[key] = _citizen(tuple(row))
        return found


def open_population(url: str) -> PopulationDB:
    """Open the population store a database URL names (`sqlite:///PATH`; other schemes fail clearly)."""
    return PopulationDB.create(sqlite_path(url))
