"""PostgreSQL plumbing shared by the mocks' stores: URL recognition, connection pools, schema set-up.

A store's blocking methods run in the request handlers' thread pool (as the SQLite stores' do: no handler
blocks the event loop) and share one `psycopg_pool.ConnectionPool` per database. Each operation borrows a
connection: `with pool.transaction() as conn:` for several statements (committed when the block ends,
rolled back when it raises), `with pool.connection() as conn:` for one statement, its own transaction
(autocommit: one round trip, no BEGIN/COMMIT; a batch's look-up is one statement and so is its audit).

The NDXP's read routes (a citizen, a verification, verify-batch, a legacy ID) and their audit writes are
async: they use `pool.aio`, a psycopg_pool `AsyncConnectionPool` opened in the serving event loop on first
use (`aclose()` in the app's lifespan closes it), so those handlers wait on PostgreSQL without a thread.
The writers (civil status, residence, VNeID accounts) decide between statements inside one transaction
and stay in the thread pool.

Several replicas may open the same database at once: the schema is created under an advisory lock, so two
`CREATE TABLE IF NOT EXISTS` never race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from mocks.ndxp.exceptions import StorageError, UnsupportedDatabaseError
from mocks.ndxp.sqlite import checked_sqlite_url

__all__ = ["AsyncPostgresPool", "PostgresPool", "checked_database_url", "is_postgres_url", "safe_url"]

_log = logging.getLogger("mocks.ndxp")
_SCHEMES = ("postgresql", "postgres")
# pg_advisory_xact_lock's key for schema changes: any constant every store agrees on ("popsync" in ASCII).
_SCHEMA_LOCK = 0x706F7073796E63
_CONNECT_TIMEOUT_S = 30.0


def is_postgres_url(url: str) -> bool:
    """True for `postgresql://…` and `postgres://…` (libpq's two schemes)."""
    return url.partition("://")[0].lower() in _SCHEMES


def safe_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else "***@"
    host = parts.hostname or ""
    return parts._replace(netloc=f"{user}{host}{f':{parts.port}' if parts.port else ''}").geturl()


def checked_database_url(value: str | None) -> str | None:
    """A settings validator's check of a database URL: unchanged when it is PostgreSQL or a supported
    SQLite URL, else a ValueError saying what to write."""
    if value is not None and is_postgres_url(value):
        return value
    return checked_sqlite_url(value)


def _unreachable(location: str) -> StorageError:
    return StorageError(
        f"cannot connect to PostgreSQL at {location} within {_CONNECT_TIMEOUT_S:.0f} s; "
        "is the server up, and do the URL's host, port, user and database exist?"
    )


class AsyncPostgresPool:
    """An `AsyncConnectionPool` to one database, opened in the running event loop on first use."""

    def __init__(self, url: str, *, max_size: int, name: str) -> None:
        self._url = url
        self._max_size = max_size
        self._name = name
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection in autocommit mode: each statement is a transaction of its own."""
        pool = self._pool or await self._open()
        async with pool.connection() as conn:
            yield conn

    async def _open(self) -> AsyncConnectionPool:
        async with self._opening:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._max_size,
                    name=f"{self._name}-async",
                    open=False,
                    kwargs={"application_name": self._name, "autocommit": True},
                )
                try:
                    await pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
                except PoolTimeout:
                    await pool.close()
                    raise _unreachable(safe_url(self._url)) from None
                self._pool = pool
            return self._pool

    async def aclose(self) -> None:
        """Close the pool (in the loop that opened it); a pool never used has nothing to close."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class PostgresPool:
    """A pool of connections to one PostgreSQL database (`max_size` at most open at once), and `aio`, its
    async twin for the async routes."""

    def __init__(self, url: str, *, max_size: int = 16, name: str = "popsync") -> None:
        if not is_postgres_url(url):
            raise UnsupportedDatabaseError(f"database URL {safe_url(url)!r} is not a postgresql:// URL")
        self.location = safe_url(url)
        self.aio = AsyncPostgresPool(url, max_size=max_size, name=name)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            name=name,
            open=False,
            kwargs={"application_name": name, "autocommit": True},
        )
        try:
            self._pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except PoolTimeout:
            self._pool.close()
            raise _unreachable(self.location) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one transaction: committed when the block ends, rolled back if it raises."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection in autocommit mode: each statement is a transaction of its own."""
        with self._pool.connection() as conn:
            yield conn

    def ensure_schema(self, ddl: str) -> None:
        """Run `ddl` (idempotent statements) under the schema lock, in one transaction."""
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(ddl.encode())  # several statements: no parameters, simple query protocol

    def close(self) -> None:
        self._pool.close()
