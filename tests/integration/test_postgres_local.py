"""The throwaway PostgreSQL server of the tests: a server whose owner was SIGKILLed is stopped and deleted
by the next one that starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from popsync.broker.probe import process_alive
from popsync.postgres import LocalPostgres, PostgresUnavailableError

_OWNER = """
import time
from popsync.postgres import LocalPostgres
server = LocalPostgres().start()
print(server.root, server.port, flush=True)
time.sleep(600)
"""


def test_an_orphaned_server_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    try:
        LocalPostgres().stop()  # finds the binaries; starts nothing
    except PostgresUnavailableError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server binaries: {exc}")
    owner = subprocess.Popen([sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    root_text, port = owner.stdout.readline().split()
    root = Path(root_text)
    postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
    with psycopg.connect(f"postgresql://popsync@127.0.0.1:{port}/postgres", connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert process_alive(postmaster)  # nobody stopped it: an orphan

    successor = LocalPostgres().start()
    try:
        deadline = time.monotonic() + 30
        while process_alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(postmaster)
        assert not root.exists()
    finally:
        successor.stop()
    assert not successor.root.exists()
