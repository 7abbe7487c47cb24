"""Records behind a consumer group's offsets on popsync's record topics, where one message carries many.

popsync's connectors publish records in envelopes (README "Envelopes and digests"): an offset is a message
and a message holds up to 250 records, as its `popsync-envelope` header says; any other message is one
record. So a lag in offsets says little about the work waiting. `RecordTally` reads each message of a record
topic once, keeps the running count of records at every offset from the lowest one any watched group still
needs, and answers how many records lie between two offsets, exactly. Its cost is one fetch of each message
per monitor (one message per envelope of records), in the monitor's own thread; memory is one integer per
offset still needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import TopicPartition

from streams.messages import HEADER_ENVELOPE, decode_headers, int_header

__all__ = ["RecordTally", "is_record_topic", "records_in"]

_log = logging.getLogger(__name__)


def is_record_topic(topic: str) -> bool:
    """popsync's record topics: `<prefix>.records.<sector>` (`streams.topics.TopicNames.records`)."""
    return ".records." in topic


def records_in(headers: Iterable[tuple[str, bytes]] | None) -> int:
    """The records one message carries: its envelope header's count, else one (a record on its own, or a
    header no worker would read as an envelope either)."""
    return max(1, int_header(decode_headers(list(headers or ())), HEADER_ENVELOPE, 1))


class RecordTally:
    """Running record counts per offset of record-topic partitions (see the module docstring).

    `update(reader, wanted)` counts up to each partition's end; `between(tp, start, end)` is the number of
    records at offsets `[start, end)`, or None while they are not all counted (a large backlog is counted
    over several polls, `budget_s` seconds of reading each).
    """

    def __init__(self, *, budget_s: float = 2.0) -> None:
        self.budget_s = budget_s
        self._base: dict[TopicPartition, int] = {}  # the first offset counted
        self._cum: dict[TopicPartition, list[int]] = {}  # cum[i]: records at offsets [base, base + i)

    def counted_to(self, tp: TopicPartition) -> int | None:
        """The first offset not counted yet (None for a partition not tallied)."""
        base = self._base.get(tp)
        return None if base is None else base + len(self._cum[tp]) - 1

    def between(self, tp: TopicPartition, start: int, end: int) -> int | None:
        base, to = self._base.get(tp), self.counted_to(tp)
        if base is None or to is None or start < base or end > to or start > end:
            return None
        cum = self._cum[tp]
        return cum[end - base] - cum[start - base]

    def update(self, reader: Any, wanted: Mapping[TopicPartition, tuple[int, int]]) -> None:
        """Count what `wanted` needs: per partition, from the lowest offset a group committed to its end.

        `reader` is a kafka-python consumer without a group (assigned and sought here). Partitions no
        longer wanted are forgotten; a partition whose lowest offset went below what was counted (a new
        group, a rewind) is counted again from there; what no group needs any more is dropped.
        """
        for tp in [tp for tp in self._base if tp not in wanted]:
            del self._base[tp], self._cum[tp]
        todo: dict[TopicPartition, int] = {}
        for tp, (low, end) in wanted.items():
            base = self._base.get(tp)
            if base is None or low < base:
                self._base[tp], self._cum[tp] = low, [0]
            elif low > base:  # nobody needs the offsets before `low` any more
                cum = self._cum[tp]
                cut = min(low - base, len(cum) - 1)
                self._cum[tp] = cum[cut:]
                self._base[tp] = base + cut
                if low > self._base[tp]:  # beyond what was counted: start afresh there
                    self._base[tp], self._cum[tp] = low, [0]
            to = self.counted_to(tp)
            if to is not None and to < end:
                todo[tp] = end
        if not todo:
            return
        reader.assign(list(todo))
        for tp in todo:
            counted = self.counted_to(tp)
            assert counted is not None
            reader.seek(tp, counted)
        deadline = time.monotonic() + self.budget_s
        while todo and time.monotonic() < deadline:
            for tp, messages in reader.poll(timeout_ms=200).items():
                if tp not in todo:
                    continue
                for message in messages:
                    self._add(tp, message.offset, records_in(message.headers), todo[tp])
            for tp in list(todo):
                # Offsets without a message (transaction markers, compacted away) count no record.
                self._fill(tp, min(reader.position(tp), todo[tp]))
                to = self.counted_to(tp)
                if to is not None and to >= todo[tp]:
                    del todo[tp]
        if todo:
            _log.debug("records of %d partitions not all counted yet; more at the next poll", len(todo))

    def _fill(self, tp: TopicPartition, upto: int) -> None:
        """Offsets below `upto` not counted yet hold no record."""
        cum = self._cum[tp]
        to = self._base[tp] + len(cum) - 1
        if upto > to:
            cum.extend([cum[-1]] * (upto - to))

    def _add(self, tp: TopicPartition, offset: int, records: int, end: int) -> None:
        to = self.counted_to(tp)
        if to is None or offset < to or offset >= end:
            return  # counted already (a fetch that started earlier), or beyond what is wanted now
        self._fill(tp, offset)
        cum = self._cum[tp]
        cum.append(cum[-1] + records)
