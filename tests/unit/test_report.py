"""Report lines in the seeds' style (`popsync.report`): Vietnamese number format, half-up percentages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from popsync.report import (
    OUTCOME_LABELS,
    SECTOR_LABELS,
    Lang,
    ReportError,
    breakdown_rows,
    eid_report_line,
    en_int,
    en_percent,
    load_summary,
    report_line,
    seconds,
    vn_int,
    vn_percent,
)
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
        moved=1, duplicate=1, ineligible=1,
    )  # fmt: skip
    assert every["total"] == len(RECORD_OUTCOMES)
    rows = breakdown_rows(every)
    assert [r[0] for r in rows] == [o.value for o in RECORD_OUTCOMES]
    assert all(r[3] == "10,00%" for r in rows)


# --- English numbers, seconds ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (999, "999"), (2180, "2,180"), (1256188, "1,256,188")])
def test_en_int_groups_thousands_with_commas(value: int, text: str) -> None:
    assert en_int(value) == text


@pytest.mark.parametrize(
    ("part", "whole", "text"),
    [(755363, 757543, "99.71%"), (2180, 757543, "0.29%"), (0, 0, "0.00%"), (2001, 4000, "50.03%")],
)
def test_en_percent_rounds_as_vn_percent_does(part: int, whole: int, text: str) -> None:
    assert en_percent(part, whole) == text
    assert vn_percent(part, whole) == text.replace(".", ",")


@pytest.mark.parametrize(
    ("value", "vi", "en"),
    [
        (0, "0,00", "0.00"),
        (1.2, "1,20", "1.20"),
        (0.125, "0,13", "0.13"),  # half-up on the decimal as written, not on the float's binary value
        (2.675, "2,68", "2.68"),  # 2.675 is 2.67499999… as a float
        (1234.5, "1.234,50", "1,234.50"),
        (7, "7,00", "7.00"),
    ],
)
def test_seconds_two_decimals(value: float, vi: str, en: str) -> None:
    assert seconds(value) == vi
    assert seconds(value, Lang.EN) == en


def test_eid_line_in_english() -> None:
    levels = {
        "province": "008", "eligible": 640_000, "applied": 620_224, "approved": 592_671, "activated": 467_406,
        "level_1": {"approved": 300_736, "activated": 196_290},
        "level_2": {"approved": 291_935, "activated": 271_116},
        "report": "levels",
    }  # fmt: skip
    assert eid_report_line(levels, Lang.EN) == (
        "e-ID (008): applications 620,224; approved 592,671 (level 1: 300,736; level 2: 291,935); "
        "activated 467,406 (level 1: 196,290; level 2: 271,116)"
    )
    eligible = {"province": "052", "eligible": 1_256_188, "applied": 1_195_107, "approved": 1_195_107,
                "activated": 1_006_251, "report": "eligible"}  # fmt: skip
    assert eid_report_line(eligible, Lang.EN) == (
        "e-ID (052): collected 1,195,107/1,256,188 (95.14%); activated 1,006,251/1,256,188 (80.10%)"
    )


# --- reading a summary file ------------------------------------------------------------------------------

GOOD_TOTAL = {"sector": "insurance", "province": "008", "total": 3, "synced": 2, "unsynced": 1}


def test_load_summary_of_a_good_file(tmp_path: Path) -> None:
    summary = {"scenario": "s", "totals": [total(cleaned=2, mismatch=1)], "rejected": 0}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(summary), encoding="utf-8")
    assert load_summary(path) == summary


def bad_file(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "s.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xff\xfe{}", "it is not UTF-8 text (invalid start byte at byte 0)"),
        ("", "it is not JSON (Expecting value: line 1 column 1 (char 0))"),
        ('{"totals": [}', "it is not JSON (Expecting value: line 1 column 13 (char 12))"),
        ("[" * 100_000 + "]" * 100_000, "its JSON is nested too deeply to be a summary"),
        ([1, 2], "its top level is a JSON list, not an object"),
        ("5", "its top level is a JSON number, not an object"),
        ("null", "its top level is a JSON null, not an object"),
        ({"hello": "world"},
         "it has no 'totals' list; give a summary written by `popsync simulate --summary`"),
        ({"scenario": 5, "totals": []}, "'scenario' must be a string, got 5"),
        ({"totals": {"a": 1}}, "'totals' must be a list, got a JSON object"),
        ({"totals": [5]}, "totals[0] must be a JSON object, got 5"),
        ({"totals": [{"sector": "insurance", "province": "008"}]}, "totals[0]: a total lacks total, synced"),
        ({"totals": [{**GOOD_TOTAL, "total": "3"}]}, "totals[0]: total of a total must be a non-negative"),
        ({"totals": [{**GOOD_TOTAL, "province": 8}]},
         "totals[0]: province must be a non-empty string, got 8"),
        ({"totals": [{**GOOD_TOTAL, "sector": ""}]}, "totals[0]: sector must be a non-empty string, got ''"),
        ({"totals": [{**GOOD_TOTAL, "synced": 1}]}, "totals[0]: synced 1 + unsynced 1 is not total 3"),
        ({"totals": [{**GOOD_TOTAL, "outcomes": {"cleaned": -1}}]}, "totals[0]: outcomes must map names to"),
        ({"totals": [{**GOOD_TOTAL, "outcomes": [1]}]}, "totals[0]: outcomes must map names to"),
        ({"totals": [{**GOOD_TOTAL, "corrections": {"full_name": 1.5}}]}, "totals[0]: corrections must map"),
        ({"totals": [{**GOOD_TOTAL, "legacy_ids": True}]},
         "totals[0]: legacy_ids must be a non-negative whole"),
        ({"totals": [], "civil_events": "birth"}, "'civil_events' must be a list, got a JSON string"),
        ({"totals": [], "civil_events": [{"province": "008", "total": 1}]}, "civil_events[0] lacks event"),
        (
            {"totals": [], "civil_events": [{"province": "008", "event": "birth", "total": 1, "synced": 1}]},
            "civil_events[0] lacks unsynced",
        ),
        ({"totals": [], "cleansing": [{"sector": "insurance", "province": "008", "tasks": 1}]},
         "cleansing[0] lacks fixed"),
        (
            {"totals": [], "cleansing": [{"sector": "insurance", "province": "008", "tasks": 1, "fixed": 1,
                                          "fix_time_s": {"p50": "1s"}}]},
            "cleansing[0]: fix_time_s must map p50, p95, max to seconds, got {'p50': '1s'}",
        ),
        (
            {"totals": [], "cleansing": [{"sector": "insurance", "province": "008", "tasks": 1, "fixed": 1,
                                          "tasks_by_outcome": {"unsynced/mismatch": None}}]},
            "cleansing[0]: tasks_by_outcome must map names to non-negative whole numbers",
        ),
        (
            {"totals": [], "chains": [{"province": "008", "kind": "birth", "started": 1, "completed": 1,
                                       "stalled": -1}]},
            "chains[0]: stalled must be a non-negative whole number, got -1",
        ),
        ('{"totals": [], "chains": [{"province": "008", "kind": "birth", "started": 1, "completed": 1, '
         '"duration_s": {"p50": NaN}}]}', "chains[0]: duration_s must map p50, p95, max to seconds"),
        ({"totals": [], "eid": [{"province": "008"}]}, "eid[0]: an e-ID entry lacks eligible"),
        (
            {"totals": [], "eid": [{"province": "008", "eligible": 1, "applied": 1, "approved": 1,
                                    "activated": 1, "level_1": 5}]},
            "eid[0]: level_1 must map names to non-negative whole numbers, got 5",
        ),
    ],
)  # fmt: skip
def test_load_summary_says_which_file_and_what_is_wrong(tmp_path: Path, content: Any, says: str) -> None:
    path = bad_file(tmp_path, content)
    with pytest.raises(ReportError) as caught:
        load_summary(path)
    assert str(caught.value).startswith(f"{path} is not a popsync summary: {says}")
    assert "\n" not in str(caught.value)  # one line on the terminal


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p / "missing.json", "cannot read it (No such file or directory)"),
        (lambda p: p, "cannot read it (Is a directory)"),
    ],
)
def test_load_summary_of_what_cannot_be_read(tmp_path: Path, make: Any, says: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ReportError, match=re.escape(f"{path} is not a popsync summary: {says}")):
        load_summary(path)
