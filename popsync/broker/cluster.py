"""`LocalCluster`: several `LocalKafka` nodes, each broker and controller, forming one KRaft cluster.

Combined nodes, not separate controllers: three JVMs instead of six on a laptop, and with three voters the
quorum (like the replicas, `min.insync.replicas` 2 of 3) survives one node's death. Each node has its own
free 127.0.0.1 ports (client, controller), its own data dir and log; the quorum's voters are fixed at start,
so a node restarts on its ports and data. Each JVM gets a small heap (256 MiB by default).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from types import TracebackType

from popsync.broker.errors import KafkaStartError
from popsync.broker.jars import KAFKA_VERSION, Log
from popsync.broker.local import ClusterNode, LocalKafka, new_cluster_id
from popsync.broker.probe import free_port

__all__ = ["CLUSTER_HEAP", "LocalCluster"]

CLUSTER_HEAP = "256m"  # per node: three nodes and the run's Python processes share a small machine
_logger = logging.getLogger(__name__)


def _free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 a moment ago."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class LocalCluster:
    """A KRaft cluster of `brokers` combined nodes (official jars, Java 17+) on free 127.0.0.1 ports.

    `bootstrap_servers` lists every node. `nodes` are the `LocalKafka`s: kill one, `restart()` it.
    `data_root`: each node's data in `data_root/node-<id>` (kept); None: a temp dir per node, removed at stop.
    """

    def __init__(
        self,
        brokers: int = 3,
        *,
        version: str = KAFKA_VERSION,
        cache_dir: Path | None = None,
        data_root: Path | None = None,
        partitions: int = 6,
        log: Log | None = None,
        detached: bool = False,
        heap: str = CLUSTER_HEAP,
    ) -> None:
        if brokers < 1:
            raise ValueError(f"a cluster needs at least one broker, not {brokers}")
        self.brokers, self.version, self.cache_dir, self.data_root = brokers, version, cache_dir, data_root
        self.partitions, self.detached, self.heap = partitions, detached, heap
        self._log = log or _logger.info
        self.nodes: list[LocalKafka] = []
        self.start_seconds: float | None = None  # how long the last `start` took, every node answering

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def running(self) -> bool:
        return bool(self.nodes) and all(node.running() for node in self.nodes)

    def start(self, timeout: float = 180.0) -> str:
        """Start every node, then wait until each answers; the bootstrap servers of all of them."""
        if self.running():
            return self.bootstrap_servers
        started = time.monotonic()
        for attempt in range(1, 4):  # a free port can be taken by someone else before a JVM binds it
            try:
                self._start_once(started, timeout)
                break
            except KafkaStartError as exc:
                # Kept data dirs were formatted with the first attempt's cluster id: no second try there.
                lost_port = "Address already in use" in str(exc) and self.data_root is None
                if not lost_port or attempt == 3:
                    raise
        self.start_seconds = time.monotonic() - started
        self._log(
            f"Kafka cluster of {self.brokers} ready on {self.bootstrap_servers} in {self.start_seconds:.1f} s"
        )
        return self.bootstrap_servers

    def _start_once(self, started: float, timeout: float) -> None:
        ports = _free_ports(2 * self.brokers)
        clients, controllers = ports[: self.brokers], ports[self.brokers :]
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in enumerate(controllers, start=1))
        cluster_id = new_cluster_id()
        self.nodes = [
            LocalKafka(
                version=self.version,
                cache_dir=self.cache_dir,
                data_dir=self.data_root / f"node-{i}" if self.data_root is not None else None,
                port=clients[i - 1],
                partitions=self.partitions,
                log=self._log,
                detached=self.detached,
                heap=self.heap,
                node=ClusterNode(i, clients[i - 1], controllers[i - 1], voters, cluster_id, self.brokers),
            )
            for i in range(1, self.brokers + 1)
        ]
        try:
            # A node answers only once a majority of the quorum runs: start all, then wait for each.
            for node in self.nodes:
                node.start(timeout, wait=False)
            for node in self.nodes:
                node.wait_ready(max(5.0, timeout - (time.monotonic() - started)), started)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node at once (each SIGTERM, SIGKILL after a grace), removing temp data dirs."""
        threads = [threading.Thread(target=node.stop, daemon=True) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for node in self.nodes:  # a thread that did not finish: stop it from here, as a last resort
            with contextlib.suppress(Exception):
                node.stop()

    def release(self) -> None:
        """Forget detached nodes without stopping them (see `kafka_up`)."""
        for node in self.nodes:
            node.release()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
