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

The same was then seen on the record topics (the only worker SIGKILLed and restarted mid-run: 9 of 5,000
records never decided, the envelopes at the committed offset of two partitions; or a partition never read
again), so every agent of a worker is guarded.

`Frontier` keeps, per partition, the next offset the agent has not processed (from faust's own seeks to
the committed offsets, then from what it processes) and names the holes before a delivered batch and the
partitions that stall below their end. `read_messages` reads such offsets with a consumer of its own (no
group), so the agent absorbs them before its batch is acknowledged: nothing is committed past an offset
the agent has not processed. `GapGuard` does all of it for an agent that takes faust events in batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP
from kafka import KafkaConsumer, TopicPartition

from streams.kafka_security import KafkaSecurity
from streams.topics import MAX_MESSAGE_BYTES

__all__ = [
    "Fetched",
    "Frontier",
    "GapGuard",
    "GapReadTimeout",
    "ReadBack",
    "guard_agent",
    "read_messages",
    "reader",
    "track_seeks",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A message read back, with what an agent reads of a faust message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: float  # seconds, as faust gives it


@dataclass(frozen=True, slots=True)
class ReadBack:
    """A message read back, standing in for the faust event an agent would have had (`.message`,
    `.value`); nothing acknowledges it: the offsets after it are faust's to commit."""

    message: Fetched

    @property
    def value(self) -> bytes | None:
        return self.message.value


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


def read_messages(
    bootstrap_servers: str,
    security: KafkaSecurity,
    topic: str,
    partition: int,
    start: int,
    end: int,
    timeout_s: float = 60.0,
) -> list[Fetched]:
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
        messages: list[Fetched] = []
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise GapReadTimeout(
                    f"offsets {start}-{end - 1} of {topic}/{partition} did not come in {timeout_s} s"
                )
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if start <= record.offset < end:
                    messages.append(
                        Fetched(
                            topic,
                            partition,
                            record.offset,
                            record.key,
                            record.value,
                            list(record.headers or []),
                            record.timestamp / 1000,
                        )
                    )
        return messages
    finally:
        consumer.close()


# Reads `topic`'s partition at offsets [start, end) (`read_messages`, in a thread).
ReadMessages = Callable[[str, int, int, int], Awaitable[list[Fetched]]]
# An agent's processing of a batch of events (faust's, or read back).
Process = Callable[[Sequence[Any]], Awaitable[None]]


class GapGuard:
    """Keeps an agent over `topics` from losing what faust 0.15 skips (see the module docstring).

    `complete` puts the offsets faust skipped before a delivered batch in front of it (read back), so the
    agent processes them before the batch is acknowledged. `catch_up` (on a timer) reads back the rest of
    a partition that stalled below its end, processes it, and sends faust's consumer back to where it
    stalled, so that faust delivers and commits from there again: what it delivers below the frontier
    was processed already and is passed over (faust acknowledges it all the same). Since faust's seeks to
    the committed offsets reset the frontier, a replay after a rebalance or restart is processed again,
    as at-least-once delivery has it. Both hold `lock`, which the agent holds while it processes a
    batch, so a partition's records are decided in order.

    A partition has stalled when it has messages below its end, its frontier has not moved for `stall_s`,
    and the agent has not been at work on a batch for as long (a busy agent is not a stalled partition:
    one take of envelopes may keep it for half a minute), or has finished `stall_batches` batches since
    (the other partitions go on, this one does not); and faust has been settled for `stall_s` too (no
    rebalance, no table recovery, its flow not suspended: a recovery may take many seconds, and it is
    faust's to resume from there).
    """

    def __init__(
        self,
        app: Any,
        topics: Sequence[str],
        read: ReadMessages,
        name: str,
        *,
        stall_s: float = 5.0,
        stall_batches: int = 3,
    ) -> None:
        self.app = app
        self.name = name
        self.frontiers = {topic: Frontier(topic) for topic in topics}
        self.read = read
        self.stall_s = stall_s
        self.stall_batches = stall_batches
        self.lock = asyncio.Lock()
        self.batches = 0  # batches processed; and, per partition, how many when it last moved
        self.batches_at: dict[tuple[str, int], int] = {}
        self.busy_since: float | None = None
        self.idle_since = time.monotonic()
        self.settled_since: float | None = None  # since when faust has neither rebalanced nor recovered
        self.read_back = 0  # messages read back so far (for tests and the log)
        self.replays_skipped = 0  # messages delivered again below the frontier, not processed again
        # (topic, partition) -> the first hole faust was sent back to and has not delivered again yet
        self.unacknowledged: dict[tuple[str, int], int] = {}
        for frontier in self.frontiers.values():
            track_seeks(app, frontier)

    def forget(self, revoked: Iterable[Any]) -> None:
        """Partitions revoked from this worker (faust TopicPartitions): no longer watched here."""
        for tp in revoked:
            frontier = self.frontiers.get(tp.topic)
            if frontier is not None:
                frontier.forget([tp.partition])
                self.batches_at.pop((tp.topic, tp.partition), None)
                self.unacknowledged.pop((tp.topic, tp.partition), None)

    async def complete(
        self, events: Sequence[Any], holes: list[tuple[str, int, int, int]] | None = None
    ) -> list[Any]:
        """`events` (one delivered batch), preceded by what faust skipped before them, read back, and
        without what this agent processed already since faust last sought (what faust delivers again
        after `catch_up` sent it back). The holes read back are appended to `holes` (topic, partition,
        start, end)."""
        delivered: dict[tuple[str, int], list[int]] = {}
        for event in events:
            message = event.message
            delivered.setdefault((message.topic, message.partition), []).append(message.offset)
        missing: list[Any] = []
        floors: dict[tuple[str, int], int] = {}
        for (topic, partition), offsets in delivered.items():
            frontier = self.frontiers.get(topic)
            if frontier is None:
                continue
            floor = frontier.next.get(partition)
            sent_back = self.unacknowledged.get((topic, partition))
            if sent_back is not None and min(offsets) <= sent_back:
                del self.unacknowledged[(topic, partition)]  # faust delivers from the hole again
            if floor is not None and min(offsets) < floor:
                floors[(topic, partition)] = floor
            self.batches_at[(topic, partition)] = self.batches + 1
            for start, end in frontier.holes(partition, offsets):
                missing += await self._read_back(topic, partition, start, end, "were not delivered")
                if holes is not None:
                    holes.append((topic, partition, start, end))
        if floors:
            events = [
                e
                for e in events
                if e.message.offset >= floors.get((e.message.topic, e.message.partition), -1)
            ]
            self.replays_skipped += sum(len(o) for o in delivered.values()) - len(events)
        return [*missing, *events] if missing else list(events)

    async def process(self, events: Sequence[Any], process: Process) -> None:
        """Complete `events` and process them under the lock."""
        async with self.lock:
            self.busy_since = time.monotonic()
            holes: list[tuple[str, int, int, int]] = []
            try:
                await process(await self.complete(events, holes))
                if holes:
                    await self._acknowledge(holes)
            finally:
                self.batches += 1
                self.busy_since = None
                self.idle_since = time.monotonic()

    async def _acknowledge(self, holes: Sequence[tuple[str, int, int, int]]) -> None:
        """Send faust back to the first hole of each partition, now that its records are processed.

        faust commits a partition up to its first offset not acknowledged, and a hole it skipped is never
        acknowledged: its commits would stay there for good (its lag then only grows, and every restart
        starts there again). Sought back, faust delivers the hole and what followed it again; the agent
        passes over all of it (below the frontier) and faust acknowledges and commits it as usual. Only
        once processed: a commit past a hole must not come before its records are decided.
        """
        for topic, partition, start, _ in holes:
            key = (topic, partition)
            self.unacknowledged[key] = min(start, self.unacknowledged.get(key, start))
        for (topic, partition), start in list(self.unacknowledged.items()):
            if any(t == topic and p == partition for t, p, _, _ in holes):
                # the lowest hole faust has not delivered again yet: a later seek must not skip it
                await self.app.consumer.seek(TP(topic, partition), start)

    def stalled(self, topic: str, partition: int, end: int | None, now: float) -> bool:
        frontier = self.frontiers[topic]
        if not frontier.stalled(partition, end, self.stall_s, now):
            return False
        idle = self.busy_since is None and now - self.idle_since >= self.stall_s
        # A partition never delivered since it was assigned counts from when it was first seen quiet.
        passed = self.batches - self.batches_at.setdefault((topic, partition), self.batches)
        return idle or passed >= self.stall_batches

    def settled(self, now: float) -> bool:
        """Whether faust has been out of rebalances and recoveries, its flow running, for `stall_s`."""
        app = self.app
        flow = getattr(app, "flow_control", None)
        busy = (
            getattr(app, "rebalancing", False)
            or getattr(app, "in_recovery", False)
            or (flow is not None and not flow.is_active())
        )
        if busy:
            self.settled_since = None
            return False
        if self.settled_since is None:
            self.settled_since = now
        return now - self.settled_since >= self.stall_s

    async def catch_up(self, process: Process) -> None:
        """Read back and process the rest of every stalled partition; faust then starts there again."""
        now = time.monotonic()
        if not self.settled(now):
            return
        for topic, frontier in self.frontiers.items():
            quiet = [p for p, moved in list(frontier.moved.items()) if now - moved >= self.stall_s]
            if not quiet:
                continue
            ends = await self.app.consumer.highwaters(*(TP(topic, p) for p in quiet))
            for tp, end in ends.items():
                async with self.lock:
                    partition = tp.partition
                    if partition not in frontier.next or not self.stalled(topic, partition, end, now):
                        continue
                    start = frontier.next[partition]
                    fetched = await self._read_back(topic, partition, start, end, "stalled")
                    await process(fetched)
                    frontier.advance(partition, end)
                    self.batches_at[(topic, partition)] = self.batches
                    await self.app.consumer.seek(tp, start)

    async def _read_back(self, topic: str, partition: int, start: int, end: int, why: str) -> list[ReadBack]:
        log.warning(
            "%s: offsets %d-%d of %s/%d %s; reading them back",
            self.name,
            start,
            end - 1,
            topic,
            partition,
            why,
        )
        while True:
            try:
                fetched = await self.read(topic, partition, start, end)
                break
            except GapReadTimeout as exc:
                log.warning("%s; trying again", exc)
                await asyncio.sleep(1.0)
        self.read_back += len(fetched)
        return [ReadBack(m) for m in fetched]


def reader(bootstrap_servers: str, security: KafkaSecurity) -> ReadMessages:
    """`read_messages` against one cluster, run in a thread (kafka-python blocks)."""

    async def read(topic: str, partition: int, start: int, end: int) -> list[Fetched]:
        return await asyncio.to_thread(
            read_messages, bootstrap_servers, security, topic, partition, start, end
        )

    return read


def guard_agent(
    app: Any, topics: Sequence[str], name: str, read: ReadMessages, process: Process, *, stall_s: float = 5.0
) -> GapGuard:
    """A `GapGuard` for the agent `name` over `topics`: revocations forgotten, stalls caught up on a timer.

    The agent hands each batch to `guard.process(events, process)`.
    """
    gap_guard = GapGuard(app, topics, read, name, stall_s=stall_s)

    async def forget_revoked(_app: Any, /, *args: Any, **_: Any) -> None:
        (revoked,) = args  # the set of revoked TopicPartitions
        gap_guard.forget(revoked)

    app.on_partitions_revoked.connect(forget_revoked)

    async def catch_up() -> None:
        await gap_guard.catch_up(process)

    app.timer(stall_s, name=f"{name}-catch-up")(catch_up)
    return gap_guard
