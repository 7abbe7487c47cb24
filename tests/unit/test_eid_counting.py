"""e-ID counting (`streams.eid`): one count per account's latest state, however events are replayed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from faust.types import TP

import streams.eid as eid
from mocks.vneid.exceptions import IllegalTransitionError
from mocks.vneid.lifecycle import AccountState, Action, apply_for, transition
from streams.eid import EidCounts, envelope_events, latest_partitions, parse_event, sum_snapshots
from streams.gaps import Fetched, GapGuard
from streams.messages import HEADER_ENVELOPE, envelope_value
from streams.rewind import rewind_uncommitted
from streams.topics import TopicNames

pytestmark = pytest.mark.unit

T0 = datetime(2023, 6, 1, tzinfo=UTC)
PID = "008090001234"


def message(
    event_id: str,
    to: str,
    *,
    frm: str | None = None,
    level: int = 1,
    seconds: float = 0,
    pid: str = PID,
    province: str = "008",
) -> bytes:
    body = {
        "event_id": event_id,
        "account_id": "acc-" + pid,
        "personal_id": pid,
        "province": province,
        "action": "x",
        "from": frm,
        "to": to,
        "level": level,
        "at": (T0 + timedelta(seconds=seconds)).isoformat(),
    }
    return json.dumps(body).encode()


def feed(counts: EidCounts, *raws: bytes, partition: int = 0, key: str = PID) -> dict[str, list[Any]]:
    return counts.absorb_messages((key.encode(), raw, partition) for raw in raws)


def totals(counts: EidCounts) -> Counter[str]:
    out: Counter[str] = Counter()
    for part in counts.counts.values():
        out.update({k: v for k, v in part.items() if v})
    return out


APPLY = message("e1", "applied", seconds=0)
APPROVE = message("e2", "approved", frm="applied", seconds=10)
ACTIVATE = message("e3", "activated", frm="approved", seconds=20)


# --- reading an event ----------------------------------------------------------------------------------


def test_parse_reads_the_outbox_message() -> None:
    event = parse_event(ACTIVATE, PID.encode())
    assert (event.event_id, event.personal_id, event.province) == ("e3", PID, "008")
    assert (event.from_status, event.to_status, event.level, event.status) == (
        "approved",
        "activated",
        1,
        "activated",
    )
    assert event.at_us == int((T0 + timedelta(seconds=20)).timestamp()) * 1_000_000


def test_a_lock_names_the_status_it_locked() -> None:
    assert parse_event(message("e", "locked", frm="activated")).status == "locked/activated"


def test_at_with_microseconds_and_without_zone_are_read() -> None:
    body = json.loads(APPLY)
    body["at"] = "2023-06-01T00:00:00.000001"  # naive: the VNeID writes UTC
    assert parse_event(json.dumps(body).encode()).at_us == parse_event(APPLY).at_us + 1


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (json.dumps({"event_id": "e", "to": "applied"}).encode(), "missing province, level, at"),
        (message("e", "applied", level=3), "level must be 1 or 2"),
        (APPLY.replace(b"2023-06-01", b"yesterday!"), "not an ISO 8601 time"),
    ],
)
def test_unreadable_events_say_why_without_the_id(raw: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        parse_event(raw, PID.encode())
    assert PID not in str(info.value)


def test_the_key_is_the_personal_id_else_the_field() -> None:
    assert parse_event(APPLY, None).personal_id == PID
    assert parse_event(APPLY, b"other").personal_id == "other"


def envelope(*lines: bytes, count: int | None = None) -> tuple[bytes, list[tuple[str, bytes]]]:
    header = str(len(lines) if count is None else count).encode()
    return envelope_value(lines), [(HEADER_ENVELOPE, header), ("popsync-event-ids", b"e1,e2")]


def test_an_envelope_carries_its_events_in_order_each_naming_its_citizen() -> None:
    value, headers = envelope(APPLY, APPROVE, ACTIVATE)
    assert envelope_events(None, value, headers) == [(None, APPLY), (None, APPROVE), (None, ACTIVATE)]
    assert envelope_events(None, value, dict(headers)) == [(None, APPLY), (None, APPROVE), (None, ACTIVATE)]
    assert envelope_events(None, *envelope(APPLY)) == [(None, APPLY)]
    assert [parse_event(v, k).personal_id for k, v in envelope_events(None, value, headers)] == [PID] * 3


def test_a_message_without_the_envelope_header_is_one_event_keyed_by_its_citizen() -> None:
    assert envelope_events(PID.encode(), APPLY, None) == [(PID.encode(), APPLY)]
    assert envelope_events(PID.encode(), APPLY, [("event-id", b"e1")]) == [(PID.encode(), APPLY)]


@pytest.mark.parametrize("count", [b"2", b"4", b"0", b"-1", b"x", b"99999999999999999999999"])
def test_an_envelope_that_disagrees_with_its_header_is_one_value_and_dropped(count: bytes) -> None:
    value, _ = envelope(APPLY, APPROVE, ACTIVATE)
    assert envelope_events(None, value, [(HEADER_ENVELOPE, count)]) == [(None, value)]
    counts = EidCounts()
    counts.absorb_messages((k, v, 0) for k, v in envelope_events(None, value, [(HEADER_ENVELOPE, count)]))
    assert counts.dropped == {"malformed": 1} and not counts.index


def test_envelopes_and_single_messages_count_alike() -> None:
    other = "052091234567"
    value, headers = envelope(APPLY, message("o1", "applied", pid=other, province="052"), APPROVE)
    messages = [*envelope_events(None, value, headers), *envelope_events(PID.encode(), ACTIVATE)]
    counts = EidCounts()
    changed = counts.absorb_messages((k, v, 0) for k, v in messages)
    assert set(changed) == {PID, other}
    assert totals(counts) == {"008|1|activated": 1, "052|1|applied": 1} and counts.events[0] == 4


# --- counting --------------------------------------------------------------------------------------------


def test_each_account_counts_once_in_its_latest_state() -> None:
    counts = EidCounts({})
    feed(counts, APPLY)
    assert totals(counts) == {"008|1|applied": 1}
    feed(counts, APPROVE, ACTIVATE)
    assert totals(counts) == {"008|1|activated": 1}
    assert counts.events[0] == 3


def test_the_same_event_again_is_dropped() -> None:
    counts = EidCounts({})
    feed(counts, APPLY, APPROVE, APPROVE, APPLY, APPROVE)
    assert totals(counts) == {"008|1|approved": 1}
    assert counts.events[0] == 2
    assert counts.dropped == {"duplicate": 3}


def test_a_replayed_earlier_event_cannot_undo_a_later_one() -> None:
    # lock → unlock → lock repeats a from/to pair; only the version tells the replay from a new lock.
    lock1 = message("l1", "locked", frm="activated", seconds=30)
    unlock = message("u1", "activated", frm="locked", seconds=40)
    lock2 = message("l2", "locked", frm="activated", seconds=50)
    counts = EidCounts({})
    feed(counts, APPLY, APPROVE, ACTIVATE, lock1, unlock)
    assert totals(counts) == {"008|1|activated": 1}
    feed(counts, lock1)  # the connector re-sent it after a crash
    assert totals(counts) == {"008|1|activated": 1}
    feed(counts, lock2, unlock, ACTIVATE)
    assert totals(counts) == {"008|1|locked/activated": 1}
    assert counts.events[0] == 6


def test_out_of_order_events_leave_the_newest_state_and_are_counted_once() -> None:
    # faust can deliver a partition's message after a later one around a rebalance: the older events are
    # new to the account, so they count (or the reader would wait for them forever), its state stays.
    counts = EidCounts({})
    changed = feed(counts, ACTIVATE, APPLY, APPROVE)
    assert totals(counts) == {"008|1|activated": 1}
    assert counts.events[0] == 3 and counts.late == 2 and not counts.dropped
    assert changed[PID][:5] == ["008", 1, "activated", parse_event(ACTIVATE).at_us, "e3"]
    assert feed(counts, APPLY, APPROVE, ACTIVATE) == {}  # replays of all three, whatever their order
    assert counts.events[0] == 3 and counts.dropped == {"duplicate": 3}


def test_a_late_event_is_written_and_recovered() -> None:
    counts = EidCounts()
    batch(counts, APPLY, ACTIVATE, offset=1)
    assert [row[-2] for _, _, entry in batch(counts, APPROVE, offset=2) for row in json.loads(entry)] == [3]
    recovered = EidCounts(json.loads(json.dumps(counts.entries)))
    recovered.rebuild()
    assert totals(recovered) == {"008|1|activated": 1} and recovered.events[0] == 3
    assert feed(recovered, APPROVE) == {} and recovered.events[0] == 3


def test_recovery_unites_the_fingerprints_of_every_entry_of_an_account() -> None:
    # Two histories of one account (a batch replayed in another order after a crash) each wrote what it
    # had seen; the newest state and every event either saw are what the account absorbed.
    first, second = EidCounts(), EidCounts()
    batch(first, APPLY, ACTIVATE, offset=1)
    batch(second, APPROVE, ACTIVATE, offset=2)
    entries = {**first.entries, **second.entries}
    for order in (entries, dict(reversed(entries.items()))):
        recovered = EidCounts(json.loads(json.dumps(order)))
        recovered.rebuild()
        assert totals(recovered) == {"008|1|activated": 1} and recovered.events[0] == 3


def test_equal_times_are_ordered_by_event_id() -> None:
    a = message("a", "applied", seconds=5)
    b = message("b", "approved", frm="applied", seconds=5)
    for order in ((a, b), (b, a)):
        counts = EidCounts({})
        feed(counts, *order)
        assert totals(counts) == {"008|1|approved": 1}


def test_an_upgrade_moves_the_account_to_level_2() -> None:
    counts = EidCounts({})
    feed(counts, APPLY, APPROVE, message("v", "approved", frm="approved", level=2, seconds=15))
    assert totals(counts) == {"008|2|approved": 1}


def test_a_batch_writes_each_changed_account_once() -> None:
    counts = EidCounts({})
    other = "052091234567"
    changed = counts.absorb_messages(
        [
            (PID.encode(), APPLY, 0),
            (PID.encode(), APPROVE, 0),
            (other.encode(), message("o1", "applied", pid=other, province="052"), 1),
            (PID.encode(), APPROVE, 0),
        ]
    )
    assert set(changed) == {PID, other}
    assert changed[PID][2] == "approved" and changed[PID][4] == "e2"
    assert changed[other][6] == 1  # the partition is kept with the state
    assert counts.absorb_messages([(PID.encode(), APPROVE, 0)]) == {}


def test_malformed_events_are_dropped_and_the_batch_goes_on() -> None:
    counts = EidCounts({})
    feed(counts, b"garbage", APPLY)
    assert totals(counts) == {"008|1|applied": 1}
    assert counts.dropped["malformed"] == 1


def batch(
    counts: EidCounts, *raws: bytes, partition: int = 0, offset: int = 0, key: str = PID
) -> list[tuple[int, str, str]]:
    """One batch of the agent: absorb, then write the table entries."""
    return counts.record(feed(counts, *raws, partition=partition, key=key), {partition: offset})


def test_recovery_rebuilds_the_same_counts_from_the_table() -> None:
    counts = EidCounts()
    batch(counts, APPLY, APPROVE, partition=2, offset=7)
    batch(counts, message("x", "applied", pid="008190000001", level=2), partition=1, key="008190000001")
    batch(counts, ACTIVATE, partition=2, offset=8)
    assert sorted(counts.entries) == ["1:0:0", "2:7:0", "2:8:0"]
    # the changelog holds the entries as JSON strings: a new process reads them back in any order
    entries = json.loads(json.dumps(counts.entries))
    recovered = EidCounts(dict(reversed(entries.items())))
    recovered.rebuild()
    assert recovered.index == counts.index
    assert recovered.counts == counts.counts
    assert recovered.events == counts.events == Counter({2: 3, 1: 1})
    assert batch(recovered, APPLY, APPROVE, ACTIVATE, partition=2, offset=8) == []  # replayed: nothing new
    assert recovered.counts == counts.counts and recovered.events == counts.events


def test_a_batch_writes_one_entry_per_partition_split_beyond_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(eid, "ENTRY_ACCOUNTS", 2)
    counts = EidCounts()
    pids = [f"00819000000{n}" for n in range(5)]
    messages = [(p.encode(), message(f"a{p}", "applied", pid=p), n % 2) for n, p in enumerate(pids)]
    written = counts.record(counts.absorb_messages(messages), {0: 40, 1: 41})
    assert [(partition, key) for partition, key, _ in written] == [
        (0, "0:40:0"),
        (0, "0:40:1"),
        (1, "1:41:0"),
    ]
    rows = [row for _, _, entry in written for row in json.loads(entry)]
    assert sorted(r[0] for r in rows) == pids
    at = counts.index[pids[0]][3]
    assert rows[0][1:7] == ["008", 1, "applied", at, f"a{pids[0]}", 1] and len(bytes.fromhex(rows[0][7])) == 8


def test_recovery_reads_the_table_written_before_envelopes() -> None:
    # One entry per account, keyed by its personal ID, its value the account's list (with its partition).
    at = parse_event(ACTIVATE).at_us
    old = {PID: ["008", 1, "activated", at, "e3", 3, 2]}
    counts = EidCounts(json.loads(json.dumps(old)))
    counts.rebuild()
    assert totals(counts) == {"008|1|activated": 1} and counts.events == Counter({2: 3})
    batch(counts, APPROVE, partition=2)  # a replay of an older event: dropped
    assert counts.events == Counter({2: 3}) and counts.dropped["out_of_date"] == 1


def test_snapshot_reports_the_owned_partitions_only_and_no_zeros() -> None:
    counts = EidCounts({})
    feed(counts, APPLY, APPROVE, partition=3)
    body = counts.snapshot_body("worker-1", [3, 4])
    assert body["worker"] == "worker-1" and isinstance(body["ts_ms"], int)
    assert body["partitions"] == {
        "3": {"events": 2, "counts": {"008|1|approved": 1}},
        "4": {"events": 0, "counts": {}},
    }


def test_readers_keep_the_newest_snapshot_of_each_partition() -> None:
    old = {"ts_ms": 1, "partitions": {"0": {"events": 5, "counts": {"008|1|applied": 5}}}}
    new = {"ts_ms": 2, "partitions": {"0": {"events": 7, "counts": {"008|1|applied": 6}}}}
    other = {"ts_ms": 1, "partitions": {"1": {"events": 1, "counts": {"052|2|activated": 1}}}}
    latest = latest_partitions([new, other, old])
    assert sum_snapshots(latest) == (8, Counter({"008|1|applied": 6, "052|2|activated": 1}))


class _TP(NamedTuple):
    topic: str
    partition: int


class _Consumer:
    """The two methods of faust's consumer `rewind_uncommitted` uses, recording the seeks."""

    def __init__(self, committed: dict[_TP, int | None]) -> None:
        self.committed = committed
        self.seeks: list[tuple[_TP, int]] = []

    async def seek_to_committed(self) -> dict[_TP, int | None]:
        return self.committed

    async def seek(self, tp: _TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def test_partitions_with_no_committed_offset_are_read_again_from_the_start() -> None:
    # faust drops what a fetch returned during a rebalance and seeks back to the committed offsets; a
    # partition with none must go back to its start, or the dropped events are never counted.
    events, other = "p.eid.events", "p.results"
    consumer = _Consumer({_TP(events, 0): None, _TP(events, 1): 0, _TP(events, 2): 812, _TP(other, 0): None})
    rewind_uncommitted(consumer, events)
    rewind_uncommitted(consumer, events)  # once per consumer, however often an assignment installs it
    committed = asyncio.run(consumer.seek_to_committed())
    assert committed == consumer.committed
    assert consumer.seeks == [(_TP(events, 0), 0), (_TP(events, 1), 0)]


# --- at least once, with crashes: the counts are those of the accounts' final states ----------------------


def _lifecycle(rng: random.Random, pid: str, start: int) -> list[tuple[str, bytes]]:
    """A random legal history of one account, by the VNeID's own rules."""
    level = rng.choice((1, 2))
    tr = apply_for(level)
    state: AccountState = tr.to
    out = [(pid, message(f"{pid}-0", "applied", level=level, pid=pid, seconds=start))]
    for n in range(1, rng.randrange(1, 7)):
        legal = []
        for action in (Action.APPROVE, Action.VERIFY_IN_PERSON, Action.ACTIVATE, Action.LOCK, Action.UNLOCK):
            with contextlib.suppress(IllegalTransitionError):  # an illegal action is simply not taken
                legal.append(transition(state, action))
        step = rng.choice(legal)
        out.append(
            (
                pid,
                message(
                    f"{pid}-{n}",
                    step.to_status.value,
                    frm=step.from_status.value if step.from_status else None,
                    level=step.to.level,
                    pid=pid,
                    seconds=start + n,
                ),
            )
        )
        state = step.to
    return out


def _messages(rng: random.Random, events: list[tuple[str, bytes]]) -> list[tuple[bytes | None, bytes, Any]]:
    """Events as messages of one partition: envelopes of random sizes (a popsync connector's), and now and
    then one event alone, keyed by its personal ID (another producer's)."""
    out: list[tuple[bytes | None, bytes, Any]] = []
    at = 0
    while at < len(events):
        size = rng.randrange(1, 30)
        if size == 1 and rng.random() < 0.5:
            pid, value = events[at]
            out.append((pid.encode(), value, None))
        else:
            lines = [value for _, value in events[at : at + size]]
            out.append((None, envelope_value(lines), [(HEADER_ENVELOPE, str(len(lines)).encode())]))
        at += size
    return out


@pytest.mark.parametrize("seed", range(8))
def test_replays_and_restarts_never_change_the_counts(seed: int) -> None:
    rng = random.Random(seed)
    histories = [_lifecycle(rng, f"0081900{i:05d}", rng.randrange(1000)) for i in range(300)]
    oracle: Counter[str] = Counter()
    for history in histories:
        last = parse_event(history[-1][1])
        oracle[f"008|{last.level}|{last.status}"] += 1
    # One partition per account (by key), each account's events in order, accounts interleaved.
    partitions: list[list[tuple[str, bytes]]] = [[] for _ in range(3)]
    for i, history in enumerate(histories):
        partitions[i % 3].extend(history)
    for part in partitions:
        rng.shuffle(part)
        part.sort(key=lambda kv: parse_event(kv[1]).at_us)  # back in time order per account
    # At least once, not always in order: the connector re-sends windows it had sent (in envelopes again),
    # some events come after later ones of their account; a worker crashes and restarts from its committed
    # offset with the table as its changelog had it somewhere between the last commit and what was
    # processed (faust flushes the changelog before it commits an offset).
    changelog: list[tuple[str, str]] = []
    counts = EidCounts()
    for p, part in enumerate(partitions):
        stream = list(part)
        for _ in range(5):
            at = rng.randrange(len(stream))
            stream[at:at] = stream[max(0, at - rng.randrange(1, 40)) : at]
        for _ in range(5):  # faust delivering a message after later ones (around a rebalance)
            late = stream.pop(rng.randrange(len(stream) - 1))
            stream.insert(rng.randrange(len(stream)), late)
        topic = _messages(rng, stream)
        committed, at_commit = 0, len(changelog)
        position = 0
        while position < len(topic):
            end = min(len(topic), position + rng.randrange(1, 8))
            events = [
                (k, v, p)
                for key, value, headers in topic[position:end]
                for k, v in envelope_events(key, value, headers)
            ]
            written = counts.record(counts.absorb_messages(events), {p: end - 1})
            changelog.extend((key, entry) for _, key, entry in written)
            if rng.random() < 0.5:
                committed, at_commit = end, len(changelog)
            position = end
            if rng.random() < 0.1:
                # SIGKILL: the entries come back in changelog order, later ones of a key replacing earlier
                cut = rng.randrange(at_commit, len(changelog) + 1)
                del changelog[cut:]
                counts = EidCounts(json.loads(json.dumps(dict(changelog))))
                counts.rebuild()
                position = committed
    assert totals(counts) == oracle
    assert sum(counts.events.values()) == sum(len(h) for h in histories)


# --- the faust side, with stand-ins: what faust did not deliver is read back -----------------------------


class _Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class _Event(NamedTuple):
    message: _Message


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int | None]] = []

    async def send(self, topic: str, key: bytes, value: bytes, partition: int | None, *_: Any) -> None:
        self.sent.append((topic, key, value, partition))


class _FaustConsumer:
    def __init__(self, ends: dict[int, int]) -> None:
        self.ends = ends
        self.seeks: list[tuple[int, int]] = []

    async def highwaters(self, *tps: Any) -> dict[Any, int]:
        return {tp: self.ends[tp.partition] for tp in tps}

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp.partition, offset))


class _Table:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog_topic = self

    def get_topic_name(self) -> str:
        return "p-eid-accounts-changelog"


class _Signal:
    def connect(self, receiver: Any) -> None:
        pass


class _Faust:
    def __init__(self, ends: dict[int, int]) -> None:
        self.producer = _Producer()
        self.consumer = _FaustConsumer(ends)
        self.on_partitions_assigned = _Signal()


TOPICS = TopicNames("p")


def _envelope(*lines: bytes) -> tuple[None, bytes, list[tuple[str, bytes]]]:
    return None, envelope_value(lines), [(HEADER_ENVELOPE, str(len(lines)).encode())]


def _counter(
    topic: dict[int, tuple[None, bytes, list[tuple[str, bytes]]]], ends: dict[int, int]
) -> tuple[eid.EidCounter, GapGuard, _Faust, list[tuple[int, int, int]]]:
    """A counter over one partition (2) whose messages by offset are `topic`, behind the agent's gap guard;
    the reads the guard asks for."""
    app = _Faust(ends)
    reads: list[tuple[int, int, int]] = []

    async def read(name: str, partition: int, start: int, end: int) -> list[Fetched]:
        assert name == TOPICS.eid_events
        reads.append((partition, start, end))
        return [
            Fetched(name, partition, offset, *topic[offset], timestamp=0.0)
            for offset in range(start, end)
            if offset in topic
        ]

    counter = eid.EidCounter(app, TOPICS, _Table(), "worker-1")  # type: ignore[arg-type]
    counter.owned = frozenset({2})
    guard = GapGuard(app, [TOPICS.eid_events], read, "count-eid")
    return counter, guard, app, reads


def test_a_message_faust_skipped_before_a_batch_is_read_back_and_counted_with_it() -> None:
    topic = {37: _envelope(APPLY, APPROVE), 38: _envelope(ACTIVATE)}
    counter, guard, app, reads = _counter(topic, {2: 39})
    frontier = guard.frontiers[TOPICS.eid_events]
    frontier.seeked({TP(TOPICS.eid_events, 2): 37})  # faust sought to the committed offset 37 …
    batch_38 = [_Event(_Message(TOPICS.eid_events, 2, 38, *topic[38]))]  # … and delivered 38 first
    asyncio.run(guard.process(batch_38, counter.process))
    assert reads == [(2, 37, 38)]
    assert totals(counter.state) == {"008|1|activated": 1} and counter.state.events[2] == 3
    assert [(key, partition) for _, key, _, partition in app.producer.sent] == [(b'"2:38:0"', 2)]


def test_a_partition_that_stalls_below_its_end_is_read_back_and_faust_sent_back_to_it() -> None:
    topic = {13: _envelope(APPLY), 14: _envelope(APPROVE), 15: _envelope(ACTIVATE)}
    counter, guard, app, reads = _counter(topic, {2: 16})
    frontier = guard.frontiers[TOPICS.eid_events]
    frontier.seeked({TP(TOPICS.eid_events, 2): 13}, now=time.monotonic() - guard.stall_s)
    guard.idle_since = time.monotonic() - guard.stall_s  # the agent has had nothing to do since
    guard.settled_since = time.monotonic() - guard.stall_s  # and faust neither rebalanced nor recovered
    asyncio.run(guard.catch_up(counter.process))
    assert reads == [(2, 13, 16)]
    assert app.consumer.seeks == [(2, 13)]  # faust delivers them again (replays) and commits past them
    assert totals(counter.state) == {"008|1|activated": 1} and counter.state.events[2] == 3
    assert frontier.next[2] == 16
    asyncio.run(guard.catch_up(counter.process))  # caught up: nothing more
    assert len(reads) == 1
    replay = [_Event(_Message(TOPICS.eid_events, 2, offset, *topic[offset])) for offset in (13, 14, 15)]
    asyncio.run(guard.process(replay, counter.process))  # counted already: passed over
    assert counter.state.events[2] == 3 and guard.replays_skipped == 3 and len(reads) == 1
    frontier.seeked({TP(TOPICS.eid_events, 2): 13})  # a rebalance: replays are absorbed as duplicates
    asyncio.run(guard.process(replay, counter.process))
    assert counter.state.events[2] == 3 and counter.state.dropped == {"duplicate": 3}
