"""The detached broker of `popsync kafka up|down|status`: it outlives popsync, tracked in a state file.

It is the one exception to "the JVM never outlives popsync" (see `lifetime`): `kafka_up` starts it without
the death-with-parent and exit hooks, `kafka_down` stops it by the pid in the state file.
With `brokers` > 1 it is a `LocalCluster`: the state lists each node (pid, address, data dir, log).
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

from popsync.broker.cluster import LocalCluster
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


def _nodes(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The state of each node: a cluster's `nodes`, or the single broker's own state."""
    nodes = state.get("nodes")
    return list(nodes) if isinstance(nodes, list) else [state]


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
    brokers: int = 1,
) -> dict[str, Any]:
    """Start a detached broker (`brokers` > 1: a cluster) that outlives this process (or return the
    running one); its state. A cluster's nodes keep their data in `data_dir/node-<id>` if given."""
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
    if brokers > 1:
        state = _cluster_up(brokers, version, cache_dir, data_dir, partitions, timeout, log)
        _write_state(path, state)
        return {**state, "running": True, "answers": True}
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
    _write_state(path, state)
    broker.release()
    return {**state, "running": True, "answers": True}


def _cluster_up(
    brokers: int,
    version: str,
    cache_dir: Path | None,
    data_dir: Path | None,
    partitions: int,
    timeout: float,
    log: Log | None,
) -> dict[str, Any]:
    cluster = LocalCluster(
        brokers,
        version=version,
        cache_dir=cache_dir,
        data_root=data_dir,
        partitions=partitions,
        log=log,
        detached=True,
    )
    bootstrap = cluster.start(timeout=timeout)
    nodes = []
    for node in cluster.nodes:
        assert node.pid is not None and node.data_dir is not None
        nodes.append(
            {
                "pid": node.pid,
                "bootstrap_servers": node.bootstrap_servers,
                "data_dir": str(node.data_dir),
                "log_file": str(node.log_file),
            }
        )
    cluster.release()
    return {
        "brokers": brokers,
        "bootstrap_servers": bootstrap,
        "nodes": nodes,
        "remove_data_dir": data_dir is None,
        "version": version,
        "started_at": time.time(),
        "start_seconds": round(cluster.start_seconds or 0.0, 1),
    }


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def kafka_down(*, state_file: Path | None = None, timeout: float = 20.0, log: Log | None = None) -> bool:
    """Stop the detached broker or cluster (SIGTERM to every node at once, SIGKILL after `timeout`) and
    drop its state; False if none ran."""
    path = _state_path(state_file)
    state = _read_state(path)
    if state is None:
        return False
    ours = [node for node in _nodes(state) if _is_our_jvm(node)]
    pids = [int(node["pid"]) for node in ours]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(map(process_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    while any(map(process_alive, pids)) and time.monotonic() < deadline + 10:
        time.sleep(0.1)
    for node in _nodes(state):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(int(node["pid"]), os.WNOHANG)  # reap it if this very process started it (tests do)
        if state.get("remove_data_dir"):
            shutil.rmtree(node["data_dir"], ignore_errors=True)
    path.unlink(missing_ok=True)
    if pids:
        what = "cluster" if "nodes" in state else "broker"
        listed = ", ".join(map(str, pids))
        (log or _logger.info)(f"Kafka {what} {state.get('bootstrap_servers')} stopped (pid {listed}).")
    return bool(pids)


def kafka_status(*, state_file: Path | None = None, timeout: float = 3.0) -> dict[str, Any] | None:
    """The detached broker's state, `running` (its JVM lives; a cluster's: every node's) and `answers`
    (metadata works); a cluster's `nodes` say each of that too. None if there is none."""
    state = _read_state(_state_path(state_file))
    if state is None:
        return None
    if "nodes" not in state:
        running = _is_our_jvm(state)
        return {
            **state,
            "running": running,
            "answers": running and answers(state["bootstrap_servers"], timeout),
        }
    nodes = []
    for node in _nodes(state):
        alive = _is_our_jvm(node)
        nodes.append(
            {**node, "running": alive, "answers": alive and answers(node["bootstrap_servers"], timeout)}
        )
    return {
        **state,
        "nodes": nodes,
        "running": all(n["running"] for n in nodes),
        "answers": all(n["answers"] for n in nodes),
    }
