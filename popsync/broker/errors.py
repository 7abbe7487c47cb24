"""Errors of popsync's own Kafka broker, under one root: KafkaLocalError.

Errors (all `popsync.exceptions.PopsyncError`):
    KafkaLocalError
    ├── KafkaUnavailableError  neither Java 17+ nor Docker (nor Maven for the first fetch)
    ├── KafkaFetchError        Maven could not fetch the jars
    └── KafkaStartError        the broker died or did not answer in time (message has the log tail)
"""

from __future__ import annotations

from popsync.exceptions import PopsyncError

__all__ = [
    "NO_KAFKA_HELP",
    "KafkaFetchError",
    "KafkaLocalError",
    "KafkaStartError",
    "KafkaUnavailableError",
]

NO_KAFKA_HELP = (
    "install Java 17+ (e.g. `apt-get install openjdk-17-jre-headless`; Maven too for the first fetch), "
    "or start a Docker engine, "
    "or pass --bootstrap-servers / set POPSYNC_BOOTSTRAP_SERVERS to use a running broker"
)


class KafkaLocalError(PopsyncError):
    """Root of the errors of popsync's own Kafka broker."""


class KafkaUnavailableError(KafkaLocalError):
    """No way to run a broker here: no Java 17+ (or Maven for the first fetch) and no Docker engine."""


class KafkaFetchError(KafkaLocalError):
    """Maven could not fetch the Kafka jars from Maven Central."""


class KafkaStartError(KafkaLocalError):
    """The broker exited during start-up or did not answer in time."""
