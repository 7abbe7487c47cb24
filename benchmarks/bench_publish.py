"""`publish`: `LgspConnector.publish_records` against a bare kafka-python producer sending the same bytes.

The baseline is a `KafkaProducer(acks="all")` with the connector's own batching settings, sending each
record's already-serialised JSON with the same key to one topic of the same partition count, and
checking its futures after the flush. What the ratio measures is therefore the connector's own work per
record (serialising, rule 1's parse, the repeat check, five headers, a delivery callback per message),
not a difference in producer tuning. Each side runs `ROUNDS` times, alternating, on a fresh producer
warmed up first; each keeps its best round (the machine is shared, and noise only ever slows a round).

Target: ratio ≥ 0.3. A bare send costs ~40–60 µs of Python on the 2-core machine. The connector must
parse every line before publishing it (rule 1 is decided at the source, so a bad line goes to the
dead-letter topic instead of the sector topic), and that parse costs about as much as a send (`rules`);
the headers and the per-message callback add about half a send more. About three sends' worth per record
is the budget, so ≥ 0.3. Below it the connector does per-record work out of proportion, and a province's
backlog would publish slower than the broker can take it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer

from benchmarks import workload
from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step, timed
from connectors.lgsp import LgspConnector
from streams.messages import dumps
from streams.topics import TopicNames, ensure_topics

__all__ = ["TARGET", "bare_producer_rate", "run"]

NAME = "publish"
TARGET = 0.3
RECORDS = 50_000
ROUNDS = 2
WARM_UP = 2_000  # records sent first by each producer, outside the timing: connections, metadata, buffers
PARTITIONS = 6
# The connector's producer settings (connectors/lgsp.py), so that the baseline differs only in what it skips.
PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 10,
    "batch_size": 512 * 1024,
    "max_in_flight_requests_per_connection": 5,
}
BARE_MEMO = "publish.bare_producer"


def _key(record: dict[str, Any]) -> bytes:
    """The connector's partition key: the trimmed personal ID, else the record ID."""
    pid = record.get("personal_id")
    return (pid.strip() if isinstance(pid, str) and pid.strip() else f"record:{record['record_id']}").encode()


def _send_bare(producer: KafkaProducer, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
    """Send and flush; then fail if the broker refused any message."""
    futures = [producer.send(topic, key=key, value=value) for key, value in messages]
    producer.flush()
    failed = [f for f in futures if f.failed()]
    if failed:
        raise BenchmarkError(
            f"publish: the broker refused {len(failed):,} bare messages; first: {failed[0].exception!r}"
        )


def _records(ctx: BenchContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(warm-up records, measured records), generated once per run and shared by both sides.

    The warm-up records are spread over the whole workload, so that they reach every topic and
    partition the measured ones do (a fresh topic's first sends wait for its leader and metadata).
    """
    if "publish.records" not in ctx.memo:
        n = ctx.size(RECORDS)
        with step(ctx.log, f"publish: generating {n + WARM_UP:,} records"):
            records, _ = workload.generate(ctx, n + WARM_UP)
        every = len(records) // WARM_UP
        warm = records[::every][:WARM_UP]
        picked = {id(r) for r in warm}
        ctx.memo["publish.records"] = (warm, [r for r in records if id(r) not in picked])
    warm, measured = ctx.memo["publish.records"]
    return warm, measured


class _Bare:
    """The baseline side: a bare producer per round, sending pre-serialised records to one topic."""

    def __init__(self, ctx: BenchContext) -> None:
        self.bootstrap = ctx.bootstrap()
        warm, measured = _records(ctx)
        self.topic = f"popsync-bench-{uuid.uuid4().hex[:8]}.bare"
        ensure_topics(self.bootstrap, [self.topic], PARTITIONS)
        self.warm = [(_key(r), dumps(r)) for r in warm]
        self.messages = [(_key(r), dumps(r)) for r in measured]

    def round(self) -> float:
        """Seconds to send and flush every measured message, on a fresh, warmed-up producer."""
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, client_id="popsync-bench-bare", **PRODUCER_SETTINGS
        )
        try:
            _send_bare(producer, self.topic, self.warm)
            _, seconds = timed(lambda: _send_bare(producer, self.topic, self.messages))
        finally:
            producer.close(timeout=30)
        return seconds

    def rate(self, seconds: float) -> Rate:
        return Rate("messages/s, bare KafkaProducer(acks=all)", len(self.messages), seconds)


def bare_producer_rate(ctx: BenchContext) -> Rate:
    """Messages/s of the bare producer: the one `publish` measured, else measured now (for `pipeline`)."""
    if BARE_MEMO not in ctx.memo:
        bare = _Bare(ctx)
        with step(ctx.log, f"publish: {ROUNDS} rounds of {len(bare.messages):,} messages, bare producer"):
            ctx.memo[BARE_MEMO] = bare.rate(min(bare.round() for _ in range(ROUNDS)))
    rate: Rate = ctx.memo[BARE_MEMO]
    return rate


def _connector_round(bootstrap: str, topics: TopicNames, warm: list[Any], measured: list[Any]) -> float:
    """Seconds for a fresh, warmed-up connector to publish (and have confirmed) every measured record."""
    with LgspConnector(bootstrap, topics, client_id="popsync-bench-lgsp") as connector:
        connector.publish_records(warm, "warm-up")
        report, seconds = timed(lambda: connector.publish_records(measured, "bench"))
    if report.published + report.rejected != len(measured):
        raise BenchmarkError(f"publish: the connector handled {report.published:,} of {len(measured):,}")
    return seconds


def run(ctx: BenchContext) -> BenchResult:
    bootstrap = ctx.bootstrap()
    warm, measured = _records(ctx)
    bare = _Bare(ctx)
    topics = TopicNames(f"popsync-bench-{uuid.uuid4().hex[:8]}")
    ensure_topics(bootstrap, topics.all(), PARTITIONS)
    best_bare = best_connector = float("inf")
    with step(ctx.log, f"publish: {ROUNDS} rounds of {len(measured):,} records, bare producer and connector"):
        for _ in range(ROUNDS):
            best_bare = min(best_bare, bare.round())
            best_connector = min(best_connector, _connector_round(bootstrap, topics, warm, measured))
    baseline = bare.rate(best_bare)
    ctx.memo[BARE_MEMO] = baseline
    return BenchResult(
        NAME,
        "LgspConnector vs bare KafkaProducer",
        Rate("records/s, LgspConnector.publish_records", len(measured), best_connector),
        baseline,
        TARGET,
        {"records": len(measured), "rounds": ROUNDS},
    )
