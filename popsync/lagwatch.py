"""Poll any Kafka cluster for consumer groups' offsets, judge them (`popsync.lag`), export them to Prometheus.

Each poll reads the groups (`list_groups`, unless named), their committed offsets (`list_group_offsets`),
who holds which partition (`describe_groups`) and the log-end offsets (`KafkaConsumer.end_offsets`). The
metric names are a contract with alert rules and dashboards:

    popsync_consumer_lag_offsets{group,topic,partition}
    popsync_consumer_lag_records{group,topic,partition}          (record topics; an envelope: its records)
    popsync_consumer_lag_seconds{group,topic,partition}          (NaN until it can be estimated)
    popsync_consumer_status{group,topic,partition,status}        (1 for the current status, 0 for the others)
    popsync_consumer_group_status{group,status}
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from popsync.exceptions import PopsyncError
from popsync.lag import EndOffsetTable, PartitionLag, PartitionWindow, Status, group_statuses
from popsync.lag_records import RecordTally, is_record_topic
from streams.kafka_security import get_kafka_security
from streams.topics import MAX_MESSAGE_BYTES

__all__ = ["LagMonitor", "LagMonitorError"]

_log = logging.getLogger(__name__)


class LagMonitorError(PopsyncError):
    """The cluster could not be polled: no broker answers, or a request failed; the message says which."""


class _Owners:
    """Which partitions a live member of each group is assigned (and so, presumably, keeps committing)."""

    def __init__(self, descriptions: dict[str, dict[str, Any]]) -> None:
        self.owned: dict[str, set[tuple[str, int]]] = {}
        self.everything: set[str] = set()  # groups with members whose assignment could not be read
        for group, described in descriptions.items():
            if described.get("error"):
                continue  # unknown (e.g. a KIP-848 group): only moving offsets count as commits
            owned = self.owned.setdefault(group, set())
            for member in described.get("members") or ():
                assignment = member.get("member_assignment")
                if isinstance(assignment, dict):
                    for topic in assignment.get("assigned_partitions") or ():
                        owned.update((topic["topic"], p) for p in topic["partitions"])
                elif assignment:
                    self.everything.add(group)

    def own(self, group: str, topic: str, partition: int) -> bool:
        return group in self.everything or (topic, partition) in self.owned.get(group, ())


class _LagCollector(Collector):
    """Builds the four metric families from the monitor's latest snapshot at each scrape."""

    def __init__(self, monitor: LagMonitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterator[Metric]:
        rows = self._monitor.snapshot()
        keys = ["group", "topic", "partition"]
        lag = GaugeMetricFamily("popsync_consumer_lag_offsets", "Messages behind the log end", labels=keys)
        records = GaugeMetricFamily(
            "popsync_consumer_lag_records",
            "Records behind the log end on a record topic (an envelope counts the records it carries)",
            labels=keys,
        )
        seconds = GaugeMetricFamily(
            "popsync_consumer_lag_seconds", "Estimated seconds behind the log end", labels=keys
        )
        status = GaugeMetricFamily(
            "popsync_consumer_status", "Burrow status of a partition (1 = current)", labels=[*keys, "status"]
        )
        group_status = GaugeMetricFamily(
            "popsync_consumer_group_status", "Worst partition status of a group", labels=["group", "status"]
        )
        for row in rows:
            labels = [row.group, row.topic, str(row.partition)]
            lag.add_metric(labels, row.lag)
            if row.records is not None:
                records.add_metric(labels, row.records)
            seconds.add_metric(labels, math.nan if row.seconds_behind is None else row.seconds_behind)
            for s in Status:
                status.add_metric([*labels, s.value], 1.0 if row.status is s else 0.0)
        for group, current in group_statuses(rows).items():
            for s in Status:
                group_status.add_metric([group, s.value], 1.0 if current is s else 0.0)
        yield from (lag, records, seconds, status, group_status)


class LagMonitor:
    """Consumer lag and Burrow status of the chosen groups, polled every `interval_s` or on demand.

    Groups: those named in `groups`, plus every group on the cluster whose name starts with `group_prefix`;
    every consumer group on the cluster when neither is given. `window` is the number of commits Burrow's
    rules look at; a partition nobody commits for longer than `(window - 1) * interval_s` is STOP.
    `admin` and `consumer` are kafka-python clients to use instead of opening new ones (tests use fakes).
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        *,
        groups: Iterable[str] | None = None,
        group_prefix: str | None = None,
        window: int = 10,
        interval_s: float = 2.0,
        table_size: int = 120,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        admin: Any = None,
        consumer: Any = None,
        reader: Any = None,
    ) -> None:
        if window < 2:
            raise ValueError(f"window must hold at least 2 commits, not {window}")
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.bootstrap_servers = bootstrap_servers
        self.groups = sorted(set(groups or ()))
        self.group_prefix = group_prefix
        self.window, self.interval_s, self.table_size = window, interval_s, table_size
        self.timeout_ms = int(timeout_s * 1000)
        self._clock = clock
        self.watched: list[str] = []  # groups the last poll looked at
        self.listed: list[str] = []  # consumer groups the cluster listed at the last poll
        self.last_error: str | None = None
        self._windows: dict[tuple[str, str, int], PartitionWindow] = {}
        self._tables: dict[TopicPartition, EndOffsetTable] = {}
        self._snapshot: list[PartitionLag] = []
        self._admin, self._consumer = admin, consumer
        # Reads record topics to count the records behind each offset (`popsync.lag_records`); opened with
        # the other clients unless those were given (tests) without one.
        self._reader = reader
        self._count_records = reader is not None or (admin is None and consumer is None)
        self.tally = RecordTally()
        self._lock = threading.Lock()  # guards the snapshot
        self._polling = threading.Lock()  # one poll at a time: kafka-python clients are not shared
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.registry = CollectorRegistry()
        self.registry.register(_LagCollector(self))

    @property
    def stop_after(self) -> float:
        """The least silence judged STOP: how long a full window takes at one counted commit per poll."""
        return (self.window - 1) * self.interval_s

    def snapshot(self) -> list[PartitionLag]:
        """The partitions as judged by the last poll, by group, topic and partition."""
        with self._lock:
            return list(self._snapshot)

    def poll_once(self) -> list[PartitionLag]:
        """Poll the cluster once, judge every partition of the watched groups, and return the snapshot."""
        with self._polling:
            try:
                rows = self._poll()
            except KafkaError as exc:
                self.last_error = f"polling {self.bootstrap_servers} failed: {exc}"
                raise LagMonitorError(self.last_error) from exc
            self.last_error = None
            with self._lock:
                self._snapshot = rows
            return rows

    def start(self) -> None:
        """Poll every `interval_s` in a daemon thread until `stop()`; failed polls are logged and retried."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="popsync-lag-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the polling thread (if any) and close the Kafka clients."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        """Close the Kafka clients; the next poll opens new ones."""
        with self._polling:
            for client in (self._admin, self._consumer, self._reader):
                if client is not None:
                    client.close()
            self._admin = self._consumer = self._reader = None

    def __enter__(self) -> LagMonitor:
        return self

    def __exit__(self, *exc: object) -> None:  # stops the thread and closes the clients
        self.stop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except LagMonitorError as exc:
                _log.warning("%s", exc)
            except Exception:  # the thread must outlive one bad poll; the traceback goes to the log
                _log.exception("lag poll of %s failed", self.bootstrap_servers)
            self._stopping.wait(max(self.interval_s - (time.monotonic() - started), 0.0))

    def _clients(self) -> tuple[Any, Any]:
        if self._admin is None or self._consumer is None:
            common: dict[str, Any] = {
                "bootstrap_servers": self.bootstrap_servers,
                "client_id": "popsync-lag",
                "bootstrap_timeout_ms": self.timeout_ms,
                "request_timeout_ms": self.timeout_ms,
                # SASL/TLS from POPSYNC_KAFKA_*, like every other client of popsync
                **get_kafka_security().kafka_python_config(),
            }
            try:
                self._admin = self._admin or KafkaAdminClient(**common)
                self._consumer = self._consumer or KafkaConsumer(enable_auto_commit=False, **common)
                if self._count_records and self._reader is None:
                    self._reader = KafkaConsumer(
                        enable_auto_commit=False,
                        max_partition_fetch_bytes=MAX_MESSAGE_BYTES + 1024,
                        fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
                        **common,
                    )
            except KafkaError as exc:
                raise LagMonitorError(
                    f"no Kafka broker answers at {self.bootstrap_servers} ({exc}); start one "
                    "(`popsync kafka up`) or pass the right --bootstrap-servers / POPSYNC_BOOTSTRAP_SERVERS"
                ) from exc
        return self._admin, self._consumer

    def _count(
        self, committed: dict[str, dict[TopicPartition, int]], ends: dict[TopicPartition, int]
    ) -> None:
        """Count the records behind the watched groups' offsets on record topics (`popsync.lag_records`)."""
        if self._reader is None:
            return
        lowest: dict[TopicPartition, int] = {}
        for offsets in committed.values():
            for tp, offset in offsets.items():
                if tp in ends and is_record_topic(tp.topic):
                    lowest[tp] = min(offset, lowest.get(tp, offset), ends[tp])
        try:
            self.tally.update(self._reader, {tp: (low, ends[tp]) for tp, low in lowest.items()})
        except KafkaError as exc:  # the offsets are judged all the same; the records wait for the next poll
            _log.warning("counting records behind the offsets: %s", exc)

    def _select_groups(self, admin: Any) -> list[str]:
        chosen = set(self.groups)
        if not self.groups or self.group_prefix is not None:
            self.listed = sorted(
                g["group_id"]
                for g in admin.list_groups()
                # share groups (KIP-932) and Connect's worker groups commit no consumer offsets
                if g.get("group_type") != "share" and g.get("protocol_type") != "connect"
            )
            chosen.update(g for g in self.listed if g.startswith(self.group_prefix or ""))
        return sorted(chosen)

    def _committed(self, admin: Any, groups: list[str]) -> dict[str, dict[TopicPartition, int]]:
        """Committed offsets by group; a group that fails alone is left out (and logged), not the poll."""
        try:
            fetched = admin.list_group_offsets({g: None for g in groups})
        except KafkaError as exc:
            _log.debug("fetching offsets of %d groups at once failed (%s); one by one", len(groups), exc)
            fetched = {}
            for group in groups:
                try:
                    fetched.update(admin.list_group_offsets({group: None}))
                except KafkaError as one:
                    _log.warning("committed offsets of group %s: %s", group, one)
        return {
            group: {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            for group, offsets in fetched.items()
        }

    def _end_offsets(self, consumer: Any, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Log-end offsets of the partitions that still exist (groups keep offsets of deleted topics)."""
        topics = consumer.topics()
        existing = [
            tp
            for tp in partitions
            if tp.topic in topics and tp.partition in consumer.partitions_for_topic(tp.topic)
        ]
        return dict(consumer.end_offsets(existing, timeout_ms=self.timeout_ms)) if existing else {}

    def _poll(self) -> list[PartitionLag]:
        admin, consumer = self._clients()
        self.watched = self._select_groups(admin)
        committed = self._committed(admin, self.watched) if self.watched else {}
        busy = [g for g, offsets in committed.items() if offsets]
        try:
            owners = _Owners(admin.describe_groups(busy) if busy else {})
        except KafkaError as exc:  # then only moving offsets count as commits
            _log.warning("describing groups %s: %s", ", ".join(busy), exc)
            owners = _Owners({})
        ends = self._end_offsets(consumer, {tp for offsets in committed.values() for tp in offsets})
        now = self._clock()
        for tp, end in ends.items():
            self._tables.setdefault(tp, EndOffsetTable(self.table_size)).add(end, now)
        self._tables = {tp: table for tp, table in self._tables.items() if tp in ends}
        self._count(committed, ends)
        rows: list[PartitionLag] = []
        for group, offsets in committed.items():
            for tp, offset in offsets.items():
                if tp not in ends:
                    continue
                key = (group, tp.topic, tp.partition)
                window = self._windows.setdefault(key, PartitionWindow(self.window))
                window.observe(now, offset, ends[tp], committing=owners.own(*key))
                rows.append(
                    PartitionLag(
                        *key,
                        committed=offset,
                        end=ends[tp],
                        lag=max(ends[tp] - offset, 0),
                        seconds_behind=self._tables[tp].seconds_behind(offset, now),
                        status=window.status(now, stop_after=self.stop_after),
                        records=self.tally.between(tp, offset, ends[tp]) if offset <= ends[tp] else None,
                    )
                )
        # Forget what is gone; keep the history of a watched group whose offsets could not be read this time.
        seen = {(r.group, r.topic, r.partition) for r in rows}
        self._windows = {
            k: w
            for k, w in self._windows.items()
            if k in seen or (k[0] not in committed and k[0] in self.watched)
        }
        return sorted(rows, key=lambda r: (r.group, r.topic, r.partition))
