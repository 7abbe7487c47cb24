"""Compatibility facade: popsync's local Kafka broker now lives in the `popsync.broker` package."""

from __future__ import annotations

from popsync.broker import (
    KAFKA_VERSION,
    KafkaFetchError,
    KafkaLocalError,
    KafkaStartError,
    KafkaUnavailableError,
    LocalKafka,
    cache_root,
    docker_available,
    fetch_kafka_jars,
    kafka_broker,
    kafka_down,
    kafka_status,
    kafka_up,
    process_alive,
    remove_stale_data_dirs,
)

__all__ = [
    "KAFKA_VERSION",
    "KafkaFetchError",
    "KafkaLocalError",
    "KafkaStartError",
    "KafkaUnavailableError",
    "LocalKafka",
    "cache_root",
    "docker_available",
    "fetch_kafka_jars",
    "kafka_broker",
    "kafka_down",
    "kafka_status",
    "kafka_up",
    "process_alive",
    "remove_stale_data_dirs",
]
