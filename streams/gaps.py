"""Messages a faust 0.15 stream never delivered around a rebalance: found by offset, read back directly.

faust drains a fetch with `wait_first(deliver(message), suspend_flow.wait())` and marks the offset read
either way, so a message fetched while a rebalance has suspended the flow is never delivered. Two outcomes
were seen on the e-ID events (a worker killed and restarted while events arrive,
tests/integration/test_eid.py), each losing whole envelopes:

- a hole: the message at the committed offset is skipped and the next one delivered; faust then commits
  past both (it counts the acked offset right after the committed one as contiguous), and later holes are
  committed as "gaps" as if acked;
- a stall: every message of a partition fetched during the recovery is skipped; nothing is delivered or
  committed until the next rebalance.

`Frontier` keeps, per partition, the next offset the agent has not processed (from faust's own seeks to
the committed offsets, then from what it processes) and names the holes before a delivered batch and the
partitions that stall below their end. `read_range` reads such offsets with a consumer of its own (no
group), so the agent absorbs them before its batch is acknowledged: nothing is committed past an offset
the agent has not processed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streams.kafka_security import KafkaSecurity
from streams.topics import MAX_MESSAGE_BYTES

__all__ = ["Frontier", "GapReadTimeout", "Raw", "read_range", "track_seeks"]

log = logging.getLogger(__name__)

# (key, value, headers) of a message read back.
Raw = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


class GapReadTimeout(TimeoutError):
    """The broker did not return the offsets in time (the caller tries again)."""


@dataclass(eq=False)  # identity: two frontiers of one topic are two agents' own
class Frontier:
    """Per partition of `topic`: the next offset not processed yet, and when it last moved."""

    topic: str
    next: dict[int, int] = field(default_factory=dict)
    moved: dict[int, float] = field(default_factory=dict)  # time.monotonic() of the last move or seek

    def seeked(self, committed: Mapping[Any, int | None], now: float | None = None) -> None:
        """faust sought its partitions to `committed` (topic-partition → offset): reading starts there.

        No offset (nothing committed) is the start: `streams.rewind` sends such partitions there.
        """
        now = time.monotonic() if now is None else now
        for tp, offset in committed.items():
            if tp.topic == self.topic:
                self.next[tp.partition] = offset or 0
                self.moved[tp.partition] = now

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.next.pop(partition, None)
            self.moved.pop(partition, None)

    def holes(
        self, partition: int, offsets: Sequence[int], now: float | None = None
    ) -> list[tuple[int, int]]:
        """The offset ranges `[start, end)` missing before `offsets` (one partition's messages of a batch,
        as delivered); the frontier moves past them. Offsets below it are replays."""
        start = self.next.get(partition)
        missing: list[tuple[int, int]] = []
        for offset in offsets:
            if start is not None and offset > start:
                missing.append((start, offset))
            if start is None or offset >= start:
                start = offset + 1
        if start is not None and start != self.next.get(partition):
            self.next[partition] = start
            self.moved[partition] = time.monotonic() if now is None else now
        return missing

    def advance(self, partition: int, to: int, now: float | None = None) -> None:
        """Everything below `to` was processed (read back after a stall)."""
        if to > self.next.get(partition, -1):
            self.next[partition] = to
            self.moved[partition] = time.monotonic() if now is None else now

    def stalled(self, partition: int, end: int | None, quiet_s: float, now: float | None = None) -> bool:
        """Whether `partition` has messages below `end` (its high watermark) that have not come for
        `quiet_s` seconds."""
        start, moved = self.next.get(partition), self.moved.get(partition)
        if start is None or moved is None or end is None or end <= start:
            return False
        return (time.monotonic() if now is None else now) - moved >= quiet_s


def track_seeks(app: Any, frontier: Frontier) -> None:
    """Feed `frontier` with the offsets faust seeks `app`'s consumer to after every recovery."""

    async def install(_app: Any, /, *args: Any, **_: Any) -> None:
        consumer = app.consumer
        frontiers: list[Frontier] | None = getattr(consumer, "_popsync_frontiers", None)
        if frontiers is not None:
            if frontier not in frontiers:
                frontiers.append(frontier)
            return
        frontiers = consumer._popsync_frontiers = [frontier]
        seek_to_committed = consumer.seek_to_committed

        async def seek_and_track() -> Mapping[Any, int | None]:
            committed: Mapping[Any, int | None] = await seek_to_committed()
            for each in frontiers:
                each.seeked(committed)
            return committed

        consumer.seek_to_committed = seek_and_track

    app.on_partitions_assigned.connect(install)


def read_range(
    bootstrap_servers: str,
    security: KafkaSecurity,
    topic: str,
    partition: int,
    start: int,
    end: int,
    timeout_s: float = 60.0,
) -> list[Raw]:
    """The messages of `topic`/`partition` at offsets `[start, end)`, read without a consumer group.

    Blocking (kafka-python): call it in a thread. Offsets without a message (a transaction marker of
    another producer) are passed over. `GapReadTimeout` when they have not all come within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id="popsync-gaps",
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES + 1024,
        fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
        **security.kafka_python_config(),
    )
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        messages: list[Raw] = []
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise GapReadTimeout(
                    f"offsets {start}-{end - 1} of {topic}/{partition} did not come in {timeout_s} s"
                )
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if start <= record.offset < end:
                    messages.append((record.key, record.value, list(record.headers or [])))
        return messages
    finally:
        consumer.close()
