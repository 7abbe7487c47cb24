"""Report lines in the seeds' style (`popsync.report`): Vietnamese number format, half-up percentages."""

from __future__ import annotations

from typing import Any

import pytest

from popsync.report import OUTCOME_LABELS, SECTOR_LABELS, breakdown_rows, report_line, vn_int, vn_percent
from schemas.outcomes import RECORD_OUTCOMES

pytestmark = pytest.mark.unit


def total(sector: str = "insurance", province: str = "008", **outcomes: int) -> dict[str, Any]:
    """A summary total as `build_summary` writes it, every outcome present."""
    full = {o.value: outcomes.get(o.name.lower(), 0) for o in RECORD_OUTCOMES}
    n = sum(full.values())
    synced = full["cleaned"] + full["corrected"]
    return {
        "sector": sector,
        "province": province,
        "total": n,
        "synced": synced,
        "unsynced": n - synced,
        "outcomes": full,
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (7, "7"),
        (999, "999"),
        (1000, "1.000"),
        (2180, "2.180"),
        (757543, "757.543"),
        (1256188, "1.256.188"),
        (2262588, "2.262.588"),
        (-1500, "-1.500"),
    ],
)
def test_vn_int_groups_thousands_with_dots(value: int, text: str) -> None:
    assert vn_int(value) == text


@pytest.mark.parametrize(
    ("part", "whole", "text"),
    [
        (755363, 757543, "99,71%"),  # 99.71223...
        (2180, 757543, "0,29%"),  # 0.28777...
        (0, 0, "0,00%"),  # nothing to report is 0 %, not a division error
        (5, 0, "0,00%"),
        (0, 5, "0,00%"),
        (7, 7, "100,00%"),
        (1, 3, "33,33%"),
        (2, 3, "66,67%"),
        (1, 6, "16,67%"),
        (1195107, 1256188, "95,14%"),  # seeds: e-ID collected, Bình Định
        (1006251, 1256188, "80,10%"),  # seeds: trailing zero kept
        (1, 200, "0,50%"),
        (1, 7, "14,29%"),
    ],
)
def test_vn_percent_two_decimals_comma(part: int, whole: int, text: str) -> None:
    assert vn_percent(part, whole) == text


@pytest.mark.parametrize(
    ("part", "whole", "text"),
    [
        (1, 32, "3,13%"),  # exactly 3.125
        (1, 160, "0,63%"),  # exactly 0.625
        (1, 20000, "0,01%"),  # exactly 0.005
        (3, 80, "3,75%"),  # exactly 3.75: nothing to round
        (1, 800, "0,13%"),  # exactly 0.125
        (201, 400, "50,25%"),  # exactly 50.25
        (4021, 8000, "50,26%"),  # exactly 50.2625 -> not a tie, 50.26
        (40205, 80000, "50,26%"),  # exactly 50.25625
        (2001, 4000, "50,03%"),  # exactly 50.025: a float would show 50.02
        (2005, 2000 * 2, "50,13%"),  # exactly 50.125: banker's rounding would give 50.12
    ],
)
def test_vn_percent_rounds_exact_halves_up(part: int, whole: int, text: str) -> None:
    assert vn_percent(part, whole) == text


def test_vn_percent_is_exact_for_large_counts() -> None:
    assert vn_percent(10**15 + 5, 2 * 10**15) == "50,00%"
    assert vn_percent(10**15 * 2 + 1, 4 * 10**15) == "50,00%"


def test_report_line_reproduces_the_seed_figure_exactly() -> None:
    line = report_line(total(cleaned=754_000, corrected=1_363, mismatch=2_180))
    assert (
        line == "Bảo hiểm (008): 755.363/757.543 bản ghi đã làm sạch, đạt 99,71%; chưa đồng bộ 2.180 (0,29%)"
    )


def test_report_line_uses_the_sums_not_the_outcomes() -> None:
    figures = {"sector": "insurance", "province": "008", "total": 757543, "synced": 755363, "unsynced": 2180}
    expected = "Bảo hiểm (008): 755.363/757.543 bản ghi đã làm sạch, đạt 99,71%; chưa đồng bộ 2.180 (0,29%)"
    assert report_line(figures) == expected


@pytest.mark.parametrize(
    ("sector", "label"),
    [("insurance", "Bảo hiểm"), ("labour", "Người lao động"), ("civil_status", "Hộ tịch")],
)
def test_sector_labels(sector: str, label: str) -> None:
    assert SECTOR_LABELS[sector] == label
    assert report_line(total(sector, "052", cleaned=1)).startswith(f"{label} (052): 1/1 ")


def test_labour_line() -> None:
    line = report_line(total("labour", "008", cleaned=577_210, deceased=10_000, moved=9_510))
    assert line == (
        "Người lao động (008): 577.210/596.720 bản ghi đã làm sạch, đạt 96,73%; chưa đồng bộ 19.510 (3,27%)"
    )


def test_report_line_of_an_empty_total() -> None:
    assert (
        report_line(total()) == "Bảo hiểm (008): 0/0 bản ghi đã làm sạch, đạt 0,00%; chưa đồng bộ 0 (0,00%)"
    )


def test_unknown_sector_is_shown_as_is() -> None:
    figures = {"sector": "tax", "province": "008", "total": 2, "synced": 1, "unsynced": 1}
    assert report_line(figures).startswith("tax (008): 1/2 ")


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (5, "must be a JSON object"),
        ({"sector": "insurance", "province": "008", "synced": 1, "unsynced": 1}, "lacks total"),
        ({"sector": "insurance"}, "lacks province, total, synced, unsynced"),
        (
            {"sector": "insurance", "province": "008", "total": "3", "synced": 1, "unsynced": 1},
            "total of a total",
        ),
        (
            {"sector": "insurance", "province": "008", "total": 3, "synced": 1.5, "unsynced": 1},
            "synced of a total",
        ),
        (
            {"sector": "insurance", "province": "008", "total": 3, "synced": 1, "unsynced": True},
            "unsynced of",
        ),
    ],
)
def test_report_line_says_what_is_wrong_with_a_total(bad: Any, words: str) -> None:
    # `popsync report FILE` reads totals from any file; ValueError is what it turns into a message.
    with pytest.raises(ValueError, match=words):
        report_line(bad)


def test_breakdown_rows_lists_non_zero_outcomes_in_report_order() -> None:
    rows = breakdown_rows(total(cleaned=754_000, corrected=1_363, mismatch=900, not_found=500, duplicate=780))
    assert rows == [
        ("cleaned", "đã xác thực, đồng bộ", "754.000", "99,53%"),
        ("corrected", "đã hiệu chỉnh tự động", "1.363", "0,18%"),
        ("unsynced/mismatch", OUTCOME_LABELS["unsynced/mismatch"], "900", "0,12%"),
        ("unsynced/not_found", "không có thông tin trên hệ thống", "500", "0,07%"),
        ("unsynced/duplicate", OUTCOME_LABELS["unsynced/duplicate"], "780", "0,10%"),
    ]


def test_breakdown_rows_of_an_empty_total() -> None:
    assert list(breakdown_rows(total())) == []


def test_every_record_outcome_has_a_vietnamese_label() -> None:
    assert set(OUTCOME_LABELS) == {o.value for o in RECORD_OUTCOMES}
    every = total(
        cleaned=1, corrected=1, mismatch=1, not_found=1, malformed_id=1, missing_fields=1, deceased=1,
        moved=1, duplicate=1,
    )  # fmt: skip
    assert every["total"] == len(RECORD_OUTCOMES)
    rows = breakdown_rows(every)
    assert [r[0] for r in rows] == [o.value for o in RECORD_OUTCOMES]
    assert all(r[3] == "11,11%" for r in rows)
