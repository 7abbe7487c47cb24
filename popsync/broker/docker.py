"""The Docker path: the official `apache/kafka` image run with testcontainers, if a Docker engine answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from popsync.broker.handle import DockerBroker
from popsync.broker.jars import Log
from popsync.broker.probe import await_ready, free_port

__all__ = ["docker_available", "docker_broker", "docker_kafka"]


def docker_available(timeout: float = 3.0) -> bool:
    """True if a Docker engine answers a ping within `timeout` seconds."""
    try:
        import docker  # type: ignore[import-untyped]  # the docker SDK ships no type stubs

        client = docker.from_env(timeout=max(1, round(timeout)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure (no SDK, no socket, refused, timeout) means "no usable engine"
        return False


@contextlib.contextmanager
def docker_kafka(version: str, partitions: int, log: Log, timeout: float = 180.0) -> Iterator[str]:
    """The bootstrap of an `apache/kafka:<version>` container, ready; the container stops on exit."""
    with docker_broker(version, partitions, log, timeout) as broker:
        yield broker.bootstrap_servers


@contextlib.contextmanager
def docker_broker(version: str, partitions: int, log: Log, timeout: float = 180.0) -> Iterator[DockerBroker]:
    """An `apache/kafka:<version>` container, ready, as a run's broker; the container stops on exit."""
    # testcontainers' KafkaContainer drives Confluent images (/etc/confluent/docker scripts) and fails on
    # apache/kafka, so the official image is configured here through its KAFKA_* environment instead.
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.docker_client import DockerClient

    host = DockerClient().host()
    port = free_port()  # the same port inside and outside, so the advertised address is reachable
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://127.0.0.1:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:9093",
        "KAFKA_NUM_PARTITIONS": str(partitions),
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
    }
    container = DockerContainer(f"apache/kafka:{version}").with_bind_ports(port, port)
    for key, value in env.items():
        container.with_env(key, value)
    bootstrap = f"{host}:{port}"
    log(f"Starting apache/kafka:{version} in Docker on {bootstrap} (the first run pulls the image)…")

    def alive() -> bool:
        wrapped = container.get_wrapped_container()
        wrapped.reload()  # `status` is a cached attribute until reloaded
        return wrapped.status in ("created", "running")

    def logs() -> str:
        out, err = container.get_logs()
        return "\n".join((out + err).decode(errors="replace").splitlines()[-40:])

    try:
        container.start()
        await_ready(bootstrap, timeout, alive, logs)
        log(f"Kafka {version} ready in Docker on {bootstrap}.")
        yield DockerBroker(bootstrap, container)
    finally:
        container.stop()
