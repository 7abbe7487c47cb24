"""A guard against a faust 0.15 / aiokafka 0.14 gap that loses the first records of a partition.

faust drops the records a fetch returns while a rebalance has stopped the flow, then seeks every partition
back to its committed offset. aiokafka's `seek_to_committed` leaves a partition with no committed offset
where it is, i.e. *after* the dropped records: they are never delivered, and the first commit moves past
them for good. Every partition is in that state at the start of a run, when a second worker joins while
the first records arrive (found on the e-ID events: counts short by the first ~100 events of the
partitions that moved). `rewind_uncommitted` sends such partitions back to their start instead; what is
read again is a replay, which every agent of popsync absorbs (pure decisions, keyed results, set-like
tables).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["rewind_on_assignment", "rewind_uncommitted"]

log = logging.getLogger(__name__)


def rewind_uncommitted(consumer: Any, topic: str) -> None:
    """Make faust's "seek back to committed offsets" rewind the `topic` partitions nothing was committed for.

    Such partitions go back to their earliest offset (the app's `auto_offset_reset`). Call it from every
    `on_partitions_assigned` (it runs before the recovery that ends in the seek); idempotent per consumer
    and topic.
    """
    if getattr(consumer, "_popsync_rewinds", None) is not None:
        consumer._popsync_rewinds.add(topic)
        return
    consumer._popsync_rewinds = {topic}
    seek_to_committed = consumer.seek_to_committed

    async def seek_to_committed_or_start() -> Mapping[Any, int | None]:
        committed: Mapping[Any, int | None] = await seek_to_committed()
        # 0 counts as none: aiokafka does not seek to it either (faust never commits 0). Offset 0 is the
        # start; were it deleted by retention, the consumer's `auto_offset_reset=earliest` takes over.
        for tp, offset in committed.items():
            if not offset and tp.topic in consumer._popsync_rewinds:
                try:
                    await consumer.seek(tp, 0)
                except Exception as exc:  # revoked meanwhile: the next rebalance's recovery seeks again
                    log.warning("could not rewind %s to its start: %r", tp, exc)
        return committed

    consumer.seek_to_committed = seek_to_committed_or_start


def rewind_on_assignment(app: Any, topics: Iterable[str]) -> None:
    """Install `rewind_uncommitted` for `topics` on every assignment of `app` (before its recovery)."""
    names = tuple(topics)

    async def rewind(_app: Any, /, *args: Any, **_: Any) -> None:
        for name in names:
            rewind_uncommitted(app.consumer, name)

    app.on_partitions_assigned.connect(rewind)
