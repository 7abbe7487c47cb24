"""e-ID counting (`streams.eid`): one count per account's latest state, however events are replayed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from mocks.vneid.exceptions import IllegalTransitionError
from mocks.vneid.lifecycle import AccountState, Action, apply_for, transition
from streams.eid import EidCounts, latest_partitions, parse_event, sum_snapshots
from streams.rewind import rewind_uncommitted

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
    assert counts.dropped == {"duplicate": 2, "out_of_date": 1}


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


def test_out_of_order_events_leave_the_newest_state() -> None:
    counts = EidCounts({})
    feed(counts, ACTIVATE, APPLY, APPROVE)
    assert totals(counts) == {"008|1|activated": 1}
    assert counts.dropped["out_of_date"] == 2


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
    assert changed[other][-1] == 1  # the partition is kept with the value
    assert counts.absorb_messages([(PID.encode(), APPROVE, 0)]) == {}


def test_malformed_events_are_dropped_and_the_batch_goes_on() -> None:
    counts = EidCounts({})
    feed(counts, b"garbage", APPLY)
    assert totals(counts) == {"008|1|applied": 1}
    assert counts.dropped["malformed"] == 1


def test_recovery_rebuilds_the_same_counts_from_the_table() -> None:
    store: dict[str, list[Any]] = {}
    counts = EidCounts(store)
    feed(counts, APPLY, APPROVE, partition=2)
    feed(counts, message("x", "applied", pid="008190000001", level=2), partition=1, key="008190000001")
    # the changelog holds the table as JSON: a new process reads it back as lists
    recovered = EidCounts(json.loads(json.dumps(store)))
    recovered.rebuild()
    assert recovered.counts == counts.counts
    assert recovered.events == counts.events == Counter({2: 2, 1: 1})
    feed(recovered, APPLY, APPROVE, partition=2)  # replayed after the restart: nothing changes
    assert recovered.counts == counts.counts and recovered.events == counts.events


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
    # At least once: the connector re-sends windows it had sent; a worker crashes and restarts from its
    # committed offset with the table as its changelog last had it.
    store: dict[str, list[Any]] = {}
    counts = EidCounts(store)
    for p, part in enumerate(partitions):
        stream = list(part)
        for _ in range(5):
            at = rng.randrange(len(stream))
            stream[at:at] = stream[max(0, at - rng.randrange(1, 40)) : at]
        committed, at_commit = 0, json.dumps(store)
        position = 0
        while position < len(stream):
            end = min(len(stream), position + rng.randrange(1, 60))
            counts.absorb_messages((k.encode(), v, p) for k, v in stream[position:end])
            if rng.random() < 0.5:  # faust flushes the changelog, then commits the offset
                committed, at_commit = end, json.dumps(store)
            position = end
            if rng.random() < 0.1:
                # SIGKILL: restart from the committed offset with the changelog somewhere between the
                # commit and what was processed (the two ends are tried).
                changelog = at_commit if rng.random() < 0.5 else json.dumps(store)
                store = json.loads(changelog)
                counts = EidCounts(store)
                counts.rebuild()
                position = committed
    assert totals(counts) == oracle
    assert sum(counts.events.values()) == sum(len(h) for h in histories)
