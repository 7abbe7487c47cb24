"""Exact counts per (sector, province, outcome), kept idempotent under replays, and progress snapshots."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import faust

from streams.messages import dumps, now_ms
from streams.stats import WorkerStats
from streams.topics import TopicNames

__all__ = ["OutcomeCounter"]

log = logging.getLogger(__name__)


class OutcomeCounter:
    """Counts results by (sector, province, outcome), once per record however often a result arrives.

    An increment-only counter double-counts what is replayed after a crash or rebalance (FACTS.md: 24,786
    for 20,000). Here the table holds each record's latest outcome (a *set*, which replays repeat
    harmlessly) and the counts are derived from it: kept incrementally while running, rebuilt from the
    table after every recovery. A corrected re-publication of a record carries a higher version: its
    outcome replaces the earlier one, and a late replay of an older version changes nothing.
    Each value also holds its partition so counts are reported per partition
    and a reader can sum the latest snapshot of every partition.
    """

    def __init__(self, app: faust.App, topics: TopicNames, outcomes: Any, stats: WorkerStats, worker_id: str):
        self.app = app
        self.topics = topics
        self.outcomes = outcomes  # faust Table: result key -> [label, partition, version]
        self.stats = stats
        self.worker_id = worker_id
        self.counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        # The results partitions this worker owns, refreshed on the event loop (snapshot, recovery,
        # revocation) so the metrics thread can read it without touching faust's assignor.
        self.owned: frozenset[int] = frozenset()

    async def process(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        store = self.outcomes.data
        for event in events:
            message = event.message
            body = json.loads(message.value or b"{}")
            label = f"{body['sector']}|{body['province']}|{body['outcome']}"
            version = int(body.get("version", 1))
            key = (message.key or b"").decode()
            previous = store.get(key)
            if previous is not None:
                seen = previous[2] if len(previous) > 2 else 1
                if version < seen or (version == seen and previous[0] == label):
                    continue  # an older version, or the same fact again (a replay after a restart)
                self.counts[previous[1]][previous[0]] -= 1
            value = [label, message.partition, version]
            store[key] = value
            self.outcomes.send_changelog(message.partition, key, value)
            self.counts[message.partition][label] += 1

    async def rebuild(self) -> None:
        """Derive the counts again from the recovered table (called after every recovery)."""
        counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        for label, partition, *_ in self.outcomes.data.values():
            counts[partition][label] += 1
        self.counts = counts
        self.owned = frozenset(self.active_partitions())
        log.info("counts rebuilt from %d records", sum(sum(c.values()) for c in counts.values()))

    def forget(self, partitions: Iterable[int]) -> None:
        """Stop reporting partitions as owned (on revocation, before another worker reports them)."""
        self.owned = self.owned.difference(partitions)

    def owned_totals(self) -> Counter[str]:
        """Counts summed over the owned partitions; safe to call from another thread while counting runs.

        Each read is one C-level copy (`list(d.items())`), atomic under the GIL, so a concurrent update
        cannot change a dict's size mid-iteration; `rebuild` replaces `counts` whole.
        """
        counts = self.counts
        totals: Counter[str] = Counter()
        for partition in self.owned:
            part = counts.get(partition)  # .get: a defaultdict look-up must not insert from this thread
            if part:
                for label, n in list(part.items()):
                    totals[label] += n
        return totals

    def active_partitions(self) -> list[int]:
        return sorted(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.topics.results
        )

    async def snapshot(self) -> None:
        """Publish this worker's counts for the results partitions it owns, plus its recent sync lag."""
        partitions = self.active_partitions()
        self.owned = frozenset(partitions)
        body = {
            "worker": self.worker_id,
            "ts_ms": now_ms(),
            "partitions": {str(p): {k: v for k, v in self.counts[p].items() if v} for p in partitions},
            "decided": dict(self.stats.decided),
            "lag_ms": self.stats.drain_lag(),
        }
        await self.app.producer.send(
            self.topics.progress, self.worker_id.encode(), dumps(body), None, None, None
        )
