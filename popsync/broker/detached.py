"""The detached broker of `popsync kafka up|down|status`: it outlives popsync, tracked in a state file.

It is the one exception to "the JVM never outlives popsync" (see `lifetime`): `kafka_up` starts it without
the death-with-parent and exit hooks, `kafka_down` stops it by the pid in the state file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from popsync.broker.errors import KafkaUnavailableError
from popsync.broker.jars import KAFKA_VERSION, Log, cache_root, find_java
from popsync.broker.local import LocalKafka
from popsync.broker.probe import answers, process_alive

__all__ = ["kafka_down", "kafka_status", "kafka_up"]

_logger = logging.getLogger(__name__)


def _state_path(state_file: Path | None) -> Path:
    return Path(state_file) if state_file is not None else cache_root() / "kafka" / "broker.json"


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _is_our_jvm(state: dict[str, Any]) -> bool:
    """The state's pid still runs *our* broker (and not a process that reused the pid)."""
    pid = int(state["pid"])
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the pid
    return (
        b"kafka.Kafka" in cmdline and str(Path(state["data_dir"]) / "server.properties").encode() in cmdline
    )


def kafka_up(
    *,
    version: str = KAFKA_VERSION,
    cache_dir: Path | None = None,
    data_dir: Path | None = None,
    port: int | None = None,
    partitions: int = 6,
    timeout: float = 120.0,
    log: Log | None = None,
    state_file: Path | None = None,
) -> dict[str, Any]:
    """Start a detached broker that outlives this process (or return the running one); its state."""
    path = _state_path(state_file)
    current = kafka_status(state_file=path)
    if current is not None and current["running"]:
        (log or _logger.info)(f"Kafka already up on {current['bootstrap_servers']} (pid {current['pid']}).")
        return current
    if find_java() is None:
        raise KafkaUnavailableError(
            "`popsync kafka up` runs Kafka on Java and there is no `java` here: install Java 17+; or run "
            f"`docker run -d -p 9092:9092 apache/kafka:{version}` "
            "and pass --bootstrap-servers 127.0.0.1:9092."
        )
    if current is not None:
        kafka_down(state_file=path)  # stale state: clean it (and its data dir) before starting anew
    broker = LocalKafka(
        version=version,
        cache_dir=cache_dir,
        data_dir=data_dir,
        port=port,
        partitions=partitions,
        log=log,
        detached=True,
    )
    bootstrap = broker.start(timeout=timeout)
    assert broker.pid is not None and broker.data_dir is not None
    state = {
        "pid": broker.pid,
        "bootstrap_servers": bootstrap,
        "data_dir": str(broker.data_dir),
        "remove_data_dir": data_dir is None,
        "log_file": str(broker.log_file),
        "version": version,
        "started_at": time.time(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)
    broker.release()
    return {**state, "running": True, "answers": True}


def kafka_down(*, state_file: Path | None = None, timeout: float = 20.0, log: Log | None = None) -> bool:
    """Stop the detached broker (SIGTERM, SIGKILL after `timeout`) and drop its state; False if none ran."""
    path = _state_path(state_file)
    state = _read_state(path)
    if state is None:
        return False
    pid, stopped = int(state["pid"]), False
    if _is_our_jvm(state):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while process_alive(pid) and time.monotonic() < deadline + 10:
                time.sleep(0.1)
        stopped = True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if this very process started it (tests do)
    if state.get("remove_data_dir"):
        shutil.rmtree(state["data_dir"], ignore_errors=True)
    path.unlink(missing_ok=True)
    if stopped:
        (log or _logger.info)(f"Kafka broker {state.get('bootstrap_servers')} stopped (pid {pid}).")
    return stopped


def kafka_status(*, state_file: Path | None = None, timeout: float = 3.0) -> dict[str, Any] | None:
    """The detached broker's state, `running` (its JVM lives) and `answers` (metadata works); or None."""
    state = _read_state(_state_path(state_file))
    if state is None:
        return None
    running = _is_our_jvm(state)
    return {**state, "running": running, "answers": running and answers(state["bootstrap_servers"], timeout)}
