"""The frontier of a faust stream's partitions (`streams.gaps`): holes before a batch, stalls."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest

from streams.gaps import Frontier, track_seeks

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
    async def seek_to_committed(self) -> dict[_TP, int | None]:
        return {_TP(TOPIC, 0): 12, _TP(TOPIC, 1): None}


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
