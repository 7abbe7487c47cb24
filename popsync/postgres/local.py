"""`LocalPostgres`: a throwaway PostgreSQL server from the local binaries (initdb, pg_ctl, postgres).

The server lives in a temporary directory, listens on a free port of 127.0.0.1 only (no Unix socket) and
trusts every local connection: it holds test data for one test session or one benchmark and is deleted
when stopped. Durability is off (`fsync`, `synchronous_commit`, `full_page_writes`): a crash loses a
throwaway database, and tests should not wait on the disk.

PostgreSQL refuses to run as root. Run as root (containers, CI runners), the data directory is given to the
unprivileged `nobody` account and initdb, pg_ctl and the server run as that user (Python's
`subprocess` `user=`/`group=`, i.e. setuid/setgid before exec): nothing is created and no sudo is needed.
`POPSYNC_PG_USER` names another account to use instead.

A server whose owner was killed (SIGKILL leaves no time to stop it) is stopped and deleted by the next
`start()` on the machine: each directory records its owner's pid.

    with local_postgres() as server:
        url = server.create_database("npd")   # postgresql://popsync@127.0.0.1:PORT/npd
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from popsync.broker.probe import process_alive
from popsync.postgres.errors import NO_POSTGRES_HELP, PostgresUnavailableError

__all__ = ["LocalPostgres", "find_binaries", "local_postgres"]

_SUPERUSER = "popsync"
_DEBIAN = Path("/usr/lib/postgresql")  # Debian's layout: <major>/bin
_PREFIX = "popsync-pg-"
_OWNER = "owner.pid"
_START_TIMEOUT_S = 60
_SETTINGS = """
# popsync's throwaway test server (popsync/postgres/local.py)
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
"""


def find_binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres: $POPSYNC_PG_BIN, else the one of `initdb` on PATH,
    else the newest /usr/lib/postgresql/*/bin (Debian's layout). `PostgresUnavailableError` when none."""
    candidates: list[Path] = []
    if env := os.environ.get("POPSYNC_PG_BIN"):
        candidates.append(Path(env))
    if on_path := shutil.which("initdb"):
        candidates.append(Path(on_path).resolve().parent)
    debian = sorted(_DEBIAN.glob("*/bin"), key=lambda p: _major(p.parent.name))
    candidates.extend(reversed(debian))
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailableError(f"no PostgreSQL server binaries found; {NO_POSTGRES_HELP}")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class _RunAs:
    """The account the server runs as; `None` fields: the current one."""

    user: int | None = None
    group: int | None = None

    @classmethod
    def pick(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        name = os.environ.get("POPSYNC_PG_USER", "nobody")
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise PostgresUnavailableError(
                f"running as root, PostgreSQL must run as another user, and account {name!r} does not "
                "exist; set POPSYNC_PG_USER to an unprivileged account"
            ) from None
        return cls(entry.pw_uid, entry.pw_gid)

    def chown(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.user, self.group if self.group is not None else -1)


class LocalPostgres:
    """One server: `start()`, `url(database)`, `create_database()`, `stop()`."""

    def __init__(self, root: Path | None = None) -> None:
        self.bin = find_binaries()
        self._owned = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix=_PREFIX))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._as = _RunAs.pick()
        self._running = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # user/group: setuid/setgid in the child before exec (PostgreSQL refuses root); extra_groups=[]
        # drops root's supplementary groups. The arguments are built here, never from input.
        try:
            return subprocess.run(  # noqa: S603
                args,
                capture_output=True,
                text=True,
                timeout=_START_TIMEOUT_S,
                check=False,
                cwd=self.root,
                user=self._as.user,
                group=self._as.group,
                extra_groups=None if self._as.user is None else [],
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailableError(f"{Path(args[0]).name} failed to run: {exc}") from None

    def start(self) -> LocalPostgres:
        """initdb, then start the server and wait until it accepts connections."""
        self._remove_orphans()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / _OWNER).write_text(str(os.getpid()), encoding="ascii")
        self._as.chown(self.root)
        done = self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", _SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise PostgresUnavailableError(f"initdb failed (exit {done.returncode}): {done.stderr.strip()}")
        self.port = _free_port()
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(_SETTINGS.format(port=self.port))
        done = self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(_START_TIMEOUT_S), "start",
        )  # fmt: skip
        if done.returncode != 0:
            log = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
            tail = log[-2000:]
            raise PostgresUnavailableError(
                f"the PostgreSQL server did not start: {done.stderr.strip()} {tail}"
            )
        self._running = True
        return self

    def _remove_orphans(self) -> None:
        """Stop and delete the servers of owners that died without stopping them (this user's temp dir)."""
        for root in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
            if root == self.root:
                continue
            try:
                owner = int((root / _OWNER).read_text(encoding="ascii"))
            except (OSError, ValueError):
                continue  # not one of ours, or still being set up
            if process_alive(owner):
                continue
            if (root / "data" / "postmaster.pid").exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
            shutil.rmtree(root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The URL of `database` on this server (trusted: no password)."""
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "popsync") -> str:
        """A new, empty database with a unique name; returns its URL."""
        import psycopg  # imported here: only the callers that start a server need the driver

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a name made here: letters, digits, underscores
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory when this object made it."""
        if self._running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            self._running = False
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """A started `LocalPostgres`, stopped and deleted on exit."""
    server = LocalPostgres()
    try:
        yield server.start()
    finally:
        server.stop()
