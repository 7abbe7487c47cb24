"""Exact e-ID counts per (province, level, status) from the VNeID's account events, idempotent under replays.

The VNeID connector delivers at least once (a crash between the broker's confirmation and the outbox update
re-sends events), and a worker killed mid-stream re-reads what it had not committed. So, as
`streams.counting` does for record outcomes, the counts are never incremented per message: a table holds each
account's latest state, and the counts are derived from it (kept incrementally while running, rebuilt from
the table after every recovery).

An event changes the stored state only when it is newer than the event that made it, by `(at, event_id)`:
the same event again (a replay) and any older event (a replay of an earlier change, or one arriving out of
order) are dropped. One citizen's events are keyed by the personal ID, so they reach one partition in the
order they happened; the version check is what makes a replayed *earlier* event harmless, where comparing
statuses would not be (lock → unlock → lock repeats a `from`/`to` pair).

Each table value also counts the events that built it, so the sum over the table is the number of distinct
events absorbed: a reader knows the counts are complete when that sum reaches the number of events sent.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from streams.config import StreamsSettings
from streams.messages import dumps, now_ms
from streams.rewind import rewind_on_assignment
from streams.topics import TOPIC_CONFIGS, TopicNames

__all__ = [
    "AccountEventIn",
    "EidCounter",
    "EidCounts",
    "attach_eid",
    "eid_label",
    "latest_partitions",
    "parse_event",
    "sum_snapshots",
]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Positions in a table value: a JSON list, so the changelog holds it as it is.
_PROVINCE, _LEVEL, _STATUS, _AT, _EVENT_ID, _EVENTS, _PARTITION = range(7)


@dataclass(frozen=True, slots=True)
class AccountEventIn:
    """The part of a VNeID account event the counts need (`mocks.vneid.outbox.AccountEvent.to_message`)."""

    event_id: str
    personal_id: str
    province: str
    from_status: str | None
    to_status: str
    level: int
    at_us: int  # microseconds since the epoch: the event's version, with `event_id` breaking ties

    @property
    def status(self) -> str:
        """The status it leaves the account in; a lock names what it locked (`locked/activated`)."""
        if self.to_status == "locked":
            return f"locked/{self.from_status}"
        return self.to_status


def parse_event(value: bytes | None, key: bytes | None = None) -> AccountEventIn:
    """Read one message of the e-ID events topic; ValueError saying what is wrong (never the ID itself)."""
    try:
        body = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in ("event_id", "province", "to", "level", "at") if not body.get(k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    personal_id = key.decode() if key else body.get("personal_id")
    if not isinstance(personal_id, str) or not personal_id:
        raise ValueError("no personal ID (neither message key nor field)")
    level = body["level"]
    if level not in (1, 2) or isinstance(level, bool):
        raise ValueError(f"level must be 1 or 2, got {level!r}")
    try:
        at = datetime.fromisoformat(str(body["at"]))
    except ValueError:
        raise ValueError(f"`at` is not an ISO 8601 time: {body['at']!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # the VNeID writes UTC
    return AccountEventIn(
        event_id=str(body["event_id"]),
        personal_id=personal_id,
        province=str(body["province"]),
        from_status=body.get("from"),
        to_status=str(body["to"]),
        level=level,
        at_us=(at - _EPOCH) // _MICROSECOND,
    )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def eid_label(province: str, level: int, status: str) -> str:
    """The key of a count: `008|2|activated`."""
    return f"{province}|{level}|{status}"


def _label(value: Sequence[Any]) -> str:
    return eid_label(value[_PROVINCE], value[_LEVEL], value[_STATUS])


class EidCounts:
    """The pure part: the table of latest account states (any mutable mapping) and the counts derived.

    `store` maps personal ID → `[province, level, status, at_us, event_id, events, partition]`.
    """

    def __init__(self, store: MutableMapping[str, list[Any]]) -> None:
        self.store = store
        self.counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.events: Counter[int] = Counter()  # distinct events absorbed, per partition
        # Since this process started; informational (a replay after a restart is dropped, and counted, again).
        self.dropped: Counter[str] = Counter()

    def absorb(self, key: str, event: AccountEventIn, partition: int) -> list[Any] | None:
        """Apply one event; the account's new value, or None when the event is dropped."""
        previous = self.store.get(key)
        if previous is not None:
            stored = (previous[_AT], previous[_EVENT_ID])
            version = (event.at_us, event.event_id)
            if version <= stored:
                self.dropped["duplicate" if version == stored else "out_of_date"] += 1
                return None
            old_partition = previous[_PARTITION]
            self.counts[old_partition][_label(previous)] -= 1
            self.events[old_partition] -= previous[_EVENTS]
            events = previous[_EVENTS] + 1
        else:
            events = 1
        value = [event.province, event.level, event.status, event.at_us, event.event_id, events, partition]
        self.store[key] = value
        self.counts[partition][_label(value)] += 1
        self.events[partition] += events
        return value

    def absorb_messages(
        self, messages: Iterable[tuple[bytes | None, bytes | None, int]]
    ) -> dict[str, list[Any]]:
        """Apply a batch of (key, value, partition) messages; the changed accounts' final values.

        An account changed several times in one batch is returned once, so its changelog is written once.
        """
        changed: dict[str, list[Any]] = {}
        for key, raw, partition in messages:
            try:
                event = parse_event(raw, key)
            except ValueError as exc:
                self.dropped["malformed"] += 1
                log.warning("dropped an e-ID event at partition %d that cannot be read: %s", partition, exc)
                continue
            value = self.absorb(event.personal_id, event, partition)
            if value is not None:
                changed[event.personal_id] = value
        return changed

    def rebuild(self) -> None:
        """Derive the counts again from the table (after a recovery filled it from its changelog)."""
        counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        events: Counter[int] = Counter()
        for value in self.store.values():
            counts[value[_PARTITION]][_label(value)] += 1
            events[value[_PARTITION]] += value[_EVENTS]
        self.counts, self.events = counts, events

    def snapshot_body(self, worker_id: str, partitions: Iterable[int]) -> dict[str, Any]:
        """The progress message: per owned partition, its distinct events and its non-zero counts."""
        return {
            "worker": worker_id,
            "ts_ms": now_ms(),
            "partitions": {
                str(p): {
                    "events": self.events.get(p, 0),
                    "counts": {k: v for k, v in self.counts[p].items() if v} if p in self.counts else {},
                }
                for p in partitions
            },
            "dropped": dict(self.dropped),
        }


class EidCounter:
    """The faust side: feeds batches to `EidCounts`, writes the changelog, publishes snapshots."""

    def __init__(self, app: faust.App, topics: TopicNames, table: Any, worker_id: str) -> None:
        self.app = app
        self.topics = topics
        self.table = table  # faust Table: personal ID -> value (see EidCounts)
        self.worker_id = worker_id
        self.state = EidCounts(table.data)
        self.owned: frozenset[int] = frozenset()
        self.changelog = table.changelog_topic.get_topic_name()

    async def process(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        changed = self.state.absorb_messages(
            (e.message.key, e.message.value, e.message.partition) for e in events
        )
        # Straight to the producer, not through `table.send_changelog`: that one queues each message in
        # faust's producer buffer, which the stream then drains one message per event-loop round trip
        # ("producer buffer full"), the slowest part of a worker here. Before committing offsets faust
        # flushes the producer, so the changelog is still written before the offsets that depend on it.
        # The bytes are what the table's JSON serializers write, so recovery reads them back as usual.
        send = self.app.producer.send
        for key, value in changed.items():
            partition = value[_PARTITION]
            await send(self.changelog, _json(key), _json(value), partition, None, None)

    async def rebuild(self) -> None:
        # After a recovery the table may hold accounts of partitions now owned by others; they are counted
        # under their own partition and left out of snapshots, which report owned partitions only.
        self.state.rebuild()
        self.owned = frozenset(self.active_partitions())
        log.info("e-ID counts rebuilt from %d accounts", len(self.state.store))

    def forget(self, partitions: Iterable[int]) -> None:
        self.owned = self.owned.difference(partitions)

    def active_partitions(self) -> list[int]:
        return sorted(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.topics.eid_events
        )

    def owned_totals(self) -> Counter[str]:
        """Counts over the owned partitions (for metrics; read-only, safe from another thread)."""
        counts = self.state.counts
        totals: Counter[str] = Counter()
        for partition in self.owned:
            part = counts.get(partition)
            if part:
                for label, n in list(part.items()):
                    totals[label] += n
        return totals

    async def snapshot(self) -> None:
        """Publish this worker's e-ID counts for the events partitions it owns.

        Owned means recovered and counted: set by `rebuild` (after the table's recovery), cleared on
        revocation. The assignor is not asked here: it names a new partition as soon as it is assigned,
        while its accounts are still being read back (its counts would go out as zeros), and still names
        revoked partitions until the next assignment. Meanwhile readers keep the last owner's snapshot.
        """
        partitions = sorted(self.owned)
        body = self.state.snapshot_body(self.worker_id, partitions)
        await self.app.producer.send(
            self.topics.eid_progress, self.worker_id.encode(), dumps(body), None, None, None
        )


def attach_eid(app: faust.App, topics: TopicNames, settings: StreamsSettings) -> EidCounter:
    """Add the e-ID table, agent and snapshot timer to a worker's app; returns the counter (for metrics)."""
    table = app.Table("eid-accounts", partitions=settings.partitions, extra_topic_configs=TOPIC_CONFIGS)
    counter = EidCounter(app, topics, table, settings.worker_id)
    table.on_recover(counter.rebuild)

    async def forget_revoked(_app: Any, /, *args: Any, **_: Any) -> None:
        (revoked,) = args  # the set of revoked TopicPartitions
        counter.forget(tp.partition for tp in revoked if tp.topic == topics.eid_events)

    app.on_partitions_revoked.connect(forget_revoked)

    rewind_on_assignment(app, [topics.eid_events])
    source = app.topic(topics.eid_events, partitions=settings.partitions, key_type=bytes, value_type=bytes)

    async def count_eid(stream: Any) -> None:
        async for events in stream.take_events(5000, within=0.2):
            await counter.process(events)

    app.agent(source, name="count-eid")(count_eid)
    app.timer(settings.progress_interval_s, name="eid-snapshot")(counter.snapshot)
    return counter


def sum_snapshots(latest: Mapping[int, tuple[int, Mapping[str, Any]]]) -> tuple[int, Counter[str]]:
    """Distinct events and counts summed over the latest snapshot of every partition (for readers)."""
    events = 0
    counts: Counter[str] = Counter()
    for _, part in latest.values():
        events += int(part.get("events", 0))
        counts.update(part.get("counts", {}))
    return events, counts


def latest_partitions(
    snapshots: Iterable[Mapping[str, Any]], into: dict[int, tuple[int, Mapping[str, Any]]] | None = None
) -> dict[int, tuple[int, Mapping[str, Any]]]:
    """Keep, per partition, the part of the newest snapshot (by `ts_ms`) that reported it."""
    latest = {} if into is None else into
    for body in snapshots:
        ts = int(body.get("ts_ms", 0))
        for part, value in body.get("partitions", {}).items():
            previous = latest.get(int(part))
            if previous is None or previous[0] <= ts:
                latest[int(part)] = (ts, value)
    return latest
