"""The summary and results files (`popsync.summary`) and the check of a scenario's expected figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from popsync.collector import RecordResult
from popsync.summary import build_summary, check_expectations, percentile, write_results
from schemas.outcomes import RECORD_OUTCOMES

pytestmark = pytest.mark.unit

ALL_OUTCOMES = [o.value for o in RECORD_OUTCOMES]


def results_of(rows: list[tuple[str, str, int]]) -> tuple[list[str], dict[str, RecordResult]]:
    """(key, outcome, lag) rows as publish-ordered keys and the collector's results."""
    keys = [key for key, _, _ in rows]
    fields = {"unsynced/mismatch": ("full_name",), "unsynced/missing_fields": ("gender", "date_of_birth")}
    return keys, {key: RecordResult(o, fields.get(o, ()), lag) for key, o, lag in rows}


ROWS = [
    ("insurance|008|I-1", "cleaned", 10),
    ("insurance|008|I-2", "corrected", 20),
    ("insurance|008|I-3", "unsynced/mismatch", 30),
    ("insurance|008|I-4", "cleaned", 40),
    ("labour|052|L-1", "unsynced/moved", 50),
    ("labour|052|L-2", "unsynced/missing_fields", 60),
    ("insurance|008|I|5", "unsynced/duplicate", 70),  # a record_id may hold the separator
]


@pytest.fixture
def summary() -> dict[str, Any]:
    keys, results = results_of(ROWS)
    return build_summary("tiny", keys, results, rejected=3, duration_s=2.0)


# --- percentile -------------------------------------------------------------------------------------


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 0.5) == 0
    assert percentile([], 0.99) == 0


@pytest.mark.parametrize(
    ("q", "value"),
    [(0.0, 1), (0.01, 1), (0.1, 10), (0.5, 50), (0.501, 51), (0.95, 95), (0.99, 99), (1.0, 100), (0.07, 7)],
)
def test_percentile_is_nearest_rank(q: float, value: int) -> None:
    # nearest rank: the ceil(q * n)-th smallest; 0.07 * 100 is 7.000000000000001 in floats, still rank 7
    assert percentile(list(range(1, 101)), q) == value


def test_percentile_small_lists() -> None:
    assert percentile([42], 0.5) == 42
    assert percentile([42], 0.99) == 42
    assert percentile([1, 2], 0.5) == 1
    assert percentile([1, 2], 0.51) == 2
    assert [percentile([3, 5, 8, 13], q) for q in (0.25, 0.5, 0.75, 0.95)] == [3, 5, 8, 13]


def test_percentile_never_interpolates() -> None:
    values = [10, 1000]
    assert percentile(values, 0.5) in values and percentile(values, 0.95) in values


# --- build_summary ---------------------------------------------------------------------------------


def test_summary_has_the_contract_keys(summary: dict[str, Any]) -> None:
    assert set(summary) == {"scenario", "totals", "rejected", "duration_s", "records_per_s", "sync_lag_ms"}
    assert summary["scenario"] == "tiny"
    assert summary["rejected"] == 3
    assert set(summary["sync_lag_ms"]) == {"p50", "p95", "p99"}
    json.dumps(summary)  # it is written as JSON


def test_totals_per_source_list_every_outcome_with_zeros(summary: dict[str, Any]) -> None:
    by_source = {(t["sector"], t["province"]): t for t in summary["totals"]}
    assert list(by_source) == [("insurance", "008"), ("labour", "052")]
    for t in summary["totals"]:
        assert list(t["outcomes"]) == ALL_OUTCOMES
        assert "rejected" not in t["outcomes"]
    insurance = by_source[("insurance", "008")]
    assert insurance["outcomes"] == {
        **dict.fromkeys(ALL_OUTCOMES, 0),
        "cleaned": 2,
        "corrected": 1,
        "unsynced/mismatch": 1,
        "unsynced/duplicate": 1,
    }
    assert (insurance["total"], insurance["synced"], insurance["unsynced"]) == (5, 3, 2)
    labour = by_source[("labour", "052")]
    assert (labour["total"], labour["synced"], labour["unsynced"]) == (2, 0, 2)
    assert labour["outcomes"]["unsynced/moved"] == 1 and labour["outcomes"]["unsynced/missing_fields"] == 1


def test_sums_add_up(summary: dict[str, Any]) -> None:
    for t in summary["totals"]:
        assert t["total"] == sum(t["outcomes"].values()) == t["synced"] + t["unsynced"]
        assert t["synced"] == t["outcomes"]["cleaned"] + t["outcomes"]["corrected"]
        assert t["unsynced"] == sum(v for k, v in t["outcomes"].items() if k.startswith("unsynced/"))


def test_rate_and_lags(summary: dict[str, Any]) -> None:
    assert summary["duration_s"] == 2.0
    assert summary["records_per_s"] == 3.5  # 7 records over 2 s
    assert summary["sync_lag_ms"] == {"p50": 40, "p95": 70, "p99": 70}


def test_lags_are_sorted_before_taking_percentiles() -> None:
    rows = [(f"insurance|008|{i}", "cleaned", lag) for i, lag in enumerate([90, 10, 50, 30, 70])]
    keys, results = results_of(rows)
    assert build_summary("s", keys, results, 0, 1.0)["sync_lag_ms"] == {"p50": 50, "p95": 90, "p99": 90}


def test_empty_run() -> None:
    s = build_summary("empty", [], {}, rejected=2, duration_s=0.0)
    assert s["totals"] == [] and s["rejected"] == 2
    assert s["records_per_s"] == 0.0
    assert s["sync_lag_ms"] == {"p50": 0, "p95": 0, "p99": 0}


def test_duration_is_rounded_to_milliseconds() -> None:
    keys, results = results_of(ROWS[:1])
    s = build_summary("s", keys, results, 0, 1.23456)
    assert s["duration_s"] == 1.235
    assert s["records_per_s"] == 0.8


def test_only_the_given_keys_count() -> None:
    # the collector may hold results of records this run did not publish (a replay); keys decide
    keys, results = results_of(ROWS)
    s = build_summary("s", keys[:2], results, 0, 1.0)
    assert [t["total"] for t in s["totals"]] == [2]


# --- write_results -------------------------------------------------------------------------------


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_results_one_line_per_record_in_the_given_order_then_rejected(tmp_path: Path) -> None:
    keys, results = results_of(ROWS)
    order = list(reversed(keys))
    rejected: list[dict[str, Any]] = [
        {"reason": "not JSON", "origin": "ins.jsonl:9", "record_id": None, "sector": None, "province": None},
        {"reason": "unknown province", "origin": "ins.jsonl:12", "record_id": "X-1", "sector": "labour",
         "province": "999"},
    ]  # fmt: skip
    path = tmp_path / "results.jsonl"
    assert write_results(path, order, results, rejected) == len(ROWS) + 2
    lines = read_lines(path)
    assert len(lines) == len(ROWS) + 2
    records, dead = lines[: len(ROWS)], lines[len(ROWS) :]
    assert [f"{r['sector']}|{r['province']}|{r['record_id']}" for r in records] == order
    first = records[0]
    assert first == {
        "record_id": "I|5",
        "sector": "insurance",
        "province": "008",
        "outcome": "unsynced/duplicate",
        "fields": [],
    }
    by_id = {r["record_id"]: r for r in records}
    assert by_id["I-3"]["fields"] == ["full_name"]
    assert by_id["L-2"]["fields"] == ["gender", "date_of_birth"]
    assert all(r["outcome"] == "rejected" and r["fields"] == [] for r in dead)
    assert [(r["record_id"], r["reason"], r["origin"]) for r in dead] == [
        (None, "not JSON", "ins.jsonl:9"),
        ("X-1", "unknown province", "ins.jsonl:12"),
    ]
    assert dead[1]["sector"] == "labour" and dead[1]["province"] == "999"


def test_results_keep_vietnamese_text_readable(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_results(path, [], {}, [{"reason": "tỉnh không hợp lệ", "origin": "a:1"}])
    assert "tỉnh không hợp lệ" in path.read_text(encoding="utf-8")


def test_results_of_nothing_is_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    assert write_results(path, [], {}, []) == 0
    assert path.read_text(encoding="utf-8") == ""


# --- check_expectations --------------------------------------------------------------------------


def test_matching_expectations_give_no_problems(summary: dict[str, Any]) -> None:
    expectations = [
        ("insurance", "008", {"total": 5, "synced": 3, "unsynced": 2, "cleaned": 2, "unsynced/mismatch": 1}),
        ("labour", "052", {"unsynced/moved": 1, "unsynced/deceased": 0, "corrected": 0}),
    ]
    assert check_expectations(summary, expectations) == []


def test_one_sentence_per_differing_figure(summary: dict[str, Any]) -> None:
    expectations = [
        ("insurance", "008", {"total": 5, "synced": 4, "unsynced/mismatch": 1, "unsynced/not_found": 2}),
        ("labour", "052", {"unsynced/moved": 1}),
    ]
    problems = check_expectations(summary, expectations)
    assert problems == [
        "insurance 008: synced expected 4, got 3",
        "insurance 008: unsynced/not_found expected 2, got 0",
    ]


def test_large_figures_are_readable(summary: dict[str, Any]) -> None:
    problems = check_expectations(summary, [("insurance", "008", {"total": 757543})])
    assert problems == ["insurance 008: total expected 757,543, got 5"]


def test_a_source_without_records_counts_as_zero(summary: dict[str, Any]) -> None:
    expectations = [("civil_status", "001", {"total": 0, "unsynced": 0}), ("labour", "008", {"synced": 3})]
    assert check_expectations(summary, expectations) == ["labour 008: synced expected 3, got 0"]
