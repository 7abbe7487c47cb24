"""SQLite plumbing shared by the population and audit stores: URL parsing, per-thread connections."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from urllib.parse import urlsplit

from mocks.ndxp.exceptions import UnsupportedDatabaseError

__all__ = ["SqliteConnections", "checked_sqlite_url", "sqlite_path"]

_BUSY_TIMEOUT_S = 30.0
_MMAP_BYTES = 1 << 30


def _safe_url(url: str) -> str:
    """The URL without credentials, for error messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    return parts._replace(netloc=f"***@{parts.hostname or ''}").geturl()


def sqlite_path(url: str) -> Path:
    """The file path of a `sqlite:///relative/path` or `sqlite:////absolute/path` URL.

    Other schemes fail clearly: the storage sits behind an interface so PostgreSQL can be added,
    but only SQLite is implemented.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UnsupportedDatabaseError(
            f"database URL {url!r} has no scheme; write it as sqlite:///PATH (relative) or sqlite:////PATH"
        )
    if scheme != "sqlite":
        raise UnsupportedDatabaseError(
            f"database URL {_safe_url(url)!r} uses scheme {scheme!r}; only sqlite:///PATH is implemented "
            "(PostgreSQL is planned, not available yet)"
        )
    if not rest.startswith("/") or rest == "/":
        raise UnsupportedDatabaseError(
            f"database URL {url!r} names no file; write it as sqlite:///PATH (relative) or sqlite:////PATH"
        )
    path = rest[1:]
    if path == ":memory:" or "?" in path:
        # Every thread opens its own connection, so a private in-memory database cannot be shared.
        raise UnsupportedDatabaseError(
            f"database URL {url!r}: in-memory databases and URL options are not supported; name a file"
        )
    return Path(path)


class SqliteConnections:
    """One connection per thread to a SQLite file in WAL mode (readers never block the writer).

    The request handlers run in a thread pool; a connection per thread avoids a lock around a shared
    one and lets the WAL serve concurrent readers. Connections run in autocommit mode: writers open
    their own `BEGIN` … `COMMIT`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        first = self.get()
        # Persistent in the file: every later connection finds the database in WAL mode.
        first.execute("PRAGMA journal_mode=WAL")

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError(f"the connections to {self.path} are closed")
            # check_same_thread=False only so close() may close every connection from one thread;
            # each connection is otherwise used by the thread that opened it.
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            # Reads through a shared memory map instead of each connection's own small page cache:
            # random look-ups then cost a page walk in memory, not a copy per page.
            conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
            self._all.append(conn)
        self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every thread's connection; later `get()` calls fail."""
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def checked_sqlite_url(value: str | None) -> str | None:
    """A settings validator's check of a database URL: unchanged when supported, else a ValueError."""
    if value is not None:
        try:
            sqlite_path(value)
        except UnsupportedDatabaseError as exc:
            raise ValueError(str(exc)) from None
    return value
