"""`popsync report --provinces legacy|current`: figures by the 63 legacy or the 34 current provinces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from popsync.cli import app
from popsync.report import check_summary
from popsync.report_md import merge_summaries, render_markdown
from popsync.report_provinces import province_names, regroup
from schemas.outcomes import RECORD_OUTCOMES
from schemas.provinces import MERGED_INTO, PROVINCES, ProvinceMap

pytestmark = pytest.mark.unit


def total(sector: str, province: str, cleaned: int, moved: int = 0, deceased: int = 0) -> dict[str, Any]:
    outcomes = {o.value: 0 for o in RECORD_OUTCOMES}
    outcomes |= {"cleaned": cleaned, "unsynced/moved": moved, "unsynced/deceased": deceased}
    n = cleaned + moved + deceased
    return {
        "sector": sector,
        "province": province,
        "total": n,
        "synced": cleaned,
        "unsynced": moved + deceased,
        "outcomes": outcomes,
        "corrections": {"personal_id": 0, "full_name": 0},
        "legacy_ids": 0,
        "legacy_corrected": 0,
        "republished": 0,
        "fixed": 0,
    }


# A 2026 labour summary of the new Tuyên Quang: forms filed under 008 and under the former Hà Giang's 002.
SUMMARY = check_summary(
    {
        "scenario": "tq-2026",
        "totals": [
            total("labour", "002", 1940, moved=40, deceased=20),
            total("labour", "008", 4800, moved=140, deceased=60),
            total("insurance", "052", 900, moved=0),  # Bình Định: now part of Gia Lai (052)
            total("insurance", "064", 100),  # Gia Lai (legacy 064): the current Gia Lai too
        ],
        "chains": [
            {"province": "002", "kind": "birth", "started": 3, "completed": 2, "stalled": 1, "in_progress": 0,
             "duration_s": {"p50": 1.0, "p95": 2.0, "max": 4.0}},
            {"province": "008", "kind": "birth", "started": 5, "completed": 5, "stalled": 0, "in_progress": 0,
             "duration_s": {"p50": 0.5, "p95": 3.0, "max": 3.5}},
        ],
        "rejected": 0,
    }
)  # fmt: skip


def report(tmp_path: Path, *args: str) -> str:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SUMMARY, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_legacy_is_the_default_and_reports_as_the_records_name_their_provinces(tmp_path: Path) -> None:
    default = report(tmp_path, "--lines")
    assert default == report(tmp_path, "--lines", "--provinces", "legacy")
    assert (
        "Người lao động (002): 1.940/2.000 bản ghi đã làm sạch, đạt 97,00%; chưa đồng bộ 60 (3,00%)"
        in default
    )
    assert (
        "Người lao động (008): 4.800/5.000 bản ghi đã làm sạch, đạt 96,00%; chưa đồng bộ 200 (4,00%)"
        in default
    )
    markdown = report(tmp_path)
    assert "## Hà Giang (002)" in markdown and "## Tuyên Quang (008)" in markdown
    assert "## Bình Định (052)" in markdown and "## Gia Lai (064)" in markdown


def test_current_adds_up_the_former_ha_giang_into_tuyen_quang(tmp_path: Path) -> None:
    lines = report(tmp_path, "--lines", "--provinces", "current")
    assert (
        "Người lao động (008): 6.740/7.000 bản ghi đã làm sạch, đạt 96,29%; chưa đồng bộ 260 (3,71%)" in lines
    )
    assert "(002)" not in lines and "(064)" not in lines
    assert "Bảo hiểm (052): 1.000/1.000 bản ghi đã làm sạch, đạt 100,00%" in lines
    markdown = report(tmp_path, "--provinces", "current")
    assert "## Tuyên Quang (008)" in markdown and "## Gia Lai (052)" in markdown
    assert "Hà Giang" not in markdown and "Bình Định" not in markdown
    # the labour sentences count both former provinces' forms: died or moved 20 + 40 + 60 + 140
    assert "7.000 phiếu" in markdown and "6.740 phiếu" in markdown
    assert "260 phiếu, chiếm 3,71%" in markdown


def test_current_adds_counts_and_keeps_the_largest_time_spread() -> None:
    merged = regroup(merge_summaries([("s.json", SUMMARY)]), ProvinceMap.CURRENT)
    assert set(merged.chains) == {("008", "birth")}
    chain = merged.chains["008", "birth"]
    assert (chain["started"], chain["completed"], chain["stalled"]) == (8, 7, 1)
    assert chain["duration_s"] == {"p50": 1.0, "p95": 3.0, "max": 4.0}
    labour = merged.totals["labour", "008"]
    assert labour["outcomes"]["unsynced/moved"] == 180 and labour["outcomes"]["unsynced/deceased"] == 80
    check_summary({"totals": list(merged.totals.values()), "chains": list(merged.chains.values())})


def test_unknown_grouping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SUMMARY), encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(path), "--provinces", "new"])
    assert result.exit_code == 2 and "legacy, current" in result.output


@given(
    st.dictionaries(
        st.sampled_from(sorted(PROVINCES)),
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**4)),
        max_size=63,
    )
)
def test_current_grouping_keeps_every_record_and_lands_on_current_codes(figures: dict[str, Any]) -> None:
    summary = {"totals": [total("labour", p, c, moved=m) for p, (c, m) in figures.items()]}
    merged = regroup(merge_summaries([("s", check_summary(summary))]), ProvinceMap.CURRENT)
    assert sum(t["total"] for t in merged.totals.values()) == sum(c + m for c, m in figures.values())
    assert {k[1] for k in merged.totals} == {MERGED_INTO[p] for p in figures}
    for (_, code), t in merged.totals.items():
        assert t["total"] == sum(c + m for p, (c, m) in figures.items() if MERGED_INTO[p] == code)
        assert t["synced"] + t["unsynced"] == t["total"]
    names = province_names(ProvinceMap.CURRENT)
    text = render_markdown(merged, names=names)
    assert all(f"## {names[k[1]]} ({k[1]})" in text for k in merged.totals)


def test_a_summary_as_of_2025_07_01_or_later_is_reported_by_current_provinces(tmp_path: Path) -> None:
    def lines(*dates: str | None, args: tuple[str, ...] = ()) -> str:
        paths = []
        for i, as_of in enumerate(dates):
            path = tmp_path / f"s{i}.json"
            summary = {**SUMMARY, "scenario": f"s{i}"} | ({"as_of": as_of} if as_of else {})
            path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
            paths.append(str(path))
        result = CliRunner().invoke(app, ["report", *paths, "--lines", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "(002)" not in lines("2026-06-30") and "(008): 6.740/7.000" in lines("2026-06-30")
    assert "(002)" not in lines("2025-07-01", "2026-01-01")
    assert "(002): 1.940/2.000" in lines("2025-06-30")  # before the merger
    assert "(002): 1.940/2.000" in lines(None)  # a summary from before `as_of` existed
    assert "(002): 1.940/2.000" in lines("2026-06-30", None)  # not all of them current: legacy
    assert "(002): 1.940/2.000" in lines("2026-06-30", args=("--provinces", "legacy"))  # told: as told
    assert "(002)" not in lines("2023-12-31", args=("--provinces", "current"))


def test_build_summary_writes_the_scenarios_as_of_only_when_it_has_one() -> None:
    from datetime import date

    from popsync.summary import build_summary

    assert "as_of" not in build_summary("s", [], {}, 0, 1.0)
    summary = build_summary("s", [], {}, 0, 1.0, as_of=date(2026, 6, 30))
    assert summary["as_of"] == "2026-06-30"
    assert check_summary(json.loads(json.dumps(summary))) == summary


@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans(), st.dates().map(str)))
def test_a_summarys_as_of_is_a_real_date_or_the_summary_is_refused(as_of: Any) -> None:
    summary = {**SUMMARY, "as_of": as_of}
    try:
        check_summary(summary)
    except ValueError as exc:
        assert "'as_of' must be a date written YYYY-MM-DD" in str(exc)
        return
    assert isinstance(as_of, str) and len(as_of) == 10 and as_of[4] == as_of[7] == "-"
