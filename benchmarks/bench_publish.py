"""`publish`: `LgspConnector.publish_records` against a bare kafka-python producer sending the same bytes.

The baseline is a `KafkaProducer(acks="all")` with the connector's own batching settings, sending each
record's already-serialised JSON with the same key to one topic of the same partition count. What the
ratio measures is therefore the connector's own work per record (serialising, rule 1's parse, the
repeat check, five headers, the delivery callback), not a difference in producer tuning.

Target: ratio ≥ 0.4. On this kind of machine (2 cores) the bare producer itself needs ~20 µs of Python
per message; the connector adds a parse of the same order, so it can at best reach about half of the
bare rate while sharing the GIL with the producer's I/O thread. Below 0.4 the connector's extra work
has grown past the producer's own, and a province's backlog would publish noticeably slower than Kafka
takes it.
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
TARGET = 0.4
RECORDS = 50_000
WARM_UP = 2_000  # records sent first by each side, outside the timing: connections, metadata, buffers
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
    failures: list[BaseException] = []
    for key, value in messages:
        producer.send(topic, key=key, value=value).add_errback(failures.append)
    producer.flush()
    if failures:
        raise BenchmarkError(
            f"publish: the broker refused {len(failures):,} bare messages; first: {failures[0]!r}"
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


def bare_producer_rate(ctx: BenchContext) -> Rate:
    """Messages/s of the bare producer (measured once per run; `pipeline` compares against it too)."""
    if BARE_MEMO in ctx.memo:
        rate: Rate = ctx.memo[BARE_MEMO]
        return rate
    bootstrap = ctx.bootstrap()
    warm, measured = _records(ctx)
    topic = f"popsync-bench-{uuid.uuid4().hex[:8]}.bare"
    ensure_topics(bootstrap, [topic], PARTITIONS)
    messages = [(_key(r), dumps(r)) for r in measured]
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="popsync-bench-bare", **PRODUCER_SETTINGS)
    try:
        _send_bare(producer, topic, [(_key(r), dumps(r)) for r in warm])
        with step(ctx.log, f"publish: {len(messages):,} messages by the bare producer"):
            _, seconds = timed(lambda: _send_bare(producer, topic, messages))
    finally:
        producer.close(timeout=30)
    rate = Rate("messages/s, bare KafkaProducer(acks=all)", len(messages), seconds)
    ctx.memo[BARE_MEMO] = rate
    return rate


def run(ctx: BenchContext) -> BenchResult:
    bootstrap = ctx.bootstrap()
    warm, measured = _records(ctx)
    baseline = bare_producer_rate(ctx)
    topics = TopicNames(f"popsync-bench-{uuid.uuid4().hex[:8]}")
    ensure_topics(bootstrap, topics.all(), PARTITIONS)
    with LgspConnector(bootstrap, topics, client_id="popsync-bench-lgsp") as connector:
        connector.publish_records(warm, "warm-up")
        with step(ctx.log, f"publish: {len(measured):,} records by the LGSP connector"):
            report, seconds = timed(lambda: connector.publish_records(measured, "bench"))
    if report.published + report.rejected != len(measured):
        raise BenchmarkError(f"publish: the connector handled {report.published:,} of {len(measured):,}")
    return BenchResult(
        NAME,
        "LgspConnector vs bare KafkaProducer, per record",
        Rate("records/s, LgspConnector.publish_records", len(measured), seconds),
        baseline,
        TARGET,
        {"records": len(measured), "dead_lettered": report.rejected},
    )
