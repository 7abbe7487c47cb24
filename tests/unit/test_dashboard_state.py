"""The dashboard's state (popsync.dashboard.state): figures, texts, history, consumers, incremental reads."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from popsync.collector import Collector, RecordResult
from popsync.dashboard.state import CollectorLike, RunView
from popsync.report import report_line
from popsync.summary import build_summary
from schemas.outcomes import RECORD_OUTCOMES, is_synced
from streams.chain_steps import apply_step, step

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


def view_of(collector: CollectorLike, **kwargs: Any) -> tuple[RunView, Clock]:
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
    records: int | None = None


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
            PartitionLag("g", "t.records.labour", 1, 90, 100, 10, 1.234, "WARN", records=2_340),
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
    # records behind (envelopes count their records), where the monitor counted them
    assert [p["records"] for p in consumers["partitions"]] == [None, None, 2_340]
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


# ---- linked procedures, the cleansing loop, records chains made ----------------------------------------

CIV = ("civil_status", "019")
CARDS = ("insurance", "019")
FIXABLE = ("unsynced/missing_fields", "unsynced/mismatch")
CHAIN_COUNTS = ("completed", "stalled", "in_progress")


def real_collector() -> Collector:
    """`popsync.collector.Collector` without its Kafka consumer: fed through its own `_result`."""
    c = Collector.__new__(Collector)
    c.results, c.rejected = CountingDict(), {}
    c.progress, c.chains, c.chain_progress = {}, {}, {}
    c.chain_records = c.chains_due = 0
    c.per_source, c.synced_per_source, c.unsynced_first = Counter(), Counter(), Counter()
    c.lock = threading.Lock()
    c.error = None
    return c


def feed(c: Collector, source: tuple[str, str], record_id: str, outcome: str, **extra: Any) -> None:
    """One result message, as the workers send it (version 1 unless told), through the collector."""
    body = {"sector": source[0], "province": source[1], "outcome": outcome, "fields": [],
            "published_ms": 1_000, "decided_ms": 1_200, **extra}  # fmt: skip
    with c.lock:
        c._result(f"{source[0]}|{source[1]}|{record_id}", body)


def chain_step(c: Collector, chain: str, kind: str, name: str, at_ms: int, ok: bool = True) -> None:
    body = step(chain, kind, chain.split("|")[0], name, at_ms, ok=ok)
    with c.lock:
        c.chains[chain] = apply_step(c.chains.get(chain), body)


def summary_of(c: Collector, cleansing: Any = ()) -> dict[str, Any]:
    with c.lock:
        return build_summary(
            "t", list(c.results), dict(c.results), 0, 1.0, cleansing=cleansing, chains=c.chains
        )


def page_figures(snap: dict[str, Any]) -> dict[str, Any]:
    """What the view says, in the summary's shapes (the cleansing entries without their times)."""
    return {
        "outcomes": {
            s["id"]: {o["outcome"]: o["count"] for o in s["outcomes"]}
            for s in snap["sources"]
            if s["reconciled"] and not s["made"]
        },
        # Records chains made (the cards) are the summary's `chain_cards`, not in its totals.
        "cards": {s["province"]: (s["made"], s["synced"]) for s in snap["sources"] if s["made"]},
        "chains": [
            {k: e[k] for k in ("province", "kind", "started", "completed", "stalled", "in_progress",
                               "duration_s")}
            for e in snap["chains"]
        ],
        "cleansing": [
            {k: e[k] for k in ("sector", "province", "tasks", "tasks_by_outcome", "republished", "fixed",
                               "fixed_by_outcome")}
            for e in snap["cleansing"]
        ],
    }  # fmt: skip


def summary_figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "outcomes": {f"{t['sector']}-{t['province']}": t["outcomes"] for t in summary["totals"]},
        "cards": {c["province"]: (c["cards"], c["cards_synced"]) for c in summary.get("chain_cards", [])},
        "chains": summary.get("chains", []),
        "cleansing": [
            {k: v for k, v in e.items() if k != "fix_time_s"} for e in summary.get("cleansing", [])
        ],
    }


def test_a_republished_fix_moves_its_outcome_and_counts_in_the_cleansing_loop() -> None:
    c = real_collector()
    n = 0
    for outcome, count in [("cleaned", 90), ("unsynced/missing_fields", 6), ("unsynced/mismatch", 4),
                           ("unsynced/deceased", 2)]:  # fmt: skip
        for _ in range(count):
            feed(c, LAB, f"r{n}", outcome)
            n += 1
    view, clock = view_of(c, cleansing=[LAB])
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    (loop,) = snap["cleansing"]  # a planned source with tasks shows before any fix
    assert (loop["tasks"], loop["republished"], loop["fixed"], loop["kinds"]) == (12, 0, 0, [])
    assert loop["tasks_by_outcome"] == {"unsynced/deceased": 2, "unsynced/mismatch": 4,
                                        "unsynced/missing_fields": 6}  # fmt: skip
    # Fixes: every missing field (r90..r95), one mismatch still unsynced, one fixed (r96, r97).
    for i in range(90, 96):
        feed(c, LAB, f"r{i}", "cleaned", version=2, decided_ms=5_000)
    feed(c, LAB, "r96", "corrected", version=2, decided_ms=6_000)
    feed(c, LAB, "r97", "unsynced/mismatch", version=2, decided_ms=6_000)
    feed(c, LAB, "r3", "cleaned")  # a replay of a first version: changes nothing
    # A record published, found unsynced and fixed between two samples: first seen at version 2.
    feed(c, LAB, "late", "unsynced/missing_fields")
    feed(c, LAB, "late", "cleaned", version=2, decided_ms=7_000)
    feed(c, LAB, "late", "unsynced/missing_fields")  # a late replay of version 1: ignored
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    assert page_figures(snap) == summary_figures(summary_of(c, cleansing=[LAB]))
    (loop,) = snap["cleansing"]
    assert (loop["tasks"], loop["republished"], loop["fixed"]) == (13, 9, 8)
    assert loop["texts"]["report_line"] == (
        "Làm sạch lại Người lao động (052): 8/13 bản ghi chưa đồng bộ đã được sửa, gửi lại và đồng bộ "
        "(61,54%): thông tin chưa khớp 1/4; thiếu trường thông tin 7/7"
    )
    assert [(k["outcome"], k["fixed_text"], k["tasks_text"], k["percent"]) for k in loop["kinds"]] == [
        ("unsynced/mismatch", "1", "4", "25,00%"),
        ("unsynced/missing_fields", "7", "7", "100,00%"),
    ]
    lab = source(snap, LAB)
    assert (lab["reconciled"], lab["synced"], lab["unsynced"]) == (103, 98, 5)
    # Only records a re-publication can still supersede stay watched: the mismatches still unsynced.
    assert sorted(view._watch_keys) == [f"labour|052|r{i}" for i in (97, 98, 99)]
    # A replay of the fix (a new but equal result object) changes nothing.
    feed(c, LAB, "r90", "cleaned", version=2, decided_ms=5_000)
    feed(c, LAB, "r97", "unsynced/mismatch", version=2, decided_ms=6_000)
    clock.now += 1
    view.sample()
    assert page_figures(view.snapshot()) == summary_figures(summary_of(c, cleansing=[LAB]))


def test_sources_without_a_plan_show_a_cleansing_panel_once_a_record_is_republished() -> None:
    c = real_collector()
    feed(c, INS, "a", "unsynced/mismatch")
    feed(c, LAB, "b", "unsynced/missing_fields")
    view, clock = view_of(c)
    clock.now += 1
    view.sample()
    assert view.snapshot()["cleansing"] == [], "no plan given, nothing re-published: no panel"
    feed(c, LAB, "b", "cleaned", version=2)
    clock.now += 1
    view.sample()
    assert [e["id"] for e in view.snapshot()["cleansing"]] == ["labour-052"]


def test_a_sample_after_fixes_walks_only_the_new_records() -> None:
    c = real_collector()
    results = c.results
    assert isinstance(results, CountingDict)
    for i in range(1_000):
        feed(c, LAB, f"r{i}", "unsynced/missing_fields" if i % 10 == 0 else "cleaned")
    view, clock = view_of(c)
    clock.now += 1
    view.sample()
    assert results.walked == {"keys": 1_000, "values": 1_000}
    assert len(view._watch_keys) == 100
    for i in range(0, 1_000, 20):
        feed(c, LAB, f"r{i}", "cleaned", version=2)
    feed(c, LAB, "new", "cleaned")
    clock.now += 1
    view.sample()
    assert results.walked == {"keys": 1_001, "values": 1_001}, "fixes are found by key, not by a walk"
    assert len(view._watch_keys) == 50
    (loop,) = view.snapshot()["cleansing"]
    assert (loop["tasks"], loop["republished"], loop["fixed"]) == (100, 50, 50)


def test_linked_procedures_per_province_and_kind_as_the_summary_counts_them() -> None:
    c = real_collector()
    view, clock = view_of(c)
    clock.now += 1
    view.sample()
    assert view.snapshot()["chains"] == [], "no chain: no panel"
    # Births 008: three registered; one completes with its card, one needs none, one waits.
    for i, took in enumerate((4_000, 2_000, None)):
        chain_step(c, f"008|B{i}", "birth", "registered", 10_000)
        chain_step(c, f"008|B{i}", "birth", "residence_registered", 11_000)
        if took is not None:
            final = "card_reconciled" if i == 0 else "no_card_needed"
            chain_step(c, f"008|B{i}", "birth", final, 10_000 + took)
    # Deaths 008: one granted, one refused (stalled).
    chain_step(c, "008|D0", "death", "registered", 10_000)
    chain_step(c, "008|D0", "death", "allowance_granted", 13_500)
    chain_step(c, "008|D1", "death", "registered", 10_000)
    chain_step(c, "008|D1", "death", "residence_ended", 12_000, ok=False)
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    assert page_figures(snap)["chains"] == summary_figures(summary_of(c))["chains"]
    birth, death = snap["chains"]
    assert (birth["id"], birth["name"]) == (
        "008-birth",
        "Đăng ký khai sinh - Đăng ký thường trú - Cấp thẻ BHYT cho trẻ em dưới 6 tuổi",
    )
    assert death["name"] == "Đăng ký khai tử - Xóa đăng ký thường trú - Trợ cấp mai táng phí"
    assert (birth["started"], birth["completed"], birth["stalled"], birth["in_progress"]) == (3, 2, 0, 1)
    assert birth["texts"]["ratio"] == "2/3" and birth["texts"]["percent"] == "66,67%"
    assert birth["texts"]["median"] == "2,00 giây"  # nearest rank of 2 s and 4 s
    assert birth["shares"] == pytest.approx({"completed": 2 / 3, "stalled": 0.0, "in_progress": 1 / 3})
    assert (death["completed"], death["stalled"], death["texts"]["median"]) == (1, 1, "3,50 giây")
    assert birth["texts"]["report_line"].startswith("Liên thông khai sinh")
    # The waiting birth completes; a replayed step (a new state object, equal) changes nothing.
    chain_step(c, "008|B2", "birth", "card_reconciled", 19_000)
    chain_step(c, "008|B0", "birth", "registered", 10_500)
    chain_step(c, "019|B0", "birth", "registered", 20_000)
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    assert page_figures(snap)["chains"] == summary_figures(summary_of(c))["chains"]
    assert [e["id"] for e in snap["chains"]] == ["008-birth", "008-death", "019-birth"]
    assert snap["chains"][0]["texts"]["median"] == "4,00 giây"


def test_a_source_of_records_chains_made_has_no_total_and_the_run_waits_for_its_chains() -> None:
    c = real_collector()
    published = {CIV: 3}
    view, clock = view_of(c, totals=lambda: published, sources=[CIV])
    for i in range(3):
        feed(c, CIV, f"K{i}", "cleaned", event="birth")
    assert c.chains_due == 3
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    assert source(snap, CIV)["done"] and snap["status"] != "done", "the births' chains have not started"
    assert snap["chains_run"] == {"due": 3, "begun": 0, "in_progress": 0, "not_begun": 3, "settled": False}
    for i in range(3):
        chain_step(c, f"019|K{i}", "birth", "registered", 1_000)
    feed(c, CARDS, "CARD-0", "cleaned", chain="019|K0")
    feed(c, CARDS, "CARD-1", "unsynced/not_found", chain="019|K1")
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    cards = source(snap, CARDS)
    assert (cards["open"], cards["made"], cards["published"], cards["pending"]) == (True, 2, None, None)
    assert (cards["reconciled"], cards["synced"], cards["texts"]["ratio"]) == (2, 1, "1/2")
    assert cards["texts"]["report_line"] == (
        "Bảo hiểm (019): 1/2 bản ghi đã làm sạch, đạt 50,00%; chưa đồng bộ 1 (50,00%)"
    )
    assert not source(snap, CIV)["open"]
    assert snap["status"] == "running", "three chains in progress"
    assert snap["run"]["published"] == 5 and snap["run"]["pending"] == 0, "the cards count, once made"
    chain_step(c, "019|K0", "birth", "card_reconciled", 2_000)
    chain_step(c, "019|K1", "birth", "card_reconciled", 2_000, ok=False)
    chain_step(c, "019|K2", "birth", "no_card_needed", 2_000)
    clock.now += 1
    view.sample()
    snap = view.snapshot()
    assert snap["status"] == "done"
    assert snap["run"]["texts"]["percent"] == "80,00%"


def test_a_published_source_that_chains_add_to_counts_both() -> None:
    c = real_collector()
    view, clock = view_of(c, totals=lambda: {INS: 4}, sources=[INS])
    for i in range(3):
        feed(c, INS, f"r{i}", "cleaned")
    feed(c, INS, "CARD-0", "cleaned", chain="008|B0")
    clock.now += 1
    view.sample()
    ins = source(view.snapshot(), INS)
    assert (ins["open"], ins["made"], ins["total"], ins["pending"]) == (False, 1, 5, 1)
    assert ins["texts"]["ratio"] == "4/5"


def test_random_runs_agree_with_the_summary_whenever_sampled() -> None:
    rng = random.Random(20240601)
    c = real_collector()
    planned = [LAB, INS]  # cards are made by chains: no province plans to fix them
    view, clock = view_of(c, cleansing=planned)
    outcomes = [o.value for o in RECORD_OUTCOMES]
    for _ in range(12):
        for _ in range(rng.randint(0, 300)):
            src = rng.choice([LAB, INS, CARDS])
            rid = f"r{rng.randint(0, 400)}"
            key = f"{src[0]}|{src[1]}|{rid}"
            previous = c.results.get(key)
            if previous is not None and src != CARDS and previous.outcome in FIXABLE and rng.random() < 0.5:
                feed(c, src, rid, rng.choice(outcomes), version=previous.version + 1, decided_ms=9_000)
            elif previous is None:
                extra = {"chain": f"019|B{rid}"} if src == CARDS else {}
                feed(c, src, rid, rng.choice(outcomes), **extra)
            else:
                feed(c, src, rid, previous.outcome, version=previous.version)  # a replay
        for _ in range(rng.randint(0, 40)):
            chain = f"{rng.choice(['008', '019'])}|C{rng.randint(0, 60)}"
            kind = "birth" if int(chain.rsplit("C", 1)[1]) % 3 else "death"
            name = rng.choice(["registered", "residence_registered", "card_reconciled", "allowance_granted"])
            chain_step(c, chain, kind, name, rng.randint(1_000, 9_000), ok=rng.random() < 0.9)
        clock.now += 1
        view.sample()
        expected = summary_figures(summary_of(c, cleansing=planned))
        # The page shows a planned source's loop once it has a task.
        expected["cleansing"] = [e for e in expected["cleansing"] if e["tasks"] or e["republished"]]
        assert page_figures(view.snapshot()) == expected
    final = view.snapshot()
    assert sum(e["republished"] for e in final["cleansing"]) > 20, "the draw re-published records"
    assert {k for e in final["chains"] for k in CHAIN_COUNTS if e[k]} == set(CHAIN_COUNTS)
