"""Topic names of one popsync deployment, and their explicit creation with the right partition count."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from schemas.outcomes import Sector
from streams.kafka_security import KafkaSecurity, get_kafka_security

__all__ = [
    "MAX_MESSAGE_BYTES",
    "TOPIC_CONFIGS",
    "TopicNames",
    "ensure_topics",
    "replicated_configs",
    "replication_for",
]

log = logging.getLogger(__name__)

# A record line may hold up to 1 MiB (CONTRACT.md) and its key (the personal ID as given) as much again;
# its result, correction and task quote its record_id. Kafka's default of 1 MiB a message would refuse
# such a record with MessageSizeTooLargeError, so every popsync topic (changelogs too) and producer
# allow 4 MiB.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
TOPIC_CONFIGS = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
MAX_REPLICATION = 3


def replication_for(brokers: int) -> int:
    """The replication factor of popsync's topics on a cluster of `brokers`: min(3, brokers)."""
    return max(1, min(MAX_REPLICATION, brokers))


def replicated_configs(replication: int) -> dict[str, str]:
    """`TOPIC_CONFIGS` for topics with `replication` copies: with 3, a write needs 2 of them in sync
    (`min.insync.replicas` 2), so acks=all survives one broker's death and never rests on one copy."""
    configs = dict(TOPIC_CONFIGS)
    if replication >= MAX_REPLICATION:
        configs["min.insync.replicas"] = "2"
    return configs


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Names derived from one prefix, so parallel runs and tests never share a topic."""

    prefix: str

    def records(self, sector: str) -> str:
        """The topic a sector's records are published to."""
        return f"{self.prefix}.records.{sector}"

    @property
    def record_topics(self) -> tuple[str, ...]:
        return tuple(self.records(s.value) for s in Sector)

    @property
    def results(self) -> str:
        return f"{self.prefix}.results"

    @property
    def outcomes(self) -> str:
        """Outcome digests: per batch and partition, the results whose key hashes there."""
        return f"{self.prefix}.outcomes"

    @property
    def progress(self) -> str:
        return f"{self.prefix}.progress"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    @property
    def corrections(self) -> str:
        return f"{self.prefix}.corrections"

    def tasks(self, sector: str) -> str:
        """Correction tasks sent back to the publishing provinces for a sector's unsynced records."""
        return f"{self.prefix}.tasks.{sector}"

    @property
    def task_topics(self) -> tuple[str, ...]:
        return tuple(self.tasks(s.value) for s in Sector)

    @property
    def civil_events(self) -> str:
        """Births and deaths the NPD registered: the first step of the linked procedures."""
        return f"{self.prefix}.civil.events"

    @property
    def residence_events(self) -> str:
        """Permanent residences registered (after a birth) or ended (after a death)."""
        return f"{self.prefix}.residence.events"

    @property
    def chain_steps(self) -> str:
        """Every step of every linked-procedure chain, keyed by chain ID (the tracker's input)."""
        return f"{self.prefix}.chains.steps"

    @property
    def chain_progress(self) -> str:
        """Snapshots of chain counts per province and kind."""
        return f"{self.prefix}.chains.progress"

    @property
    def eid_events(self) -> str:
        """VNeID account events (applied, approved, activated, locked), keyed by personal ID."""
        return f"{self.prefix}.eid.events"

    @property
    def eid_progress(self) -> str:
        """Snapshots of e-ID counts per province and level."""
        return f"{self.prefix}.eid.progress"

    def all(self) -> tuple[str, ...]:
        return (
            *self.record_topics,
            self.results,
            self.outcomes,
            self.progress,
            self.deadletter,
            self.corrections,
            *self.task_topics,
            self.civil_events,
            self.residence_events,
            self.chain_steps,
            self.chain_progress,
            self.eid_events,
            self.eid_progress,
        )


def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int,
    *,
    security: KafkaSecurity | None = None,
    replication: int | None = None,
) -> int:
    """Create the topics that do not exist yet, with `partitions` partitions each; the replication factor.

    faust would auto-create source topics with the broker's default count, which breaks the keyed
    ordering popsync relies on when the counts differ; so topics are always created up front.
    `replication`: None, `replication_for` the brokers the cluster has now (`replicated_configs` says
    the rest). `security` defaults to the POPSYNC_KAFKA_* settings of this process.
    """
    security = security if security is not None else get_kafka_security()
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="popsync-admin", **security.kafka_python_config()
    )
    try:
        if replication is None:
            replication = replication_for(len(admin.describe_cluster().get("brokers") or ()))
        existing = set(admin.list_topics())
        wanted = [n for n in names if n not in existing]
        if not wanted:
            return replication
        configs = replicated_configs(replication)
        with contextlib.suppress(TopicAlreadyExistsError):  # another process raced us; they are there
            admin.create_topics(
                [NewTopic(n, partitions, replication, topic_configs=dict(configs)) for n in wanted]
            )
        log.info(
            "created %d topics with %d partitions, %d replicas each", len(wanted), partitions, replication
        )
        return replication
    finally:
        admin.close()
