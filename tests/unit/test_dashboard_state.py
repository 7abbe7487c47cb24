"""The dashboard's state (popsync.dashboard.state): figures, texts, history, consumers, incremental reads."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from popsync.collector import RecordResult
from popsync.dashboard.state import RunView
from popsync.report import report_line
from schemas.outcomes import RECORD_OUTCOMES, is_synced

pytestmark = pytest.mark.unit

INS = ("insurance", "008")
LAB = ("labour", "052")


class CountingDict(dict[str, RecordResult]):
    """A results dict that counts the keys and the values its readers walk through."""

    def __init__(self) -> None:
        super().__init__()
        self.walked: Counter[str] = Counter()

    def _count(self, kind: str, entries: Iterator[Any]) -> Iterator[Any]:
        for entry in entries:
            self.walked[kind] += 1
            yield entry

    def __iter__(self) -> Iterator[str]:
        return self._count("keys", super().__iter__())

    def __reversed__(self) -> Iterator[str]:
        return self._count("keys", super().__reversed__())

    def values(self) -> Any:
        return _Counted(self, "values", super().values())

    def items(self) -> Any:
        return _Counted(self, "items", super().items())


class _Counted:
    def __init__(self, owner: CountingDict, kind: str, view: Any) -> None:
        self.owner, self.kind, self.view = owner, kind, view

    def __len__(self) -> int:
        return len(self.view)

    def __iter__(self) -> Iterator[Any]:
        return self.owner._count(self.kind, iter(self.view))

    def __reversed__(self) -> Iterator[Any]:
        return self.owner._count(self.kind, reversed(self.view))


class FakeCollector:
    """What `popsync.collector.Collector` keeps, fed by hand the way its `_result` does."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: dict[str, RecordResult] = CountingDict()
        self.per_source: Counter[tuple[str, str]] = Counter()
        self.synced_per_source: Counter[tuple[str, str]] = Counter()
        self.rejected: dict[str, dict[str, Any]] = {}

    def add(self, source: tuple[str, str], record_id: str, outcome: str, lag_ms: int = 100) -> None:
        key = f"{source[0]}|{source[1]}|{record_id}"
        with self.lock:
            previous = self.results.get(key)
            if previous is None:
                self.per_source[source] += 1
            elif is_synced(previous.outcome):
                self.synced_per_source[source] -= 1
            if is_synced(outcome):
                self.synced_per_source[source] += 1
            self.results[key] = RecordResult(outcome, (), lag_ms)

    def add_many(self, source: tuple[str, str], start: int, **outcomes: int) -> int:
        n = start
        for name, count in outcomes.items():
            outcome = name if name in ("cleaned", "corrected") else f"unsynced/{name}"
            for _ in range(count):
                self.add(source, f"r{n}", outcome)
                n += 1
        return n


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def view_of(collector: FakeCollector, **kwargs: Any) -> tuple[RunView, Clock]:
    clock = Clock()
    return RunView(collector, clock=clock, **kwargs), clock


def source(snapshot: dict[str, Any], src: tuple[str, str]) -> dict[str, Any]:
    return next(s for s in snapshot["sources"] if (s["sector"], s["province"]) == src)


def test_empty_view_lists_the_announced_sources_at_zero_and_is_json() -> None:
    view, _ = view_of(FakeCollector(), sources=[INS, LAB])
    snap = view.snapshot()
    json.dumps(snap)
    assert snap["status"] == "waiting"
    assert [s["id"] for s in snap["sources"]] == ["insurance-008", "labour-052"]
    ins = source(snap, INS)
    assert (ins["reconciled"], ins["synced"], ins["unsynced"], ins["published"]) == (0, 0, 0, None)
    assert (
        ins["texts"]["report_line"]
        == "Bảo hiểm (008): 0/0 bản ghi đã làm sạch, đạt 0,00%; chưa đồng bộ 0 (0,00%)"
    )
    assert snap["consumers"] == {
        "available": False,
        "error": None,
        "partitions": [],
        "counts": {"OK": 0, "WARN": 0, "STOP": 0, "STALL": 0, "REWIND": 0},
    }


def test_figures_and_seeds_texts_match_the_report() -> None:
    c = FakeCollector()
    c.add_many(INS, 0, cleaned=11_730, corrected=100, mismatch=60, not_found=40, duplicate=10)
    view, clock = view_of(c)
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    json.dumps(snap)
    ins = source(snap, INS)
    assert (ins["reconciled"], ins["synced"], ins["unsynced"]) == (11_940, 11_830, 110)
    # total unknown: the denominator is what was reconciled
    assert ins["texts"]["ratio"] == "11.830/11.940"
    assert ins["texts"]["percent"] == "99,08%"
    line = {"sector": "insurance", "province": "008", "total": 11_940, "synced": 11_830, "unsynced": 110}
    assert ins["texts"]["report_line"] == report_line(line)
    counts = {o["outcome"]: o["count"] for o in ins["outcomes"]}
    assert list(counts) == [o.value for o in RECORD_OUTCOMES]
    assert counts["cleaned"] == 11_730 and counts["unsynced/mismatch"] == 60 and counts["unsynced/moved"] == 0
    mismatch = next(o for o in ins["outcomes"] if o["outcome"] == "unsynced/mismatch")
    assert (mismatch["label"], mismatch["count_text"], mismatch["share_text"]) == (
        "thông tin chưa khớp",
        "60",
        "0,50%",
    )
    assert snap["run"]["texts"]["reconciled"] == "11.940"


def test_published_totals_give_the_seeds_denominator_pending_and_done() -> None:
    c = FakeCollector()
    published: dict[tuple[str, str], int] = {}
    view, clock = view_of(c, totals=lambda: published, sources=[INS])
    n = c.add_many(INS, 0, cleaned=9_000, mismatch=100)
    clock.now += 1
    view.sample()
    assert source(view.snapshot(), INS)["pending"] is None
    assert view.snapshot()["status"] == "running"

    published[INS] = 12_000
    clock.now += 1
    view.sample()
    ins = source(view.snapshot(), INS)
    assert (ins["published"], ins["pending"], ins["done"]) == (12_000, 2_900, False)
    assert ins["texts"]["ratio"] == "9.000/12.000"
    assert ins["texts"]["percent"] == "75,00%"
    assert ins["shares"]["synced"] == pytest.approx(0.75)

    c.add_many(INS, n, cleaned=2_730, corrected=100, not_found=70)
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    ins = source(snap, INS)
    assert (ins["pending"], ins["done"], snap["status"]) == (0, True, "done")
    assert ins["texts"]["report_line"] == (
        "Bảo hiểm (008): 11.830/12.000 bản ghi đã làm sạch, đạt 98,58%; chưa đồng bộ 170 (1,42%)"
    )
    assert snap["run"]["published"] == 12_000 and snap["run"]["pending"] == 0


def test_sources_seen_in_results_or_totals_join_the_page() -> None:
    c = FakeCollector()
    view, clock = view_of(c, totals=lambda: {LAB: 5})
    c.add(INS, "a", "cleaned")
    clock.now += 1
    view.sample()
    assert [s["id"] for s in view.snapshot()["sources"]] == ["insurance-008", "labour-052"]
    assert source(view.snapshot(), LAB)["pending"] == 5
    assert view.snapshot()["run"]["pending"] is None, "unknown while one source's total is"


def test_rejected_and_collector_error_are_shown() -> None:
    c = FakeCollector()
    c.rejected["file:3"] = {"reason": "not JSON"}
    view, clock = view_of(c)
    c.error = RuntimeError("broker gone")  # type: ignore[attr-defined]
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    assert snap["run"]["rejected"] == 1
    assert "broker gone" in snap["collector_error"]


def test_each_sample_reads_only_the_records_decided_since_the_last_one() -> None:
    c = FakeCollector()
    view, clock = view_of(c)
    results = c.results
    assert isinstance(results, CountingDict)
    for i in range(1_000):
        c.add(INS, f"r{i}", "cleaned", lag_ms=10 + i % 100)  # lags 10..109
    clock.now += 1
    view.sample()
    assert results.walked == {"keys": 1_000, "values": 1_000}
    for i in range(1_000, 1_050):
        c.add(INS, f"r{i}", "unsynced/not_found", lag_ms=5_000 + i)
    c.add(INS, "r3", "cleaned", lag_ms=9)  # a replay overwrites in place: not new
    clock.now += 2
    view.sample()
    assert results.walked == {"keys": 1_050, "values": 1_050}, "the second sample walked the 50 new only"
    first, second = view.snapshot()["history"]
    assert (first["decided"], first["records_per_s"]) == (1_000, 1_000.0)
    assert (first["lag_p50_ms"], first["lag_p95_ms"]) == (59, 104)
    # the second interval's lags are its own records' only
    assert (second["decided"], second["records_per_s"]) == (50, 25.0)
    assert (second["lag_p50_ms"], second["lag_p95_ms"]) == (6_024, 6_047)
    ins = source(view.snapshot(), INS)
    assert {o["outcome"]: o["count"] for o in ins["outcomes"] if o["count"]} == {
        "cleaned": 1_000,
        "unsynced/not_found": 50,
    }
    # nothing new: nothing walked, no lag for the interval
    clock.now += 1
    view.sample()
    assert results.walked == {"keys": 1_050, "values": 1_050}
    third = view.snapshot()["history"][-1]
    assert (third["decided"], third["lag_p50_ms"], third["lag_p95_ms"]) == (0, None, None)
    run = view.snapshot()["run"]
    assert run["lag_p50_ms"] == 6_024, "the latest known lag stays shown"
    assert run["records_per_s"] == pytest.approx(1_050 / 4)
    assert run["avg_records_per_s"] == pytest.approx(1_050 / 3)


def test_history_is_a_ring_buffer_of_history_s() -> None:
    c = FakeCollector()
    view, clock = view_of(c, history_s=5, interval_s=1.0)
    for i in range(12):
        c.add(INS, f"r{i}", "cleaned")
        clock.now += 1
        view.sample()
    history = view.snapshot()["history"]
    assert len(history) == 5
    assert [h["t"] for h in history] == [8.0, 9.0, 10.0, 11.0, 12.0]


def test_no_records_for_ten_samples_is_idle_while_totals_are_unknown() -> None:
    c = FakeCollector()
    view, clock = view_of(c)
    c.add(INS, "a", "cleaned")
    for _ in range(11):
        clock.now += 1
        view.sample()
    assert view.snapshot()["status"] == "idle"


@dataclass
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int
    lag: int
    seconds_behind: float | None
    status: str


class FakeMonitor:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.fail: Exception | None = None

    def snapshot(self) -> list[Any]:
        if self.fail is not None:
            raise self.fail
        return self.rows


def test_consumer_status_from_a_lag_monitor() -> None:
    monitor = FakeMonitor(
        [
            PartitionLag("g", "t.records.labour", 1, 90, 100, 10, 1.234, "WARN"),
            PartitionLag("g", "t.records.insurance", 0, 50, 50, 0, 0.0, "OK"),
            {"group": "g", "topic": "t.records.insurance", "partition": 1, "committed": 5, "end": 905,
             "lag": 900, "seconds_behind": None, "status": "STALL"},
        ]
    )  # fmt: skip
    view, clock = view_of(FakeCollector(), lag_monitor=monitor)
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    json.dumps(snap)
    consumers = snap["consumers"]
    assert consumers["available"] and consumers["error"] is None
    assert [(p["topic"], p["partition"], p["status"]) for p in consumers["partitions"]] == [
        ("t.records.insurance", 0, "OK"),
        ("t.records.insurance", 1, "STALL"),
        ("t.records.labour", 1, "WARN"),
    ]
    assert consumers["partitions"][2]["seconds_behind"] == 1.2
    assert consumers["counts"] == {"OK": 1, "WARN": 1, "STOP": 0, "STALL": 1, "REWIND": 0}
    assert snap["history"][-1]["consumer_lag"] == 910

    # LagMonitor keeps its last snapshot when a poll fails and tells why in last_error
    monitor.last_error = "polling 127.0.0.1:1 failed: NoBrokersAvailable"  # type: ignore[attr-defined]
    clock.now += 1
    view.sample()
    consumers = view.snapshot()["consumers"]
    assert len(consumers["partitions"]) == 3
    assert consumers["error"] == "polling 127.0.0.1:1 failed: NoBrokersAvailable"

    monitor.fail = ConnectionError("no broker")
    clock.now += 1
    view.sample()
    consumers = view.snapshot()["consumers"]
    assert consumers["available"] and consumers["partitions"] == []
    assert consumers["error"] == "ConnectionError: no broker"


def test_background_sampling_starts_and_stops() -> None:
    c = FakeCollector()
    view = RunView(c, interval_s=0.02).start()
    try:
        c.add(INS, "a", "cleaned")
        deadline = time.monotonic() + 5
        while source_count(view) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source_count(view) == 1
    finally:
        view.stop()
    assert not any(t.name == "popsync-dashboard-view" for t in threading.enumerate())


def source_count(view: RunView) -> int:
    snap = view.snapshot()
    return sum(s["reconciled"] for s in snap["sources"])
