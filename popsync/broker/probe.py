"""Probes shared by every way of running a broker: a live pid, a free port, a broker that answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from popsync.broker.errors import KafkaStartError

__all__ = ["answers", "await_ready", "describe_exit", "free_port", "process_alive"]


def process_alive(pid: int) -> bool:
    """True if `pid` runs; a zombie (dead, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        # The state letter follows the parenthesised command name, which may itself contain spaces.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


def describe_exit(returncode: int | None) -> str:
    """How a process ended, as people say it: `exit 1`, `killed by SIGKILL` (`running` for None)."""
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (someone may take it before we bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True if a Kafka metadata request to `bootstrap` succeeds (after a cheap TCP check)."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=min(timeout, 1.0)):
            pass
    except (OSError, ValueError):
        return False
    try:
        from kafka import KafkaAdminClient

        ms = int(timeout * 1000)
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="popsync-probe",
            bootstrap_timeout_ms=ms,
            request_timeout_ms=ms,
        )
        try:
            return bool(admin.describe_cluster().get("brokers"))
        finally:
            admin.close()
    except Exception:  # not ready yet, in whatever way kafka-python says it
        return False


def await_ready(bootstrap: str, timeout: float, alive: Callable[[], bool], tail: Callable[[], str]) -> None:
    """Wait until `bootstrap` answers; `KafkaStartError` with `tail()` if it dies or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise KafkaStartError(
                f"The Kafka broker for {bootstrap} exited during start-up; log tail:\n{tail()}"
            )
        if answers(bootstrap, timeout=min(5.0, max(0.5, deadline - time.monotonic()))):
            return
        if time.monotonic() > deadline:
            raise KafkaStartError(
                f"The Kafka broker did not answer on {bootstrap} within {timeout:.0f} s "
                f"(raise the timeout on a slow machine); log tail:\n{tail()}"
            )
        time.sleep(0.2)
