"""A real Apache Kafka broker for popsync: given servers, a Docker container, or a local Java KRaft broker.

`kafka_broker()` picks, in this order: explicit bootstrap servers (argument or env
`POPSYNC_BOOTSTRAP_SERVERS`); an `apache/kafka:<KAFKA_VERSION>` container where a Docker engine answers;
otherwise `LocalKafka`, the official Kafka jars (fetched once from Maven Central with
`deploy/kafka/pom.xml`, cached under `~/.cache/popsync/kafka/<version>/` or `$POPSYNC_CACHE_DIR`) run on
Java 17+ as a single-node KRaft broker on free 127.0.0.1 ports.

`run_broker()` picks the same way and yields the broker as a handle (`RunBroker`): what a run watches, and,
for a broker popsync started, restarts on its own data and port when it dies.

Modules: `errors` (the exception hierarchy), `jars` (cache, Maven fetch, Java), `probe` (pids, ports,
readiness), `lifetime` (no orphan JVM), `local` (`LocalKafka`), `docker` (the container path),
`cluster` (`LocalCluster`: several combined KRaft nodes, `--brokers 3`), `handle` (a run's broker: given,
local, a local cluster or in Docker), `detached` (`popsync kafka up|down|status`).

With `brokers` > 1, `run_broker` starts a `LocalCluster` on Java (Docker is not used for a cluster).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from popsync.broker.cluster import LocalCluster
from popsync.broker.detached import kafka_down, kafka_status, kafka_up
from popsync.broker.docker import docker_available, docker_broker
from popsync.broker.errors import (
    NO_KAFKA_HELP,
    KafkaFetchError,
    KafkaLocalError,
    KafkaStartError,
    KafkaUnavailableError,
)
from popsync.broker.handle import ClusterBroker, DockerBroker, LocalBroker, RunBroker
from popsync.broker.jars import KAFKA_VERSION, Log, cache_root, fetch_kafka_jars, find_java
from popsync.broker.lifetime import remove_stale_data_dirs
from popsync.broker.local import LocalKafka
from popsync.broker.probe import process_alive

__all__ = [
    "KAFKA_VERSION",
    "ClusterBroker",
    "DockerBroker",
    "KafkaFetchError",
    "KafkaLocalError",
    "KafkaStartError",
    "KafkaUnavailableError",
    "LocalBroker",
    "LocalCluster",
    "LocalKafka",
    "RunBroker",
    "cache_root",
    "docker_available",
    "fetch_kafka_jars",
    "kafka_broker",
    "kafka_down",
    "kafka_status",
    "kafka_up",
    "process_alive",
    "remove_stale_data_dirs",
    "run_broker",
]

ENV_BOOTSTRAP = "POPSYNC_BOOTSTRAP_SERVERS"
_logger = logging.getLogger(__name__)


@contextlib.contextmanager
def kafka_broker(
    bootstrap_servers: str | None = None,
    *,
    log: Log | None = None,
    version: str = KAFKA_VERSION,
    partitions: int = 6,
    cache_dir: Path | None = None,
) -> Iterator[str]:
    """A bootstrap for a broker: the given one, else Docker, else `LocalKafka`; stops what it started."""
    with run_broker(
        bootstrap_servers, log=log, version=version, partitions=partitions, cache_dir=cache_dir
    ) as broker:
        yield broker.bootstrap_servers


@contextlib.contextmanager
def run_broker(
    bootstrap_servers: str | None = None,
    *,
    log: Log | None = None,
    version: str = KAFKA_VERSION,
    partitions: int = 6,
    cache_dir: Path | None = None,
    brokers: int = 1,
) -> Iterator[RunBroker]:
    """The broker of a run as `kafka_broker` picks it, as a handle to watch (and restart, if started here).

    `brokers` > 1 (and no servers given): a `LocalCluster` of that many nodes, on Java only.
    """
    say = log or _logger.info
    servers = (bootstrap_servers or os.environ.get(ENV_BOOTSTRAP) or "").strip()
    if servers:
        yield RunBroker(servers)
    elif brokers > 1:
        if find_java() is None:
            raise KafkaUnavailableError(
                f"No Kafka cluster: popsync runs a cluster of {brokers} brokers on Java 17+, and there is no "
                "`java` here; install Java 17+, or pass --bootstrap-servers of a running cluster."
            )
        with LocalCluster(brokers, version=version, partitions=partitions, cache_dir=cache_dir, log=say) as c:
            yield ClusterBroker(c)
    elif docker_available():
        with docker_broker(version, partitions, say) as broker:
            yield broker
    elif find_java() is None:
        raise KafkaUnavailableError(
            f"No Kafka broker: no Java 17+ and no Docker engine here; {NO_KAFKA_HELP}."
        )
    else:
        with LocalKafka(version=version, partitions=partitions, cache_dir=cache_dir, log=say) as local:
            yield LocalBroker(local)
