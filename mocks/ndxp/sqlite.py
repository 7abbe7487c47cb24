"""SQLite plumbing shared by the population and audit stores: URL parsing, per-thread connections."""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from pathlib import Path
from urllib.parse import urlsplit

from mocks.ndxp.exceptions import UnsupportedDatabaseError

__all__ = ["SqliteConnections", "checked_sqlite_url", "sqlite_path"]

_log = logging.getLogger("mocks.ndxp")
_BUSY_TIMEOUT_S = 30.0
# Each connection's page cache (KiB): the interior pages of a 1.5-million-citizen tree fit (about 4 MiB).
CACHE_KIB = 8192


def _safe_url(url: str) -> str:
    """The URL without credentials, for error messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    return parts._replace(netloc=f"***@{parts.hostname or ''}").geturl()


def sqlite_path(url: str) -> Path:
    """The file path of a `sqlite:///relative/path` or `sqlite:////absolute/path` URL.

    Other schemes fail clearly (PostgreSQL URLs are opened by `mocks.ndxp.postgres`, not here).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UnsupportedDatabaseError(
            f"database URL {url!r} has no scheme; write it as sqlite:///PATH (relative) or sqlite:////PATH"
        )
    if scheme != "sqlite":
        raise UnsupportedDatabaseError(
            f"database URL {_safe_url(url)!r} uses scheme {scheme!r}; write sqlite:///PATH "
            "or postgresql://USER@HOST:PORT/DATABASE"
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


class _Held:
    """A thread's connection, held by that thread's `threading.local` slot: when the thread ends, the slot
    goes and a finalizer closes the connection (`sqlite3.Connection` takes no weak reference itself)."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


_Open = dict[int, sqlite3.Connection]


def _release(open_: _Open, lock: threading.Lock, key: int) -> None:
    # Not a method: a finalizer holding the `SqliteConnections` would keep it (and its connections) alive.
    with lock:
        conn = open_.pop(key, None)
    if conn is not None:
        conn.close()


class SqliteConnections:
    """One connection per thread to a SQLite file in WAL mode (readers never block the writer).

    The request handlers run in a thread pool; a connection per thread avoids a lock around a shared
    one and lets the WAL serve concurrent readers. Connections run in autocommit mode: writers open
    their own `BEGIN` … `COMMIT`. A connection is closed when its thread ends: the thread pool retires
    threads that have been idle a while, and their connections must not pile up.

    No memory map: a connection's map of the file counts in the process's resident set once per
    connection, so with a thread per concurrent request a 400 MB NPD read by eight threads showed as
    over 1 GB resident, growing with the threads. Pages come from the OS cache instead; verify-batch
    costs about 0.7 ms more per 1000 IDs (4% on the 2-core development machine).

    `checkpoint_every_s` set, the WAL is copied back into the database file by a thread of its own at
    that interval instead of by whichever commit crosses SQLite's 1000-page mark: a server's requests
    then never wait for a checkpoint (about 4 MB written and synced; on the development machine
    verify-batch's mean time fell by 1.7–3 ms a call). `close()` stops that thread.
    """

    def __init__(self, path: Path, *, checkpoint_every_s: float | None = None) -> None:
        self.path = path
        self._checkpoint_every_s = checkpoint_every_s
        self._local = threading.local()
        self._open: _Open = {}  # id → connection, of every thread
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        path.parent.mkdir(parents=True, exist_ok=True)
        first = self.get()
        # Persistent in the file: every later connection finds the database in WAL mode.
        first.execute("PRAGMA journal_mode=WAL")
        self._checkpointer: threading.Thread | None = None
        if checkpoint_every_s is not None:
            self._checkpointer = threading.Thread(
                target=self._checkpoint,
                args=(checkpoint_every_s,),
                name=f"sqlite-checkpoint-{path.name}",
                daemon=True,
            )
            self._checkpointer.start()

    def _checkpoint(self, every_s: float) -> None:
        # PASSIVE: copies what no reader still needs and never blocks a reader or the writer.
        conn = self.get()
        while not self._stop.wait(every_s):
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next round tries again; the WAL only grows meanwhile
                _log.warning("checkpoint of %s failed: %s", self.path, exc)

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None:
            return held.conn
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError(f"the connections to {self.path} are closed")
            # check_same_thread=False only so close() (and a thread's end) may close a connection from
            # another thread; each connection is otherwise used by the thread that opened it.
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if self._checkpoint_every_s is not None:
                conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it
            held = _Held(conn)
            self._open[id(conn)] = conn
            weakref.finalize(held, _release, self._open, self._lock, id(conn))
        self._local.held = held
        return conn

    def close(self) -> None:
        """Close every thread's connection; later `get()` calls fail."""
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
        with self._lock:
            self._closed = True
            conns = list(self._open.values())
            self._open.clear()  # in place: the finalizers of the threads still alive find nothing to close
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
