"""Child processes popsync starts (NDXP, workers): started with a death signal, stopped for sure."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from popsync.exceptions import ServiceError

__all__ = ["ManagedProcess", "free_port", "popsync_command"]

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def popsync_command(*args: str) -> list[str]:
    """The CLI run with this interpreter, so children use the same environment as the parent."""
    return [sys.executable, "-m", "popsync.cli", *args]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # If popsync itself is killed (even with SIGKILL), the kernel kills the child too. SIGKILL, not SIGTERM:
    # a worker whose NDXP is gone may never finish a graceful stop, and nobody is left to escalate.
    # Nothing is lost: what the child had not committed is processed again by the next worker.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One child process with its log file; `stop` sends SIGTERM, then SIGKILL after a grace period."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.command = list(command)
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process: a child started
        # from a short-lived thread (a test's chaos thread) would be killed with it. Only the main
        # thread's children get the death signal; the others rely on `stop()` in the run's cleanup.
        on_main = threading.current_thread() is threading.main_thread()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI, no shell
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if on_main else None,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Wait until `check()` is true; fail with the log tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(f"{self.name} exited during start-up; last log lines:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        raise ServiceError(
            f"{self.name} was not ready after {timeout:.0f} s; last log lines:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would (used by tests and chaos runs)."""
        if self.alive() and self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
