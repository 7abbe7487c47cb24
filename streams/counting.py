"""Exact counts per (sector, province, outcome), kept idempotent under replays, and progress snapshots."""

from __future__ import annotations

import logging
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import faust
import orjson

from streams.holders import raw_items
from streams.messages import dumps, now_ms, result_key
from streams.stats import WorkerStats
from streams.topics import TopicNames

__all__ = ["OutcomeCounter", "digest_partition"]

log = logging.getLogger(__name__)


def digest_partition(key: str, partitions: int) -> int:
    """The `<prefix>.outcomes` partition of a result key: every version of a record lands on one."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


class OutcomeCounter:
    """Counts results by (sector, province, outcome), once per record however often a result arrives.

    It reads the outcome digests the reconcile agents write (`<prefix>.outcomes`: one message per batch and
    digest partition, every result of that batch whose key hashes there), so faust's per-message cost is
    paid once per digest, not once per record. Every version of a record hashes to one digest partition,
    so one worker alone decides which version of a record is the latest.

    An increment-only counter double-counts what is replayed after a crash or rebalance (FACTS.md: 24,786
    for 20,000). Here each record's latest outcome is kept (a *set*, which replays repeat harmlessly) and
    the counts are derived from it: kept incrementally while running, rebuilt from the table after every
    recovery. A corrected re-publication of a record carries a higher version: its outcome replaces the
    earlier one, and a late replay of an older version changes nothing. The table holds one entry per
    digest read (the records whose latest outcome it changed), written once: one changelog message per
    digest. Counts are kept per digest partition, so a reader sums the latest snapshot of every partition.
    """

    def __init__(self, app: faust.App, topics: TopicNames, outcomes: Any, stats: WorkerStats, worker_id: str):
        self.app = app
        self.topics = topics
        self.outcomes = outcomes  # faust Table: digest position -> JSON [[result key, label, version], …]
        self.stats = stats
        self.worker_id = worker_id
        self.latest: dict[str, tuple[str, int, int]] = {}  # result key -> (label, partition, version)
        self.counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self._labels: dict[str, str] = {}  # one string per label, however many records carry it
        # The digest partitions this worker owns, refreshed on the event loop (snapshot, recovery,
        # revocation) so the metrics thread can read it without touching faust's assignor.
        self.owned: frozenset[int] = frozenset()

    def _apply(self, key: str, label: str, partition: int, version: int) -> bool:
        """Make `label` the outcome of `key` unless an equal or later version said otherwise; True if so."""
        previous = self.latest.get(key)
        if previous is not None:
            if version < previous[2] or (version == previous[2] and previous[0] == label):
                return False  # an older version, or the same fact again (a replay after a restart)
            self.counts[previous[1]][previous[0]] -= 1
        label = self._labels.setdefault(label, label)
        self.latest[key] = (label, partition, version)
        self.counts[partition][label] += 1
        return True

    async def process(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        for event in events:
            message = event.message
            partition = message.partition
            changed: list[list[Any]] = []
            for body in orjson.loads(message.value or b'{"results":[]}')["results"]:
                key = result_key(body["sector"], body["province"], body["record_id"])
                label = f"{body['sector']}|{body['province']}|{body['outcome']}"
                version = int(body.get("version", 1))
                if self._apply(key, label, partition, version):
                    changed.append([key, label, version])
            if changed:
                entry = f"{partition}:{message.offset}"
                value = orjson.dumps(changed).decode()
                self.outcomes.data[entry] = value
                self.outcomes.send_changelog(partition, entry, value)

    async def rebuild(self) -> None:
        """Derive the counts again from the recovered table (called after every recovery)."""
        self.latest = {}
        self.counts = defaultdict(Counter)
        for entry, value in raw_items(self.outcomes):
            partition = int(str(entry).split(":", 1)[0])
            for key, label, version in orjson.loads(value):
                self._apply(key, label, partition, int(version))
        self.owned = frozenset(self.active_partitions())
        log.info("counts rebuilt from %d records", len(self.latest))

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
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.topics.outcomes
        )

    async def snapshot(self) -> None:
        """Publish this worker's counts for the digest partitions it owns, plus its recent sync lag."""
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
