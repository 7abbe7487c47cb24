"""Burrow's consumer-status rules and the seconds-behind estimate (`popsync.lag`), without a broker."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from kafka.structs import OffsetAndMetadata, TopicPartition

from popsync.lag import (
    SEVERITY,
    EndOffsetTable,
    Observation,
    PartitionLag,
    PartitionWindow,
    Status,
    evaluate,
    group_statuses,
    worst,
)
from popsync.lagwatch import LagMonitor

pytestmark = pytest.mark.unit

OK, WARN, STALL, STOP, REWIND = Status.OK, Status.WARN, Status.STALL, Status.STOP, Status.REWIND


def commits(*rows: tuple[float, int, int]) -> list[Observation]:
    """(time, committed offset, log-end offset) rows, oldest first."""
    return [Observation(t, offset, end) for t, offset, end in rows]


def case(
    expected: Status,
    offsets: list[int],
    ends: list[int],
    *,
    id: str,
    end: int | None = None,
    now: float = 3.0,
    recent: tuple[int, ...] = (),
) -> object:
    """A window of one commit a second from t=0 (offset, log end at the commit); the log end now
    defaults to the last commit's; `now` to the last commit's time for a window of four."""
    window = [Observation(float(t), o, e) for t, (o, e) in enumerate(zip(offsets, ends, strict=True))]
    return pytest.param(window, ends[-1] if end is None else end, now, recent, expected, id=id)


MOVING, BEHIND = [100, 110, 120, 130], [150, 160, 170, 180]
CASES = [
    # --- rule 1: no lag now
    case(OK, [], [], end=10, id="no-commits-yet"),
    case(OK, [100] * 4, [100] * 4, id="zero-lag-not-moving-is-OK"),
    case(OK, [100, 100, 100, 180], [150, 160, 170, 180], id="zero-lag-now-after-a-stalled-window"),
    case(OK, [100, 120, 90, 95], [150, 160, 170, 95], id="zero-lag-now-beats-an-unrecovered-rewind"),
    case(OK, [100], [150], end=100, now=99, id="zero-lag-now-beats-a-long-silence"),
    # --- rule 2: no commit for longer than the window spans (3 s here)
    case(STOP, MOVING, BEHIND, now=7, id="silent-longer-than-the-window-is-STOP"),
    case(WARN, MOVING, BEHIND, now=6, id="silent-exactly-as-long-as-the-window-is-not-yet-STOP"),
    case(STOP, MOVING, MOVING, end=180, now=7, id="STOP-even-though-lag-was-zero-in-the-window"),
    case(OK, MOVING, MOVING, end=180, now=7, recent=(130, 180), id="no-STOP-if-caught-up-recently"),
    case(STOP, [100, 120, 90, 95], BEHIND, now=7, id="STOP-beats-REWIND"),
    # --- rule 3: backwards
    case(REWIND, [100, 120, 90, 95], BEHIND, id="offset-went-backwards-is-REWIND"),
    case(REWIND, [100, 120, 50, 60], [100, 160, 170, 180], id="REWIND-beats-zero-lag-in-the-window"),
    case(OK, [100, 80, 110, 130], [150, 160, 170, 175], id="rewind-recovered-is-judged-by-the-other-rules"),
    case(WARN, [100, 80, 100, 100], [150, 160, 180, 190], id="back-at-the-old-offset-counts-as-recovered"),
    # --- rule 4: lag was zero at some commit
    case(OK, [100] * 4, [100, 150, 160, 170], id="zero-lag-in-the-window-is-OK-even-if-stalled"),
    case(OK, MOVING, [110, 110, 140, 170], id="zero-lag-in-the-window-is-OK-even-if-lag-grows"),
    # --- rule 6: stalled
    case(STALL, [100] * 4, BEHIND, id="committing-the-same-offset-with-lag-is-STALL"),
    case(STALL, [100] * 4, [150] * 4, id="stalled-with-constant-lag-is-STALL"),
    # --- rule 7: lag never decreasing while offsets move
    case(WARN, MOVING, [110, 130, 150, 170], id="lag-growing-every-commit-while-committing-is-WARN"),
    case(WARN, MOVING, [120, 130, 140, 150], id="lag-flat-while-committing-is-WARN"),
    # --- rule 8: catching up
    case(OK, [100, 120, 140, 160], [140, 150, 160, 170], id="lag-shrinking-is-OK"),
    case(OK, [100, 110, 125, 130], [110, 130, 140, 170], id="lag-shrinking-once-in-the-window-is-OK"),
]


@pytest.mark.parametrize(("window", "end", "now", "recent_ends", "expected"), CASES)
def test_burrow_rules_on_a_full_window(
    window: list[Observation], end: int, now: float, recent_ends: tuple[int, ...], expected: Status
) -> None:
    assert evaluate(window, end=end, now=now, recent_ends=recent_ends, window=4) is expected


STALLED = commits((0, 100, 150), (1, 100, 160), (2, 100, 170))
GROWING = commits((0, 100, 110), (1, 110, 130), (2, 120, 150))
REWOUND = commits((0, 100, 150), (1, 90, 160), (2, 95, 170))


@pytest.mark.parametrize(
    ("window", "end", "now", "stop_after", "expected"),
    [
        pytest.param(STALLED, 170, 2, 0.0, OK, id="stalled-but-window-not-full-is-OK"),
        pytest.param(GROWING, 150, 2, 0.0, OK, id="lag-growing-but-window-not-full-is-OK"),
        pytest.param(REWOUND, 170, 2, 0.0, REWIND, id="rewind-counts-before-the-window-is-full"),
        pytest.param(STALLED, 170, 5, 0.0, STOP, id="silence-counts-before-the-window-is-full"),
        pytest.param(commits((0, 100, 150)), 170, 2, 3.0, OK, id="one-commit-is-not-STOP-within-stop_after"),
        pytest.param(commits((0, 100, 150)), 170, 3.5, 3.0, STOP, id="one-commit-is-STOP-after-stop_after"),
        pytest.param(STALLED, 170, 4.5, 3.0, OK, id="stop_after-outlasts-a-short-window-span"),
    ],
)
def test_a_window_not_full_yet_is_only_judged_on_rewinds_and_silence(
    window: list[Observation], end: int, now: float, stop_after: float, expected: Status
) -> None:
    assert evaluate(window, end=end, now=now, window=4, stop_after=stop_after) is expected


def test_without_a_window_size_whatever_is_there_is_judged() -> None:
    assert evaluate(STALLED, end=170, now=2) is STALL
    assert evaluate(GROWING, end=150, now=2) is WARN


def test_observation_lag_never_negative() -> None:
    """The end offset can be sampled just before a commit that passes it."""
    assert Observation(0, 120, 100).lag == 0
    assert Observation(0, 100, 120).lag == 20


# --------------------------------------------------------------------------- group status


def test_severity_follows_burrows_order() -> None:
    assert SEVERITY == (OK, WARN, STOP, STALL, REWIND)
    assert set(SEVERITY) == set(Status)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param([], OK, id="none-is-OK"),
        pytest.param([OK, OK], OK, id="all-OK"),
        pytest.param([OK, WARN, OK], WARN, id="one-WARN"),
        pytest.param([WARN, STOP], STOP, id="STOP-over-WARN"),
        pytest.param([STOP, STALL, OK], STALL, id="STALL-over-STOP"),
        pytest.param([STALL, REWIND], REWIND, id="REWIND-over-all"),
    ],
)
def test_worst(statuses: list[Status], expected: Status) -> None:
    assert worst(statuses) is expected


def test_group_status_is_its_worst_partition() -> None:
    def row(group: str, partition: int, status: Status) -> PartitionLag:
        return PartitionLag(group, "t", partition, 0, 10, 10, 1.0, status)

    rows = [row("a", 0, OK), row("a", 1, STALL), row("b", 0, OK), row("c", 0, WARN), row("c", 1, STOP)]
    assert group_statuses(rows) == {"a": STALL, "b": OK, "c": STOP}


# --------------------------------------------------------------------------- the window of one partition


def test_a_poll_counts_as_a_commit_when_owned_or_moved() -> None:
    w = PartitionWindow(3)
    w.observe(0, 100, 150, committing=False)  # the first poll: the only commit known
    w.observe(1, 100, 160, committing=False)  # nobody owns it and it did not move: no commit
    assert [c.timestamp for c in w.commits] == [0]
    w.observe(2, 110, 170, committing=False)  # it moved: someone committed
    w.observe(3, 110, 180, committing=True)  # a live owner keeps committing
    w.observe(4, 110, 190, committing=True)
    assert [(c.timestamp, c.offset) for c in w.commits] == [(2, 110), (3, 110), (4, 110)]
    assert list(w.recent_ends) == [170, 180, 190]
    assert (w.committed, w.end) == (110, 190)


def test_a_stuck_owner_is_STALL_and_goes_STOP_once_nobody_owns_the_partition() -> None:
    w = PartitionWindow(3)
    for t, end in enumerate((100, 100, 100)):
        w.observe(t, 100, end, committing=True)
    assert w.status(2, stop_after=2) is OK  # caught up
    for t, end in ((3, 120), (4, 140), (5, 160)):
        w.observe(t, 100, end, committing=True)  # alive, assigned, not moving
    assert w.status(5, stop_after=2) is STALL
    for t, end in ((6, 170), (7, 180), (8, 190)):
        w.observe(t, 100, end, committing=False)  # left the group: no commits at all
        assert w.status(t, stop_after=2) is (STALL if t < 8 else STOP)


def test_window_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PartitionWindow(0)


# --------------------------------------------------------------------------- seconds behind


def table(*points: tuple[int, float], size: int = 120) -> EndOffsetTable:
    t = EndOffsetTable(size)
    for end, at in points:
        t.add(end, at)
    return t


@pytest.mark.parametrize(
    ("points", "committed", "now", "expected"),
    [
        pytest.param([(100, 10.0)], 100, 50.0, 0.0, id="no-lag-is-zero-even-with-one-sample"),
        pytest.param([(100, 10.0)], 90, 50.0, None, id="one-sample-cannot-tell"),
        pytest.param([(100, 10.0), (200, 20.0)], 250, 30.0, 0.0, id="ahead-of-the-log-end-is-zero"),
        pytest.param([(100, 10.0), (200, 20.0)], 200, 30.0, 0.0, id="at-the-log-end-is-zero"),
        pytest.param([(100, 10.0), (200, 20.0)], 150, 30.0, 15.0, id="interpolated-between-samples"),
        pytest.param([(100, 10.0), (200, 20.0), (260, 30.0)], 200, 31.0, 11.0, id="exactly-on-a-sample"),
        pytest.param([(100, 10.0), (200, 20.0), (260, 30.0)], 230, 31.0, 6.0, id="in-the-newest-segment"),
        pytest.param([(100, 10.0), (200, 20.0)], 50, 30.0, 25.0, id="older-than-the-table-extrapolated"),
        pytest.param(
            [(0, 0.0), (10, 10.0), (10, 20.0), (20, 30.0)],
            10,
            40.0,
            20.0,
            id="idle-log-end-counts-from-the-end-of-the-idle-time",
        ),
        pytest.param(
            [(0, 0.0), (10, 10.0), (10, 20.0), (20, 30.0)],
            5,
            40.0,
            35.0,
            id="before-an-idle-time-interpolated-on-its-own-slope",
        ),
        pytest.param(
            [(100, 10.0), (100, 20.0), (150, 25.0)],
            120,
            30.0,
            8.0,
            id="after-an-idle-time-interpolated-on-its-own-slope",
        ),
        pytest.param([(100, 10.0), (200, 20.0)], 150, 12.0, 0.0, id="never-negative"),
    ],
)
def test_seconds_behind(
    points: list[tuple[int, float]], committed: int, now: float, expected: float | None
) -> None:
    got = table(*points).seconds_behind(committed, now)
    assert got == (None if expected is None else pytest.approx(expected))


def test_a_table_of_one_idle_level_says_at_least_since_its_oldest_sample() -> None:
    t = table((100, 10.0), (100, 20.0))
    assert t.seconds_behind(100, 30.0) == 0.0
    # The log end never moved while sampled: no trend to follow back, the oldest sample is a lower bound.
    assert t.time_at(90) == 10.0
    assert t.seconds_behind(90, 30.0) == 20.0


def test_an_idle_log_end_keeps_one_flat_segment() -> None:
    t = table((0, 0.0), (10, 10.0), (10, 15.0), (10, 20.0), (10, 25.0))
    assert list(t.points) == [(0, 0.0), (10, 10.0), (10, 25.0)]


def test_samples_out_of_order_are_ignored_and_a_shrinking_log_restarts_the_table() -> None:
    t = table((100, 10.0), (200, 20.0), (300, 15.0), (300, 20.0))
    assert list(t.points) == [(100, 10.0), (200, 20.0)]
    t.add(5, 30.0)  # the topic was recreated
    assert list(t.points) == [(5, 30.0)]


def test_the_table_keeps_its_newest_samples() -> None:
    t = table((100, 10.0), (200, 20.0), (300, 30.0), (400, 40.0), size=3)
    assert list(t.points) == [(200, 20.0), (300, 30.0), (400, 40.0)]
    assert t.seconds_behind(100, 50.0) == pytest.approx(40.0)  # extrapolated along the kept trend


def test_a_table_needs_two_samples() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        EndOffsetTable(1)


# --------------------------------------------------------------------------- the poller, on fake clients


class FakeCluster:
    """What LagMonitor asks kafka-python's admin client and consumer, answered from plain dicts."""

    def __init__(self) -> None:
        self.ends: dict[TopicPartition, int] = {}
        self.offsets: dict[str, dict[TopicPartition, int]] = {}
        self.members: dict[str, list[object]] = {}  # group -> member assignments (dict, or raw bytes)
        self.closed = 0

    # admin
    def list_groups(self) -> list[dict[str, str]]:
        groups = [{"group_id": g, "protocol_type": "consumer", "group_type": "classic"} for g in self.offsets]
        return [*groups, {"group_id": "connect-x", "protocol_type": "connect", "group_type": "classic"}]

    def list_group_offsets(
        self, specs: dict[str, None]
    ) -> dict[str, dict[TopicPartition, OffsetAndMetadata]]:
        return {
            g: {tp: OffsetAndMetadata(o, "", -1) for tp, o in self.offsets.get(g, {}).items()} for g in specs
        }

    def describe_groups(self, groups: list[str]) -> dict[str, dict[str, object]]:
        return {
            g: {"error": None, "members": [{"member_assignment": a} for a in self.members.get(g, [])]}
            for g in groups
        }

    # consumer
    def topics(self) -> set[str]:
        return {tp.topic for tp in self.ends}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.ends if tp.topic == topic}

    def end_offsets(self, partitions: list[TopicPartition], timeout_ms: int) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in partitions}

    def close(self) -> None:
        self.closed += 1


def assigned(*partitions: tuple[str, int]) -> dict[str, object]:
    return {"assigned_partitions": [{"topic": t, "partitions": [p]} for t, p in partitions], "user_data": ""}


T0, T1 = TopicPartition("popsync.records.insurance", 0), TopicPartition("popsync.records.insurance", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def fake_monitor(cluster: FakeCluster, clock: Clock, **kwargs: object) -> LagMonitor:
    options: dict[str, Any] = {"window": 3, "interval_s": 1.0, **kwargs}
    return LagMonitor("fake:9092", clock=clock, admin=cluster, consumer=cluster, **options)


def poll(monitor: LagMonitor, clock: Clock, seconds: float = 1.0) -> dict[tuple[str, int], PartitionLag]:
    clock.now += seconds
    return {(r.topic, r.partition): r for r in monitor.poll_once()}


def test_the_poller_sees_a_worker_stall_then_stop_then_recover() -> None:
    cluster, clock = FakeCluster(), Clock()
    cluster.ends = {T0: 100, T1: 100}
    cluster.offsets = {"popsync-demo": {T0: 100, T1: 100}}
    cluster.members = {
        "popsync-demo": [assigned(("popsync.records.insurance", 0), ("popsync.records.insurance", 1))]
    }
    monitor = fake_monitor(cluster, clock, group_prefix="popsync-")
    assert {r.status for r in poll(monitor, clock).values()} == {OK}
    for end in (120, 140, 160):  # records keep coming, the worker is assigned but stuck
        cluster.ends = {T0: end, T1: end}
        rows = poll(monitor, clock)
    assert {r.status for r in rows.values()} == {STALL}
    assert rows[(T0.topic, 0)].seconds_behind == pytest.approx(3.0)  # the log end was at 100 three polls ago
    cluster.members = {}  # the worker is gone
    statuses = [poll(monitor, clock)[(T0.topic, 0)].status for _ in range(3)]
    assert statuses == [STALL, STALL, STOP]  # silent for longer than the window's 2 s
    assert group_statuses(monitor.snapshot()) == {"popsync-demo": STOP}
    cluster.members = {"popsync-demo": [assigned((T0.topic, 0), (T0.topic, 1))]}
    cluster.offsets = {"popsync-demo": {T0: 160, T1: 160}}  # a new worker caught up
    rows = poll(monitor, clock)
    assert {(r.status, r.lag, r.seconds_behind) for r in rows.values()} == {(OK, 0, 0.0)}
    assert monitor.watched == ["popsync-demo"] and monitor.listed == ["popsync-demo"]  # not Connect's


class FakeReader:
    """A consumer without a group over record topics: offset o of T0 is an envelope of o % 3 + 1 records,
    every other message of T1 a record on its own; offsets 30-31 of T0 hold no message (markers)."""

    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends
        self.positions: dict[TopicPartition, int] = {}
        self.fetched = 0  # messages handed out: each one once per monitor

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {tp: self.positions.get(tp, 0) for tp in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        out: dict[TopicPartition, list[Any]] = {}
        for tp, at in self.positions.items():
            messages = []
            for offset in range(at, min(at + 7, self.ends[tp])):  # a few at a time
                if tp == T0 and offset in (30, 31):
                    continue
                headers = [("popsync-envelope", str(offset % 3 + 1).encode())] if tp == T0 else []
                messages.append(SimpleNamespace(offset=offset, headers=headers))
            self.positions[tp] = min(at + 7, self.ends[tp])
            self.fetched += len(messages)
            out[tp] = messages
        return out

    def close(self) -> None:
        pass


def test_the_registry_exports_exactly_the_contracted_metrics() -> None:
    cluster, clock = FakeCluster(), Clock()
    cluster.ends = {T0: 50, T1: 10}
    cluster.offsets = {"g": {T0: 20, T1: 10}}
    reader = FakeReader(cluster.ends)
    monitor = fake_monitor(cluster, clock, reader=reader)
    poll(monitor, clock)
    families = {m.name: m for m in monitor.registry.collect()}
    assert set(families) == {
        "popsync_consumer_lag_offsets",
        "popsync_consumer_lag_records",
        "popsync_consumer_lag_seconds",
        "popsync_consumer_status",
        "popsync_consumer_group_status",
    }
    p0 = {"group": "g", "topic": T0.topic, "partition": "0"}
    value = monitor.registry.get_sample_value
    assert value("popsync_consumer_lag_offsets", p0) == 30
    # the records of the 28 envelopes at offsets 20-49 (none at 30-31), not 30 messages
    waiting = sum(o % 3 + 1 for o in range(20, 50) if o not in (30, 31))
    assert value("popsync_consumer_lag_records", p0) == waiting == 57
    assert value("popsync_consumer_lag_records", {**p0, "partition": "1"}) == 0
    assert math.isnan(value("popsync_consumer_lag_seconds", p0) or 0.0)  # one sample: not estimable yet
    assert value("popsync_consumer_lag_seconds", {**p0, "partition": "1"}) == 0.0
    statuses = {s: value("popsync_consumer_status", {**p0, "status": s}) for s in Status}
    assert statuses == {OK: 1.0, WARN: 0.0, STALL: 0.0, STOP: 0.0, REWIND: 0.0}
    assert value("popsync_consumer_group_status", {"group": "g", "status": "OK"}) == 1.0
    cluster.ends[T0] = 53  # three more envelopes; the group commits up to 40
    cluster.offsets = {"g": {T0: 40, T1: 10}}
    fetched = reader.fetched
    poll(monitor, clock)
    assert value("popsync_consumer_lag_records", p0) == sum(o % 3 + 1 for o in range(40, 53))
    assert reader.fetched - fetched == 3  # only the new messages were read
    cluster.offsets = {"g": {T0: 20, T1: 10}}  # rewound below what is kept: counted again from there
    poll(monitor, clock)
    assert value("popsync_consumer_lag_records", p0) == waiting + sum(o % 3 + 1 for o in range(50, 53))
    cluster.offsets = {}  # the group's offsets expired: its series go away
    poll(monitor, clock)
    assert value("popsync_consumer_lag_offsets", p0) is None
    assert value("popsync_consumer_lag_records", p0) is None


def test_offsets_of_deleted_topics_and_unreadable_assignments() -> None:
    cluster, clock = FakeCluster(), Clock()
    gone = TopicPartition("deleted-topic", 0)
    cluster.ends = {T0: 100}
    cluster.offsets = {"g": {T0: 50, gone: 7}}
    cluster.members = {"g": [b"\x00\x09not-the-consumer-protocol"]}  # undecodable: presumed to hold all
    monitor = fake_monitor(cluster, clock, groups=["g"])
    for _ in range(4):
        rows = poll(monitor, clock)
    assert list(rows) == [(T0.topic, 0)]  # nothing to judge without a log end
    assert rows[(T0.topic, 0)].status is STALL  # held, not moving: not STOP
    assert monitor.listed == []  # a named group needs no listing
    monitor.close()
    assert cluster.closed == 2


def test_monitor_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        LagMonitor("x:1", window=1)
    with pytest.raises(ValueError, match="positive"):
        LagMonitor("x:1", interval_s=0)
    assert LagMonitor("x:1", window=10, interval_s=2.0).stop_after == 18.0
