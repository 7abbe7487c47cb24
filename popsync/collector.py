"""Reads the results, dead-letter and progress topics of a run and keeps one outcome per record."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from schemas.outcomes import is_synced
from streams.chain_steps import apply_step
from streams.kafka_security import KafkaSecurity, get_kafka_security
from streams.messages import loads, result_key
from streams.topics import TopicNames

__all__ = ["Collector", "RecordResult"]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """A record's latest outcome, and where a corrected re-publication superseded it, its first one."""

    outcome: str
    fields: tuple[str, ...]
    lag_ms: int
    version: int = 1
    decided_ms: int = 0
    corrected: tuple[str, ...] = ()  # fields the NPD corrected (`corrected` outcome)
    legacy_id: bool = False  # the record carried a 9-digit legacy ID
    first_outcome: str | None = None  # the outcome of version 1, once a later version superseded it
    first_decided_ms: int = 0
    event: str = ""  # civil status: birth, death or marriage
    chain: str = ""  # made by a linked-procedure chain (a child's card), not published by an LGSP
    # `matching: fuzzy`: the name's score and explanation (schemas.name_match), no name text in it.
    name_match: Mapping[str, Any] | None = None


class Collector:
    """A background reader that deduplicates by record: replays after a restart land on the same key.

    By default it reads the results from the outcome digests (`<prefix>.outcomes`, many results a message)
    rather than `<prefix>.results` (one a message): the same facts at a fraction of the client's
    per-message cost. `per_record=True` reads `<prefix>.results` instead, the public topic any deployment
    (and any other producer of results) writes: what the dashboard watches.

    `results` maps "sector|province|record_id" to the latest result; `rejected` maps a dead-letter origin
    (file:line or topic:partition:offset) to its reason. Both are exact however often Kafka redelivers.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: TopicNames,
        *,
        security: KafkaSecurity | None = None,
        per_record: bool = False,
    ) -> None:
        """`security` (SASL/TLS) defaults to the POPSYNC_KAFKA_* settings of this process."""
        self.topics = topics
        self._results_topic = topics.results if per_record else topics.outcomes
        self.results: dict[str, RecordResult] = {}
        self.rejected: dict[str, dict[str, Any]] = {}
        self.progress: dict[int, tuple[int, dict[str, int]]] = {}  # results partition -> (ts, counts)
        self.chains: dict[str, dict[str, Any]] = {}  # chain ID -> state (streams.chain_steps)
        self.chain_progress: dict[int, tuple[int, dict[str, int]]] = {}
        self.chain_records = 0  # results of records a chain made (not published by a connector)
        self.chains_due = 0  # synced births and deaths: each starts a chain
        self.per_source: Counter[tuple[str, str]] = Counter()
        # Records whose first outcome was unsynced, per source: the correction tasks they caused.
        self.unsynced_first: Counter[tuple[str, str]] = Counter()
        self.synced_per_source: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="popsync-collector",
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            **(security if security is not None else get_kafka_security()).kafka_python_config(),
        )
        self._thread = threading.Thread(target=self._run, name="popsync-collector", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Collector:
        wanted = (
            self._results_topic,
            self.topics.deadletter,
            self.topics.progress,
            self.topics.chain_steps,
            self.topics.chain_progress,
        )
        partitions = [
            TopicPartition(t, p) for t in wanted for p in sorted(self._consumer.partitions_for_topic(t) or ())
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self._consumer.poll(timeout_ms=200, max_records=20_000)
                for tp, messages in batch.items():
                    self._apply(tp, messages)
        except BaseException as exc:  # reported by the waiting thread, not lost in this one
            self.error = exc

    def _apply(self, tp: TopicPartition, messages: Iterable[Any]) -> None:
        with self.lock:
            if tp.topic == self.topics.results:
                for m in messages:
                    self._result(m.key.decode(), loads(m.value))
            elif tp.topic == self.topics.outcomes:
                for m in messages:
                    for body in loads(m.value)["results"]:
                        self._result(result_key(body["sector"], body["province"], body["record_id"]), body)
            elif tp.topic == self.topics.deadletter:
                for m in messages:
                    self.rejected[m.key.decode()] = loads(m.value)
            elif tp.topic == self.topics.chain_steps:
                for m in messages:
                    key = m.key.decode()
                    self.chains[key] = apply_step(self.chains.get(key), loads(m.value))
            else:
                target = self.progress if tp.topic == self.topics.progress else self.chain_progress
                for m in messages:
                    body = loads(m.value)
                    for part, counts in body.get("partitions", {}).items():
                        previous = target.get(int(part))
                        if previous is None or previous[0] <= body["ts_ms"]:
                            target[int(part)] = (body["ts_ms"], counts)

    def _result(self, key: str, body: dict[str, Any]) -> None:
        previous = self.results.get(key)
        version = int(body.get("version", 1))
        if previous is not None and version < previous.version:
            return  # a replay of a version a re-publication already superseded
        source = (body["sector"], body["province"])
        if previous is None:
            self.per_source[source] += 1
            self.unsynced_first[source] += str(body["outcome"]).startswith("unsynced/")
            self.chain_records += bool(body.get("chain"))
            self.chains_due += body.get("event") in ("birth", "death") and is_synced(body["outcome"])
        elif is_synced(previous.outcome):
            self.synced_per_source[source] -= 1
        if is_synced(body["outcome"]):
            self.synced_per_source[source] += 1
        decided = int(body["decided_ms"])
        first, first_ms = None, 0
        if previous is not None and version > 1:
            if previous.version == 1:
                first, first_ms = previous.outcome, previous.decided_ms
            else:
                first, first_ms = previous.first_outcome, previous.first_decided_ms
        self.results[key] = RecordResult(
            body["outcome"],
            tuple(body.get("fields") or ()),
            decided - int(body["published_ms"]),
            version,
            decided,
            tuple(body.get("corrected") or ()),
            bool(body.get("legacy_id")),
            first,
            first_ms,
            # What a record is stays what its first result said (a later version may not repeat it).
            str(body.get("event") or (previous.event if previous else "")),
            str(body.get("chain") or (previous.chain if previous else "")),
            body.get("name_match"),
        )

    def stream_counts(self) -> Counter[str]:
        """Sum of the latest progress snapshot of every results partition (the workers' own counts)."""
        return self._summed(self.progress)

    def chain_counts(self) -> Counter[str]:
        """Sum of the latest chain snapshot of every partition (the workers' own chain counts)."""
        return self._summed(self.chain_progress)

    def _summed(self, snapshots: dict[int, tuple[int, dict[str, int]]]) -> Counter[str]:
        with self.lock:
            total: Counter[str] = Counter()
            for _, counts in snapshots.values():
                total.update(counts)
            return total

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the results reader failed: {self.error!r}") from self.error
