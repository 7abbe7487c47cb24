"""Wires topics, tables and agents into a faust app and runs it as a worker process."""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from typing import Any

import faust

from schemas.masking import MaskingFilter
from schemas.outcomes import Sector
from schemas.provinces import map_for
from streams.app import create_app
from streams.chains import attach_chains
from streams.civil import CivilReconciler
from streams.config import StreamsSettings
from streams.counting import OutcomeCounter
from streams.eid import attach_eid
from streams.exceptions import ConfigurationError
from streams.gaps import GapGuard, Process, guard_agent, reader
from streams.holders import FirstHolders
from streams.metrics import WorkerMetrics, serve_metrics
from streams.ndxp_client import NdxpClient
from streams.reconcile import Reconciler
from streams.rewind import rewind_on_assignment
from streams.stats import WorkerStats
from streams.topics import TopicNames, ensure_topics, replicated_configs

__all__ = ["build_worker_app", "run_worker"]

log = logging.getLogger(__name__)


def build_worker_app(settings: StreamsSettings, metrics: WorkerMetrics | None = None) -> faust.App:
    """The app with its agents: one reconcile agent per sector topic, one counting agent on outcome digests.

    `metrics` (a new `WorkerMetrics` by default) is updated by the agents; `run_worker` serves it.
    """
    app = create_app(settings)
    if metrics is None:
        metrics = WorkerMetrics(settings.worker_id, settings.app_id)
    topics = TopicNames(settings.topic_prefix)
    stats = WorkerStats()
    partitions = settings.partitions
    # Both tables hold one entry per batch and partition (streams/holders.py, streams/counting.py say why).
    holders_table = app.Table(
        "first-holders",
        partitions=partitions,
        extra_topic_configs=replicated_configs(settings.replication_factor),
    )
    outcomes = app.Table(
        "outcome-digests",
        partitions=partitions,
        extra_topic_configs=replicated_configs(settings.replication_factor),
    )
    holders = FirstHolders(holders_table)
    holders_table.on_recover(holders.rebuild)
    client_box: dict[str, NdxpClient] = {}

    def client() -> NdxpClient:
        # Built lazily inside the running loop: httpx binds its pool to the loop that first uses it.
        if "c" not in client_box:
            client_box["c"] = NdxpClient.from_settings(settings, metrics=metrics)
        return client_box["c"]

    counter = OutcomeCounter(app, topics, outcomes, stats, settings.worker_id)
    outcomes.on_recover(counter.rebuild)
    metrics.track_progress(counter.owned_totals)

    async def forget_revoked(_app: Any, /, *args: Any, **_: Any) -> None:
        # Stop reporting a revoked partition before its next owner does (no double count in the sum).
        (revoked,) = args  # faust sends the set of revoked TopicPartitions
        counter.forget(tp.partition for tp in revoked if tp.topic == topics.outcomes)

    app.on_partitions_revoked.connect(forget_revoked)

    # The agents' source topics (the e-ID one is added by `attach_eid`): streams/rewind.py says why.
    rewind_on_assignment(
        app,
        [
            *topics.record_topics,
            topics.outcomes,
            topics.civil_events,
            topics.residence_events,
            topics.chain_steps,
        ],
    )

    # Every agent reads back what faust 0.15 skips around a rebalance (streams/gaps.py).
    read = reader(settings.bootstrap_servers, settings.kafka)
    for sector in Sector:
        sector_topic = topics.records(sector.value)
        topic = app.topic(sector_topic, partitions=partitions, key_type=bytes, value_type=bytes)
        reconciler_box: dict[str, Reconciler] = {}
        kind = CivilReconciler if sector is Sector.CIVIL_STATUS else Reconciler

        async def decide(
            events: Sequence[Any],
            _box: dict[str, Reconciler] = reconciler_box,
            _kind: type[Reconciler] = kind,
        ) -> None:
            if "r" not in _box:
                _box["r"] = _kind(
                    app,
                    topics,
                    client(),
                    holders,
                    stats,
                    metrics,
                    partitions=partitions,
                    chunk=settings.batch_size,
                    matching=settings.matching,
                    provinces=map_for(settings.as_of),
                )
            await _box["r"].process_safely(events)

        name = f"reconcile-{sector_topic.rsplit('.', 1)[-1]}"
        gaps = guard_agent(app, [sector_topic], name, read, decide)

        async def reconcile(stream: Any, _gaps: GapGuard = gaps, _decide: Process = decide) -> None:
            try:
                async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
                    await _gaps.process(events, _decide)
            except ConfigurationError as exc:
                # Wrong credentials or withheld fields: no record can be decided, so stop the whole
                # worker loudly (a crashed agent alone would leave the worker idling with lag growing).
                log.error("stopping the worker: %s", exc)
                await app.crash(exc)
                raise

        app.agent(topic, name=name)(reconcile)

    digests = app.topic(topics.outcomes, partitions=partitions, key_type=bytes, value_type=bytes)
    count_gaps = guard_agent(app, [topics.outcomes], "count-outcomes", read, counter.process)

    async def count(stream: Any) -> None:
        async for events in stream.take_events(100, within=0.2):
            await count_gaps.process(events, counter.process)

    app.agent(digests, name="count-outcomes")(count)
    app.timer(settings.progress_interval_s)(counter.snapshot)
    attach_chains(app, topics, settings, client, metrics)
    # e-ID: VNeID account events → each account's latest state → exact counts → <prefix>.eid.progress
    attach_eid(app, topics, settings)
    return app


class _Worker(faust.Worker):
    """faust's worker with popsync's log masking on every handler of the root logger."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # mode leaves the root logger at DEBUG whatever loglevel says; aiokafka then formats a debug line
        # for every message sent (measured: ~14% of a worker's CPU). Apply the configured level here.
        logger.setLevel(str(self.loglevel).upper())
        for handler in logger.handlers:
            handler.addFilter(MaskingFilter())


def tune_gc() -> None:
    """Collect young objects less often: a worker allocates ~30 objects per record it decodes, keeps a
    large heap (the first holders, the outcome index) and creates few reference cycles, so the default
    thresholds made the cyclic collector rescan that heap over and over (py-spy: the NDXP answer's decoding
    looked ten times slower than alone)."""
    gc.collect()
    gc.freeze()  # what start-up built (modules, the app) is never scanned again
    gc.set_threshold(50_000, 50, 100)


def run_worker(settings: StreamsSettings) -> None:
    """Run one worker until SIGTERM/SIGINT; creates the topics first so partition counts are right.

    With STREAMS_METRICS_PORT set, /metrics is served first (a port in use fails before Kafka is touched).
    """
    tune_gc()
    metrics = WorkerMetrics(settings.worker_id, settings.app_id)
    if settings.metrics_port:
        # prometheus_client serves from a daemon thread: scrapes never block the event loop.
        port = serve_metrics(metrics.registry, settings.metrics_port, settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, port)
    replication = ensure_topics(
        settings.bootstrap_servers,
        TopicNames(settings.topic_prefix).all(),
        settings.partitions,
        security=settings.kafka,
        replication=settings.replication_factor or None,
    )
    # faust's changelogs get as many copies as the topics (min(3, brokers) unless set).
    settings = settings.model_copy(update={"replication_factor": replication})
    app = build_worker_app(settings, metrics)
    worker = _Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
