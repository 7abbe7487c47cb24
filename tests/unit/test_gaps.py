"""The frontier of a faust stream's partitions (`streams.gaps`): holes before a batch, stalls."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest

from streams.gaps import Fetched, Frontier, GapGuard, track_seeks

pytestmark = pytest.mark.unit

TOPIC = "p.eid.events"


class _TP(NamedTuple):
    topic: str
    partition: int


def test_reading_starts_at_the_committed_offset_or_the_start() -> None:
    frontier = Frontier(TOPIC)
    frontier.seeked({_TP(TOPIC, 0): 37, _TP(TOPIC, 1): None, _TP(TOPIC, 2): 0, _TP("other", 3): 5}, now=1.0)
    assert frontier.next == {0: 37, 1: 0, 2: 0}
    assert frontier.moved == {0: 1.0, 1: 1.0, 2: 1.0}


def test_the_message_at_the_committed_offset_skipped_is_a_hole() -> None:
    # Seen: committed 37, faust delivered 38 first, then committed 39.
    frontier = Frontier(TOPIC)
    frontier.seeked({_TP(TOPIC, 3): 37})
    assert frontier.holes(3, [38, 39]) == [(37, 38)]
    assert frontier.next[3] == 40
    assert frontier.holes(3, [40, 41]) == []


def test_holes_in_the_middle_and_replays() -> None:
    frontier = Frontier(TOPIC)
    frontier.seeked({_TP(TOPIC, 0): 10})
    assert frontier.holes(0, [10, 11, 14, 15, 20]) == [(12, 14), (16, 20)]
    # A batch delivering older messages again (a replay after a seek) and new ones after them.
    assert frontier.holes(0, [15, 16, 17, 18, 19, 20, 21]) == []
    assert frontier.next[0] == 22


def test_a_partition_never_sought_starts_where_its_first_message_is() -> None:
    frontier = Frontier(TOPIC)
    assert frontier.holes(5, [7, 8]) == []
    assert frontier.next[5] == 9


def test_a_partition_stalls_when_its_end_is_ahead_and_nothing_came_for_a_while() -> None:
    frontier = Frontier(TOPIC)
    frontier.seeked({_TP(TOPIC, 2): 13}, now=100.0)
    assert not frontier.stalled(2, 72, quiet_s=5, now=104.0)  # not quiet long enough
    assert frontier.stalled(2, 72, quiet_s=5, now=105.0)
    assert not frontier.stalled(2, 13, quiet_s=5, now=200.0)  # nothing beyond it
    assert not frontier.stalled(2, None, quiet_s=5, now=200.0)
    assert not frontier.stalled(4, 72, quiet_s=5, now=200.0)  # not owned here
    frontier.holes(2, [13], now=106.0)
    assert not frontier.stalled(2, 72, quiet_s=5, now=110.0)
    frontier.advance(2, 72, now=111.0)
    assert not frontier.stalled(2, 72, quiet_s=5, now=200.0)
    frontier.forget([2])
    assert 2 not in frontier.next


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, receiver: Any) -> None:
        self.receivers.append(receiver)

    async def send(self) -> None:
        for receiver in self.receivers:
            await receiver(None, set())


class _Consumer:
    def __init__(self) -> None:
        self.ends: dict[int, int] = {}
        self.seeks: list[tuple[_TP, int]] = []

    async def seek_to_committed(self) -> dict[_TP, int | None]:
        return {_TP(TOPIC, 0): 12, _TP(TOPIC, 1): None}

    async def highwaters(self, *tps: _TP) -> dict[_TP, int]:
        return {tp: self.ends[tp.partition] for tp in tps if tp.partition in self.ends}

    async def seek(self, tp: _TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class _App:
    def __init__(self) -> None:
        self.consumer = _Consumer()
        self.on_partitions_assigned = _Signal()


def test_faust_seeks_feed_every_frontier_once_per_consumer() -> None:
    app = _App()
    first, second = Frontier(TOPIC), Frontier(TOPIC)
    track_seeks(app, first)
    track_seeks(app, second)

    async def rebalance_and_seek() -> dict[_TP, int | None]:
        await app.on_partitions_assigned.send()
        await app.on_partitions_assigned.send()  # every assignment installs; only the first wraps
        return await app.consumer.seek_to_committed()

    assert asyncio.run(rebalance_and_seek()) == {_TP(TOPIC, 0): 12, _TP(TOPIC, 1): None}
    assert first.next == second.next == {0: 12, 1: 0}


class _Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes | None = None


class _Event(NamedTuple):
    message: _Message


def _events(partition: int, *offsets: int) -> list[_Event]:
    return [_Event(_Message(TOPIC, partition, o, f"{partition}:{o}".encode())) for o in offsets]


class _Log:
    """What the guarded agent processed (partition:offset per message) and what was read back."""

    def __init__(self) -> None:
        self.processed: list[str] = []
        self.reads: list[tuple[int, int, int]] = []

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Fetched]:
        assert topic == TOPIC
        self.reads.append((partition, start, end))
        # offset start+1 holds no message (a transaction marker): passed over
        offsets = [o for o in range(start, end) if o != start + 1 or end - start < 3]
        return [Fetched(topic, partition, o, None, f"{partition}:{o}".encode(), [], 0.0) for o in offsets]

    async def process(self, events: Any) -> None:
        self.processed += [e.message.value.decode() for e in events]


def _guard(log: _Log) -> tuple[_App, GapGuard]:
    app = _App()
    guard = GapGuard(app, [TOPIC], log.read, "agent", stall_s=5.0, stall_batches=3)
    guard.settled_since = 0.0  # faust settled long ago
    asyncio.run(app.on_partitions_assigned.send())
    asyncio.run(app.consumer.seek_to_committed())  # faust's seek after the recovery: 0 → 12, 1 → start
    return app, guard


def test_what_faust_skipped_before_a_batch_is_processed_first_and_in_order() -> None:
    log = _Log()
    app, guard = _guard(log)
    asyncio.run(guard.process(_events(0, 14, 15) + _events(1, 0, 1), log.process))
    assert log.reads == [(0, 12, 14)]  # the committed offset and the next one were skipped
    assert log.processed == ["0:12", "0:13", "0:14", "0:15", "1:0", "1:1"]
    # processed: faust is sent back to the hole, to deliver, acknowledge and commit it as usual …
    assert app.consumer.seeks == [(_TP(TOPIC, 0), 12)]
    # a later batch still from before the seek (faust's queue) with a hole of its own: sent back to the
    # first hole again, not to the later one, so that faust delivers (and acknowledges) both
    asyncio.run(guard.process(_events(1, 2, 3) + _events(0, 19), log.process))
    assert log.reads[-1] == (0, 16, 19) and app.consumer.seeks[-1] == (_TP(TOPIC, 0), 12)
    assert guard.unacknowledged == {(TOPIC, 0): 12}
    asyncio.run(guard.process(_events(0, *range(12, 21)), log.process))  # … which the agent passes over
    assert log.processed[-1] == "0:20" and guard.replays_skipped == 8 and guard.unacknowledged == {}
    asyncio.run(guard.process(_events(0, 21) + _events(0, 10), log.process))  # 10: processed already
    assert log.reads == [(0, 12, 14), (0, 16, 19)]
    assert log.processed[-2:] == ["0:20", "0:21"]
    assert guard.read_back == 4 and guard.replays_skipped == 9  # 17 holds no message


def test_a_stalled_partition_is_read_back_and_faust_sent_back_to_where_it_stalled() -> None:
    log = _Log()
    app, guard = _guard(log)
    app.consumer.ends = {0: 20, 1: 2}
    guard.frontiers[TOPIC].moved = {0: 0.0, 1: 0.0}  # both sought long ago
    guard.idle_since = 0.0
    asyncio.run(guard.catch_up(log.process))
    # partition 0: offsets 12-19 were never delivered (13 holds no message); partition 1: 0-1
    assert log.reads == [(0, 12, 20), (1, 0, 2)]
    assert log.processed == [f"0:{o}" for o in range(12, 20) if o != 13] + ["1:0", "1:1"]
    assert app.consumer.seeks == [(_TP(TOPIC, 0), 12), (_TP(TOPIC, 1), 0)]
    assert guard.frontiers[TOPIC].next == {0: 20, 1: 2}
    asyncio.run(guard.catch_up(log.process))  # caught up: nothing more to read
    assert len(log.reads) == 2
    # faust delivers from where it was sent back: passed over up to the end read back, then processed
    asyncio.run(guard.process(_events(0, *range(12, 22)), log.process))
    assert log.processed[-2:] == ["0:20", "0:21"] and guard.replays_skipped == 8
    asyncio.run(app.consumer.seek_to_committed())  # a rebalance: from the committed offsets, all again
    asyncio.run(guard.process(_events(0, 12), log.process))
    assert log.processed[-1] == "0:12"


def test_a_busy_agent_is_not_a_stalled_partition() -> None:
    log = _Log()
    app, guard = _guard(log)
    app.consumer.ends = {0: 5000, 1: 5000}
    guard.frontiers[TOPIC].moved = {0: 0.0, 1: 0.0}
    guard.busy_since = 1.0  # one long take, still being decided
    asyncio.run(guard.catch_up(log.process))
    assert log.reads == [] and app.consumer.seeks == []
    guard.busy_since, guard.idle_since = None, 10**12  # it just finished a batch: not idle either
    asyncio.run(guard.catch_up(log.process))
    assert log.reads == []


def test_a_partition_left_behind_while_the_others_go_on_has_stalled() -> None:
    log = _Log()
    app, guard = _guard(log)
    app.consumer.ends = {0: 13, 1: 40}
    for _ in range(3):
        asyncio.run(guard.process(_events(0, 12), log.process))
    guard.idle_since = 10**12  # never idle: the agent keeps taking partition 0's batches
    guard.frontiers[TOPIC].moved[1] = 0.0
    asyncio.run(guard.catch_up(log.process))  # first seen quiet now: batches count from here
    assert log.reads == []
    for _ in range(3):
        asyncio.run(guard.process(_events(0, 12), log.process))  # replays of partition 0
    guard.frontiers[TOPIC].moved[1] = 0.0
    asyncio.run(guard.catch_up(log.process))
    assert log.reads == [(1, 0, 40)]
    assert app.consumer.seeks == [(_TP(TOPIC, 1), 0)]


def test_a_revoked_partition_is_no_longer_watched() -> None:
    log = _Log()
    app, guard = _guard(log)
    app.consumer.ends = {0: 20, 1: 2}
    guard.frontiers[TOPIC].moved = {0: 0.0, 1: 0.0}
    guard.idle_since = 0.0
    guard.forget([_TP(TOPIC, 0), _TP("another", 1)])
    asyncio.run(guard.catch_up(log.process))
    assert log.reads == [(1, 0, 2)]


class _Flow:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


def test_nothing_is_read_back_while_faust_rebalances_recovers_or_has_suspended_its_flow() -> None:
    log = _Log()
    app, guard = _guard(log)
    flow = app.flow_control = _Flow()  # type: ignore[attr-defined]
    app.consumer.ends = {0: 20, 1: 2}
    guard.frontiers[TOPIC].moved = {0: 0.0, 1: 0.0}
    guard.idle_since = 0.0
    for attribute in ("rebalancing", "in_recovery", None):
        if attribute is None:
            flow.active = False
        else:
            setattr(app, attribute, True)
        asyncio.run(guard.catch_up(log.process))
        assert log.reads == [] and guard.settled_since is None
        if attribute is None:
            flow.active = True
        else:
            setattr(app, attribute, False)
    asyncio.run(guard.catch_up(log.process))  # settled from now: a recovery's end is no stall yet
    assert log.reads == [] and guard.settled_since is not None
    guard.settled_since -= guard.stall_s
    asyncio.run(guard.catch_up(log.process))
    assert log.reads == [(0, 12, 20), (1, 0, 2)]
