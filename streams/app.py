"""The faust app of a reconciliation worker, built from settings (never at import time)."""

from __future__ import annotations

import faust

from streams.config import StreamsSettings
from streams.topics import MAX_MESSAGE_BYTES

__all__ = ["create_app"]


def create_app(settings: StreamsSettings) -> faust.App:
    """A faust app configured for popsync: raw values, memory tables recovered from changelogs."""
    if not settings.bootstrap_servers:
        from streams.exceptions import ConfigurationError

        raise ConfigurationError(
            "no Kafka bootstrap servers: set POPSYNC_BOOTSTRAP_SERVERS (or pass --bootstrap-servers)"
        )
    brokers = [f"kafka://{hp.strip()}" for hp in settings.bootstrap_servers.split(",") if hp.strip()]
    return faust.App(
        settings.app_id,
        broker=brokers,
        store="memory://",  # tables are rebuilt from their changelog topics on start: nothing on disk to lose
        datadir=str(settings.data_dir),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        table_standby_replicas=0,
        topic_partitions=settings.partitions,
        # faust's own topics (table changelogs, repartitions) as replicated as ours: run_worker sets it
        # from the cluster (streams.topics.replication_for) unless STREAMS_REPLICATION_FACTOR does.
        topic_replication_factor=settings.replication_factor or 1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,  # acks=all: with 3 replicas, min.insync.replicas 2 makes it two copies at least
        # A short session makes a dead worker's partitions move within seconds (FACTS.md: ~6 s takeover).
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        broker_commit_interval=1.0,
        stream_buffer_maxsize=8192,
        # Batch produce requests: with no linger every result left in a request of its own, and the
        # socket writes were the largest cost of a worker (profiled on the demo).
        producer_linger=0.02,
        producer_max_batch_size=512 * 1024,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        **settings.kafka.faust_config(),  # broker_credentials for SASL/TLS (POPSYNC_KAFKA_*)
    )
