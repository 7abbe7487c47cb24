"""Prometheus metrics of a reconciliation worker, in a registry of its own, served on STREAMS_METRICS_PORT.

The names are a contract shared with the alert rules and dashboards; labels carry only sector, province,
outcome, error kind, stage, worker and app IDs: never an ID, a name or a birth date.
"""

from __future__ import annotations

from collections import Counter as TallyCounter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.exceptions import ConfigurationError

__all__ = [
    "LAG_BUCKETS",
    "BatchTally",
    "ProgressCollector",
    "WorkerMetrics",
    "serve_metrics",
]

# Publish → outcome: 50 ms on a quiet pipeline up to half an hour behind an NDXP outage.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# One verify-batch call: a few ms on a local mock, up to the client's 30 s timeout.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 750, 1000)  # the NDXP takes at most 1,000 IDs


@dataclass
class BatchTally:
    """One batch's decisions, accumulated in plain dicts and applied to the metrics once per batch."""

    outcomes: TallyCounter[tuple[str, str, str]] = field(default_factory=TallyCounter)
    lags: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    rejected: int = 0

    def add(self, sector: str, province: str, outcome: str, lag_s: float) -> None:
        self.outcomes[sector, province, outcome] += 1
        source = (sector, province)
        lags = self.lags.get(source)
        if lags is None:
            lags = self.lags[source] = []
        lags.append(max(lag_s, 0.0))  # clocks of two hosts can disagree by a few ms


class ProgressCollector(Collector):
    """`popsync_progress_records`, read at scrape time from the idempotent outcome counts: never stale.

    `totals` returns "sector|province|outcome" → exact count over the partitions this worker owns; it is
    called from the HTTP server's thread, so it must only read (see `OutcomeCounter.owned_totals`).
    """

    NAME = "popsync_progress_records"
    HELP = (
        "Records per outcome in this worker's outcome-digest partitions, from its idempotent outcome table "
        "(exact: replays do not count twice); sum over workers for the total"
    )

    def __init__(self, totals: Callable[[], Mapping[str, int]]) -> None:
        self._totals = totals

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.NAME, self.HELP, labels=["sector", "province", "outcome"])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for label, count in sorted(self._totals().items()):
            sector, province, outcome = label.split("|", 2)
            family.add_metric([sector, province, outcome], count)
        yield family


class WorkerMetrics:
    """Every metric a worker exports, in `registry` (a new one by default: tests build several)."""

    def __init__(self, worker_id: str, app_id: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.reconciled = Counter(
            "popsync_records_reconciled",
            "Decisions made per outcome; a record replayed after a crash or rebalance is decided and "
            "counted again (exact figures: popsync_progress_records)",
            ["sector", "province", "outcome"],
            registry=r,
        )
        self.sync_lag = Histogram(
            "popsync_sync_lag_seconds",
            "Time from a record's publication (connector header) to its outcome",
            ["sector", "province"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.ndxp_call = Histogram(
            "popsync_ndxp_call_seconds",
            "Duration of one NDXP verify-batch HTTP call (every attempt, failed ones included)",
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.ndxp_batch_size = Histogram(
            "popsync_ndxp_batch_size",
            "IDs per NDXP verify-batch call (once per batch, however often it is retried)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.ndxp_retries = Counter(
            "popsync_ndxp_retries", "NDXP calls retried after a transient failure", registry=r
        )
        self.ndxp_errors = Counter(
            "popsync_ndxp_errors",
            "Failed NDXP calls by kind: the HTTP status code, or timeout, connect, transport",
            ["kind"],
            registry=r,
        )
        self.deadletter = Counter(
            "popsync_deadletter",
            "Messages sent to the dead-letter topic, by the stage that rejected them",
            ["stage"],
            registry=r,
        )
        self._deadletter_worker = self.deadletter.labels("worker")
        self.chains_started = Counter(
            "popsync_chains_started",
            "Linked-procedure chains this worker saw start (birth or death), by province",
            ["province", "kind"],
            registry=r,
        )
        self.chain_duration = Histogram(
            "popsync_chain_duration_seconds",
            "Time from a chain's registration to its final step, by province, kind and end "
            "(completed or stalled)",
            ["province", "kind", "status"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.info = Gauge(
            "popsync_worker_info", "This worker's identity (value 1)", ["worker_id", "app_id"], registry=r
        )
        self.info.labels(worker_id, app_id).set(1)

    def chain_started(self, province: str, kind: str) -> None:
        self.chains_started.labels(province, kind).inc()

    def chain_finished(self, province: str, kind: str, status: str, seconds: float) -> None:
        self.chain_duration.labels(province, kind, status).observe(seconds)

    def track_progress(self, totals: Callable[[], Mapping[str, int]]) -> None:
        """Export `popsync_progress_records` from `totals`, read at every scrape."""
        self.registry.register(ProgressCollector(totals))

    def apply(self, tally: BatchTally) -> None:
        """Apply one batch: one counter increment per (sector, province, outcome), not one per record."""
        for (sector, province, outcome), n in tally.outcomes.items():
            self.reconciled.labels(sector, province, outcome).inc(n)
        for (sector, province), lags in tally.lags.items():
            observe = self.sync_lag.labels(sector, province).observe
            for lag in lags:
                observe(lag)
        if tally.rejected:
            self._deadletter_worker.inc(tally.rejected)


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> int:
    """Serve `registry` at http://host:port/metrics from a daemon thread; returns the bound port."""
    try:
        server, _thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror}; choose another STREAMS_METRICS_PORT"
        ) from exc
    return int(server.server_port)
