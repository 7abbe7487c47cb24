"""`faust-consume`, `faust-produce`, `faust-changelog`: what faust itself costs per consumed message.

The same messages as the raw ceiling (`benchmarks.ceiling`: the benchmark workload's records, one per
message, keyed and partitioned as the connector keys them) are read by a bare faust worker in a process
of its own (`benchmarks/faust_floor.py`): iterating `take_events(1000)` only; plus one
`app.producer.send` per event; plus one table write (a changelog message) per event. Each is a ratio of
the raw ceiling measured in the same run.

These are the floor popsync's design stands on (FACTS.md: 0.2, 0.19 and 0.1 of the ceiling on a busy
machine; 0.47, 0.34 and 0.20 here, 14k, 10k and 6k events/s against a 30k/s ceiling, 2026-12-07): a
record consumed as its own faust event can never be reconciled faster than `faust-consume`, so records
travel in envelopes and results are counted from digests (README "Envelopes and digests"). Targets:
≥ 0.1, ≥ 0.1 and ≥ 0.05, half of what was measured: a drop below means faust or aiokafka became slower
per message, and the envelope size (`connectors.lgsp.ENVELOPE_RECORDS`) should be revisited.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from kafka import KafkaProducer

from benchmarks import workload
from benchmarks.bench_publish import PRODUCER_SETTINGS
from benchmarks.ceiling import raw_ceiling
from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step
from connectors.lgsp import partition_key
from streams.messages import dumps
from streams.topics import ensure_topics

__all__ = ["BENCHMARKS"]

MESSAGES = 100_000
PARTITIONS = 6
TIMEOUT_S = 600
TARGETS = {"consume": 0.1, "produce": 0.1, "changelog": 0.05}
_SCRIPT = Path(__file__).with_name("faust_floor.py")


def _prepared(ctx: BenchContext) -> tuple[str, int, Rate]:
    """(topic holding the messages, how many, the raw ceiling of the same messages), once per run."""
    if "faust.prepared" not in ctx.memo:
        bootstrap = ctx.bootstrap()
        n = ctx.size(MESSAGES)
        with step(ctx.log, f"faust: generating {n:,} records"):
            records, _ = workload.generate(ctx, n)
            messages = [(partition_key(r["record_id"], r).encode(), dumps(r)) for r in records]
        ceiling = raw_ceiling(ctx, messages, PARTITIONS)
        topic = f"popsync-bench-{uuid.uuid4().hex[:8]}.floor"
        ensure_topics(bootstrap, [topic, f"{topic}.out"], PARTITIONS)
        with step(ctx.log, f"faust: producing {n:,} messages for the floor runs"):
            producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)
            for key, value in messages:
                producer.send(topic, key=key, value=value)
            producer.flush()
            producer.close(timeout=30)
        ctx.memo["faust.prepared"] = (topic, n, ceiling)
    prepared: tuple[str, int, Rate] = ctx.memo["faust.prepared"]
    return prepared


def _floor(ctx: BenchContext, mode: str) -> BenchResult:
    topic, n, ceiling = _prepared(ctx)
    command = [sys.executable, str(_SCRIPT), mode, ctx.bootstrap(), topic, str(n)]
    with step(ctx.log, f"faust-{mode}: a bare faust worker over {n:,} messages"):
        done = subprocess.run(  # noqa: S603 - our interpreter and our script, no shell
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    # faust may draw a spinner's control codes on the same line: take the JSON from its opening brace.
    lines = [line[line.index('{"mode"') :] for line in done.stdout.splitlines() if '{"mode"' in line]
    if done.returncode != 0 or not lines:
        raise BenchmarkError(
            f"faust-{mode}: the floor worker failed (exit {done.returncode}): {done.stderr[-800:]}"
        )
    figure = json.loads(lines[-1])
    return BenchResult(
        f"faust-{mode}",
        f"bare faust worker ({mode}) vs raw Kafka path",
        Rate(f"events/s, faust take_events(1000), {mode}", int(figure["events"]), float(figure["seconds"])),
        ceiling,
        TARGETS[mode],
        {"messages": n},
    )


def consume(ctx: BenchContext) -> BenchResult:
    return _floor(ctx, "consume")


def produce(ctx: BenchContext) -> BenchResult:
    return _floor(ctx, "produce")


def changelog(ctx: BenchContext) -> BenchResult:
    return _floor(ctx, "changelog")


BENCHMARKS = {"faust-consume": consume, "faust-produce": produce, "faust-changelog": changelog}
