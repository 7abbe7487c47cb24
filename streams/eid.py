"""Exact e-ID counts per (province, level, status) from the VNeID's account events, idempotent under replays.

The VNeID connector delivers at least once (a crash between the broker's confirmation and the outbox update
re-sends events), and a worker killed mid-stream re-reads what it had not committed. So, as
`streams.counting` does for record outcomes, the counts are never incremented per message: a table holds each
account's latest state, and the counts are derived from it (kept incrementally while running, rebuilt from
the table after every recovery).

An event changes the stored state only when it is newer than the event that made it, by `(at, event_id)`:
the same event again (a replay) and any older event (a replay of an earlier change, or one arriving out of
order) leave the state as it is. One citizen's events are keyed by the personal ID, so they reach one
partition in the order they happened; the version check is what makes a replayed *earlier* event harmless,
where comparing statuses would not be (lock → unlock → lock repeats a `from`/`to` pair).

Each account's state also holds a fingerprint of every event absorbed into it (8 bytes of BLAKE2b of the
event ID), so the number of distinct events absorbed is exact whatever order they come in: a replay is
dropped, and an older event seen for the first time (faust can deliver a partition's message after a later
one around a rebalance: a fetch dropped while a later one was not) is counted without changing the state.
Summed over the accounts, a reader knows the counts are complete when that sum reaches the number of events
sent.

Events arrive in envelopes (`connectors.vneid`: many events of one partition a message, their lines joined
by `\\n`, header `popsync-envelope` = their number) or one a message (another producer's, keyed by the
personal ID); faust's per-message cost is paid per envelope. The state is written the same way, per batch:
faust writes one changelog message per table write, so the table holds one entry per batch and partition
(`partition:offset:n` → the accounts that batch changed, as one JSON string; split beyond
`ENTRY_ACCOUNTS`), and the accounts' index is derived from the entries, rebuilt after every recovery: each
account at its newest version, with the union of the fingerprints of every entry naming it, so the order
the entries come back in does not matter.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson

from streams.config import StreamsSettings
from streams.gaps import guard_agent, reader
from streams.messages import HEADER_ENVELOPE, dumps, envelope_lines, int_header, now_ms
from streams.rewind import rewind_on_assignment
from streams.topics import TopicNames, replicated_configs

__all__ = [
    "ENTRY_ACCOUNTS",
    "AccountEventIn",
    "EidCounter",
    "EidCounts",
    "attach_eid",
    "eid_label",
    "envelope_events",
    "latest_partitions",
    "parse_event",
    "sum_snapshots",
]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Positions in an account's state (the index's values; a table entry's rows put the personal ID first,
# leave the partition to the entry's key and write the fingerprints in hex).
_PROVINCE, _LEVEL, _STATUS, _AT, _EVENT_ID, _EVENTS, _PARTITION, _SEEN = range(8)
_FINGERPRINT = 8  # bytes: a collision between two events of one account is ~1 in 10^19
# Accounts per table entry: an entry (one changelog message, ~90 bytes an account) stays far below the
# topics' 4 MiB message limit however large a batch is.
ENTRY_ACCOUNTS = 20_000
# Messages (envelopes of up to 1,000 events, or single events) per batch of the agent.
BATCH_MESSAGES = 100


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
    """Read one event (an envelope's line, or a message of its own); ValueError saying what is wrong (never
    the ID itself). The personal ID is the message key's, else the event's own field."""
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
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


def envelope_events(
    key: bytes | None, value: bytes | None, headers: Any = None
) -> list[tuple[bytes | None, bytes | None]]:
    """The events one message carries, as (key, value): an envelope's lines (each names its own citizen),
    else the message itself. An envelope whose line count disagrees with its header is one value (which
    `parse_event` then rejects): never read as fewer or more events than it holds."""
    count = int_header(_envelope_header(headers), HEADER_ENVELOPE, 0)
    if count > 0 and value:
        lines = envelope_lines(value, count) if count > 1 else [value]
        if len(lines) == count:
            return [(None, line) for line in lines]
    return [(key, value)]


def _envelope_header(headers: Any) -> dict[str, str]:
    """Only the `popsync-envelope` header, decoded: an envelope's event IDs need not be."""
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, raw in items:
        if name == HEADER_ENVELOPE:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
            return {name: text}
    return {}


def eid_label(province: str, level: int, status: str) -> str:
    """The key of a count: `008|2|activated`."""
    return f"{province}|{level}|{status}"


def _label(value: Sequence[Any]) -> str:
    return eid_label(value[_PROVINCE], value[_LEVEL], value[_STATUS])


def _fingerprint(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=_FINGERPRINT).digest()


def _holds(seen: bytes, fingerprint: bytes) -> bool:
    """Whether `seen` (fingerprints end to end) holds `fingerprint` at a fingerprint's boundary."""
    at = seen.find(fingerprint)
    while at >= 0:
        if at % _FINGERPRINT == 0:
            return True
        at = seen.find(fingerprint, at + 1)
    return False


def _union(seen: bytes | None, more: bytes | None) -> bytes | None:
    """Fingerprints of both (None, an account of the table before fingerprints, stays None)."""
    if seen is None or more is None:
        return None
    if more == seen:
        return seen
    for at in range(0, len(more), _FINGERPRINT):
        fingerprint = more[at : at + _FINGERPRINT]
        if not _holds(seen, fingerprint):
            seen += fingerprint
    return seen


class EidCounts:
    """The pure part: the table's entries (any mutable mapping), the accounts' latest states derived from
    them (`index`), and the counts derived from those.

    `entries` maps `partition:offset:n` → a JSON string `[[personal ID, province, level, status, at_us,
    event_id, events, fingerprints (hex)], …]`: the accounts one batch changed in one partition. `index`
    maps personal ID → `[province, level, status, at_us, event_id, events, partition, fingerprints]`.
    """

    def __init__(self, entries: MutableMapping[str, Any] | None = None) -> None:
        self.entries: MutableMapping[str, Any] = {} if entries is None else entries
        self.index: dict[str, list[Any]] = {}
        self.counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.events: Counter[int] = Counter()  # distinct events absorbed, per partition
        # Since this process started; informational (a replay after a restart is dropped, and counted, again).
        self.dropped: Counter[str] = Counter()
        self.late = 0  # older events counted after a newer one had set the state (informational)

    def absorb(self, key: str, event: AccountEventIn, partition: int) -> list[Any] | None:
        """Apply one event; the account's new state, or None when the event is dropped (a replay)."""
        fingerprint = _fingerprint(event.event_id)
        previous = self.index.get(key)
        version = (event.at_us, event.event_id)
        if previous is not None:
            seen = previous[_SEEN]
            stored = (previous[_AT], previous[_EVENT_ID])
            if seen is None:  # an account of the table before fingerprints: the version alone decides
                if version <= stored:
                    self.dropped["duplicate" if version == stored else "out_of_date"] += 1
                    return None
            elif _holds(seen, fingerprint):
                self.dropped["duplicate"] += 1
                return None
            old_partition = previous[_PARTITION]
            self.counts[old_partition][_label(previous)] -= 1
            self.events[old_partition] -= previous[_EVENTS]
            events = previous[_EVENTS] + 1
            seen = None if seen is None else seen + fingerprint
            if version < stored:  # new to this account, but older than its state: counted, state kept
                self.late += 1
                value = [*previous[:_EVENTS], events, old_partition, seen]
                return self._set(key, value)
        else:
            events, seen = 1, fingerprint
        # Interned: a million accounts share a handful of provinces and statuses.
        province, status = sys.intern(event.province), sys.intern(event.status)
        return self._set(
            key, [province, event.level, status, event.at_us, event.event_id, events, partition, seen]
        )

    def _set(self, key: str, value: list[Any]) -> list[Any]:
        self.index[key] = value
        partition = value[_PARTITION]
        self.counts[partition][_label(value)] += 1
        self.events[partition] += value[_EVENTS]
        return value

    def absorb_messages(
        self, messages: Iterable[tuple[bytes | None, bytes | None, int]]
    ) -> dict[str, list[Any]]:
        """Apply a batch of (key, value, partition) events; the changed accounts' final states.

        An account changed several times in one batch is returned once, so it is written once.
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

    def record(
        self, changed: Mapping[str, list[Any]], offsets: Mapping[int, int]
    ) -> list[tuple[int, str, str]]:
        """Store a batch's changed accounts as table entries; the (partition, key, value) written.

        One entry per partition (more beyond `ENTRY_ACCOUNTS`), named by the partition and the offset of
        the batch's last message there (`offsets`): a replayed batch that changes nothing writes nothing,
        and one that does names an entry of its own or the same accounts again.
        """
        rows: dict[int, list[list[Any]]] = {}
        for personal_id, value in changed.items():
            seen = value[_SEEN]
            row = [personal_id, *value[:_PARTITION], None if seen is None else seen.hex()]
            rows.setdefault(value[_PARTITION], []).append(row)
        written: list[tuple[int, str, str]] = []
        for partition, accounts in rows.items():
            for n, at in enumerate(range(0, len(accounts), ENTRY_ACCOUNTS)):
                key = f"{partition}:{offsets[partition]}:{n}"
                entry = orjson.dumps(accounts[at : at + ENTRY_ACCOUNTS]).decode()
                self.entries[key] = entry
                written.append((partition, key, entry))
        return written

    def rebuild(self) -> None:
        """Derive the index and the counts again from the entries (after a recovery filled them from the
        changelog): each account at its newest version, with the union of its fingerprints, whatever order
        the entries are in."""
        index: dict[str, list[Any]] = {}
        intern = sys.intern
        for key, entry in _raw_items(self.entries):
            if isinstance(entry, list):
                # The table as it was before envelopes: one entry per account, keyed by its personal ID.
                rows: Iterable[Sequence[Any]] = [[key, *entry[:_PARTITION], None]]
                partition = int(entry[_PARTITION])
            else:
                rows = orjson.loads(entry)
                partition = int(str(key).split(":", 1)[0])
            for personal_id, province, level, status, at_us, event_id, events, hexed in rows:
                seen = None if hexed is None else bytes.fromhex(hexed)
                previous = index.get(personal_id)
                if previous is None:
                    state = [
                        intern(province),
                        level,
                        intern(status),
                        at_us,
                        event_id,
                        events,
                        partition,
                        seen,
                    ]
                    index[personal_id] = state
                    continue
                seen = _union(previous[_SEEN], seen)
                if (at_us, event_id) > (previous[_AT], previous[_EVENT_ID]):
                    previous[:_SEEN] = [
                        intern(province),
                        level,
                        intern(status),
                        at_us,
                        event_id,
                        events,
                        partition,
                    ]
                previous[_SEEN] = seen
                if seen is not None:
                    previous[_EVENTS] = len(seen) // _FINGERPRINT
        counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        totals: Counter[int] = Counter()
        for value in index.values():
            counts[value[_PARTITION]][_label(value)] += 1
            totals[value[_PARTITION]] += value[_EVENTS]
        self.index, self.counts, self.events = index, counts, totals

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
            "late": self.late,
        }


def _raw_items(entries: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A mapping's items; for a faust memory store, those of the plain dict behind it (the `Mapping`
    machinery costs more than reading them)."""
    inner = getattr(entries, "data", entries)
    return list(inner.items()) if isinstance(inner, Mapping) else list(entries.items())


class EidCounter:
    """The faust side: unpacks envelopes, feeds batches to `EidCounts`, writes the table entries to the
    changelog, publishes snapshots. What faust did not deliver is read back before a batch by the agent's
    `streams.gaps.GapGuard`, and comes in the batch."""

    def __init__(self, app: faust.App, topics: TopicNames, table: Any, worker_id: str) -> None:
        self.app = app
        self.topics = topics
        self.table = table  # faust Table: `partition:offset:n` -> JSON string of accounts (see EidCounts)
        self.worker_id = worker_id
        self.state = EidCounts(table.data)
        self.owned: frozenset[int] = frozenset()
        self.changelog = table.changelog_topic.get_topic_name()

    async def process(self, events: Sequence[Any]) -> None:
        """A batch of faust events (or of messages read back, `streams.gaps.ReadBack`)."""
        offsets: dict[int, int] = {}  # partition -> offset of the batch's last message there
        messages: list[tuple[bytes | None, bytes | None, int]] = []
        for event in events:
            message = event.message
            partition = message.partition
            offsets[partition] = max(message.offset, offsets.get(partition, -1))
            for key, value in envelope_events(message.key, message.value, message.headers):
                messages.append((key, value, partition))
        await self._write(self.state.absorb_messages(messages), offsets)

    async def _write(self, changed: Mapping[str, list[Any]], offsets: Mapping[int, int]) -> None:
        # Straight to the producer, not through `table.send_changelog`: that one queues each message in
        # faust's producer buffer, which the stream then drains one message per event-loop round trip.
        # Before committing offsets faust flushes the producer, so the changelog is still written before
        # the offsets that depend on it. The bytes are what the table's JSON serializers write (a JSON
        # string), so recovery reads them back as usual.
        send = self.app.producer.send
        for partition, name, entry in self.state.record(changed, offsets):
            await send(self.changelog, orjson.dumps(name), orjson.dumps(entry), partition, None, None)

    async def rebuild(self) -> None:
        # After a recovery the table may hold accounts of partitions now owned by others; they are counted
        # under their own partition and left out of snapshots, which report owned partitions only.
        self.state.rebuild()
        self.owned = frozenset(self.active_partitions())
        log.info(
            "e-ID counts rebuilt from %d table entries: %d accounts",
            len(self.state.entries),
            len(self.state.index),
        )

    def forget(self, partitions: Iterable[int]) -> None:
        revoked = list(partitions)
        self.owned = self.owned.difference(revoked)

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
    table = app.Table(
        "eid-accounts",
        partitions=settings.partitions,
        extra_topic_configs=replicated_configs(settings.replication_factor),
    )

    counter = EidCounter(app, topics, table, settings.worker_id)
    table.on_recover(counter.rebuild)

    async def forget_revoked(_app: Any, /, *args: Any, **_: Any) -> None:
        (revoked,) = args  # the set of revoked TopicPartitions
        counter.forget(tp.partition for tp in revoked if tp.topic == topics.eid_events)

    app.on_partitions_revoked.connect(forget_revoked)

    rewind_on_assignment(app, [topics.eid_events])
    # What faust 0.15 skips around a rebalance is read back (streams/gaps.py).
    read = reader(settings.bootstrap_servers, settings.kafka)
    gaps = guard_agent(app, [topics.eid_events], "count-eid", read, counter.process)
    source = app.topic(topics.eid_events, partitions=settings.partitions, key_type=bytes, value_type=bytes)

    async def count_eid(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MESSAGES, within=0.2):
            await gaps.process(events, counter.process)

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
