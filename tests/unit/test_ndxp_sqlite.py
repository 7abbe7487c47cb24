"""The mocks' per-thread SQLite connections: closed with their thread, no memory map, WAL checkpoints on a
thread of their own when asked."""

from __future__ import annotations

import gc
import sqlite3
import threading
import weakref
from pathlib import Path

import pytest

from mocks.ndxp.sqlite import CACHE_KIB, SqliteConnections

pytestmark = pytest.mark.unit


def test_a_threads_connection_is_closed_when_the_thread_ends(tmp_path: Path) -> None:
    connections = SqliteConnections(tmp_path / "npd.sqlite3")
    opened: list[sqlite3.Connection] = []

    def work() -> None:
        conn = connections.get()
        assert connections.get() is conn  # one per thread
        opened.append(conn)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in opened}) == 4
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    main = connections.get()
    connections.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        main.execute("SELECT 1")


def test_connections_read_through_no_memory_map(tmp_path: Path) -> None:
    connections = SqliteConnections(tmp_path / "npd.sqlite3")
    try:
        conn = connections.get()
        assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 0
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's own
    finally:
        connections.close()


def test_checkpoints_on_their_own_thread_until_closed(tmp_path: Path) -> None:
    path = tmp_path / "npd.sqlite3"
    connections = SqliteConnections(path, checkpoint_every_s=0.01)
    conn = connections.get()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # no commit checkpoints itself
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 20_000)  # ~2,500 pages
    conn.execute("COMMIT")
    # The commit left the pages in the WAL; the database file grows once the thread copies them back.
    assert path.stat().st_size < 1_000_000
    copied = threading.Event()
    for _ in range(500):
        if path.stat().st_size > 1_000_000:
            copied.set()
            break
        copied.wait(0.01)
    assert copied.is_set()
    thread = next(t for t in threading.enumerate() if t.name == "sqlite-checkpoint-npd.sqlite3")
    connections.close()
    assert not thread.is_alive()


def test_connections_left_open_are_collected(tmp_path: Path) -> None:
    connections = SqliteConnections(tmp_path / "npd.sqlite3")
    connections.get().execute("SELECT 1")
    ref = weakref.ref(connections)
    del connections
    gc.collect()
    assert ref() is None
