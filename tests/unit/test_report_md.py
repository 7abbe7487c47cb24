"""The Markdown report (`popsync.report_md`, `popsync report`): merged per province, in the seeds' words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from popsync.cli import app
from popsync.collector import RecordResult
from popsync.report import Lang, ReportError, check_summary
from popsync.report_md import Merged, merge_summaries, render_markdown
from popsync.summary import build_summary
from schemas.outcomes import RECORD_OUTCOMES

pytestmark = pytest.mark.unit


def total(sector: str, province: str, **figures: Any) -> dict[str, Any]:
    """A summary total as `build_summary` writes it; outcomes by short name (`mismatch=3`), zeros kept."""
    extra = {k: figures.pop(k) for k in ("corrections", "legacy_ids", "legacy_corrected") if k in figures}
    full = {o.value: figures.get(o.kind, 0) for o in RECORD_OUTCOMES}
    n = sum(full.values())
    synced = full["cleaned"] + full["corrected"]
    figures = {"total": n, "synced": synced, "unsynced": n - synced, "outcomes": full}
    return {"sector": sector, "province": province, **figures, **extra}


# Tuyên Quang, December 2023 (000_…txt): the seed's headline figures; the split of the 2.180 unsynced
# participants, the corrections and the times are made up (the seed does not give them).
TQ_INSURANCE = {
    "scenario": "tq-insurance",
    "totals": [
        total(
            "insurance", "008", cleaned=754_000, corrected=1_363, mismatch=1_200, not_found=500,
            malformed_id=300, missing_fields=180,
            corrections={"personal_id": 40, "full_name": 1_323}, legacy_ids=40,
        )
    ],
    "cleansing": [
        {
            "sector": "insurance", "province": "008", "tasks": 180,
            "tasks_by_outcome": {"unsynced/missing_fields": 180}, "republished": 180, "fixed": 180,
            "fixed_by_outcome": {"unsynced/missing_fields": 180},
            "fix_time_s": {"p50": 1.2, "p95": 3.456, "max": 5},
        }
    ],
    "rejected": 0,
}  # fmt: skip
TQ_LABOUR = {
    "scenario": "tq-labour",
    "totals": [total("labour", "008", cleaned=577_210, deceased=10_000, moved=9_510)],
}
TQ_LINKED = {
    "scenario": "tq-linked",
    "totals": [],
    "civil_events": [
        {"province": "008", "event": "death", "total": 257, "synced": 250, "unsynced": 7},
        {"province": "008", "event": "birth", "total": 913, "synced": 913, "unsynced": 0},
    ],
    "chains": [
        {"province": "008", "kind": "death", "started": 257, "completed": 257, "stalled": 0, "in_progress": 0,
         "duration_s": {"p50": 2.5, "p95": 4.1, "max": 6}},
        {"province": "008", "kind": "birth", "started": 913, "completed": 913, "stalled": 0, "in_progress": 0,
         "duration_s": {"p50": 3.2, "p95": 5.8, "max": 7}},
    ],
    "eid": [
        {"province": "008", "eligible": 640_000, "applied": 620_224, "approved": 592_671,
         "activated": 467_406, "level_1": {"approved": 300_736, "activated": 196_290},
         "level_2": {"approved": 291_935, "activated": 271_116}, "report": "levels"}
    ],
}  # fmt: skip

TQ_VI = """\
# Kết quả làm sạch, đồng bộ dữ liệu với Cơ sở dữ liệu quốc gia về dân cư

Kịch bản: tq-insurance, tq-labour, tq-linked.

## Tuyên Quang (008)

### Bảo hiểm xã hội, BHYT, bảo hiểm thất nghiệp

- Số người có CCCD/ĐDCN đã được cập nhật và xác thực với Cơ sở dữ liệu quốc gia về dân cư: \
755.363/757.543 người, đạt tỷ lệ 99,71%. Số người có thông tin chưa đồng bộ với Cơ sở dữ liệu quốc gia \
về dân cư: 2.180/757.543, chiếm 0,29%.
- Rà soát, cập nhật CMND 9 số: 40/40 trường hợp (đạt 100,00%).
- Hiệu chỉnh họ tên không dấu theo Cơ sở dữ liệu quốc gia về dân cư: 1.323 trường hợp.
- Đề nghị C06 hủy, xác lập lại số định danh cá nhân đối với 300 trường hợp sai cấu trúc số định danh \
cá nhân theo đúng quy trình quy định.
- Rà soát, làm sạch dữ liệu chưa đồng bộ: 180/180 trường hợp (đạt 100,00%).
  + Số trường hợp đã bổ sung, hiệu chỉnh và gửi xác thực lại: 180.
  + Thiếu trường thông tin: 180/180 trường hợp (đạt 100,00%).
  + Thời gian xử lý: trung vị 1,20 giây, p95 3,46 giây, tối đa 5,00 giây.

| Nguyên nhân chưa đồng bộ | Số trường hợp | Tỷ lệ |
|---|---:|---:|
| Thông tin chưa khớp | 1.200 | 0,16% |
| Không có thông tin trên hệ thống | 500 | 0,07% |
| Sai cấu trúc số định danh | 300 | 0,04% |
| Thiếu trường thông tin | 180 | 0,02% |

### Thông tin về người lao động

- Kết quả thu thập phiếu thông tin về người lao động:
  + Số phiếu do Tổ công tác Đề án 06 cấp xã thu thập là: 596.720 phiếu.
  + Số phiếu Công an cấp xã đã cập nhật vào Cơ sở dữ liệu quốc gia về dân cư: 577.210 phiếu, chiếm 96,73%.
  + Số phiếu không cập nhật do công dân chết, chuyển nơi đăng ký thường trú: 19.510 phiếu, chiếm 3,27%.

| Nguyên nhân chưa đồng bộ | Số trường hợp | Tỷ lệ |
|---|---:|---:|
| Công dân chết | 10.000 | 1,68% |
| Chuyển nơi đăng ký thường trú | 9.510 | 1,59% |

### Hộ tịch

- Đăng ký khai sinh: 913/913 hồ sơ đã đồng bộ với Cơ sở dữ liệu quốc gia về dân cư, đạt tỷ lệ 100,00%; \
chưa đồng bộ 0 hồ sơ, chiếm 0,00%.
- Đăng ký khai tử: 250/257 hồ sơ đã đồng bộ với Cơ sở dữ liệu quốc gia về dân cư, đạt tỷ lệ 97,28%; \
chưa đồng bộ 7 hồ sơ, chiếm 2,72%.

### Dịch vụ công liên thông

- Tiếp nhận 1.170 hồ sơ, giải quyết 1.170 hồ sơ đối với 02 nhóm DVC liên thông:
  + “Đăng ký khai sinh - Đăng ký thường trú - Cấp thẻ BHYT cho trẻ em dưới 6 tuổi”: tiếp nhận 913 hồ sơ, \
hoàn thành 913 hồ sơ (đạt 100,00%); thời gian liên thông: trung vị 3,20 giây, p95 5,80 giây, tối đa 7,00 giây.
  + “Đăng ký khai tử - Xóa đăng ký thường trú - Trợ cấp mai táng phí”: tiếp nhận 257 hồ sơ, hoàn thành \
257 hồ sơ (đạt 100,00%); thời gian liên thông: trung vị 2,50 giây, p95 4,10 giây, tối đa 6,00 giây.

### Định danh điện tử

- Định danh điện tử (008): tiếp nhận 620.224 hồ sơ; phê duyệt 592.671 (mức 1: 300.736; mức 2: 291.935); \
kích hoạt 467.406 (mức 1: 196.290; mức 2: 271.116).
"""

TQ_EN = """\
# Data cleansing and sync with the National Population Database

Scenarios: tq-insurance, tq-labour, tq-linked.

## Tuyên Quang (008)

### Social, health and unemployment insurance

- People whose ID number (CCCD/personal ID) has been updated and verified against the National Population \
Database: 755,363/757,543, or 99.71%. People whose data is not yet in sync with the National Population \
Database: 2,180/757,543, or 0.29%.
- Legacy 9-digit ID numbers (CMND) reviewed and updated: 40/40 (100.00%).
- Names given without diacritics corrected from the National Population Database: 1,323.
- Personal ID numbers with an invalid structure sent to C06 for cancellation and re-issue, as the procedure \
requires: 300.
- Records not in sync, reviewed and cleansed: 180/180 (100.00%).
  + Records completed or corrected and sent for verification again: 180.
  + Missing fields: 180/180 (100.00%).
  + Time taken: median 1.20 s, p95 3.46 s, max 5.00 s.

| Reason not in sync | Records | Share |
|---|---:|---:|
| Name, birth date or gender differ | 1,200 | 0.16% |
| Not found in the National Population Database | 500 | 0.07% |
| Invalid personal ID structure | 300 | 0.04% |
| Missing fields | 180 | 0.02% |

### Worker information

- Worker information forms:
  + Forms collected by the commune Project 06 teams: 596,720.
  + Forms written into the National Population Database by the commune police: 577,210, or 96.73%.
  + Forms not written because the citizen has died or moved their permanent residence: 19,510, or 3.27%.

| Reason not in sync | Records | Share |
|---|---:|---:|
| Citizen deceased | 10,000 | 1.68% |
| Permanent residence moved | 9,510 | 1.59% |

### Civil status

- Birth registrations: 913/913 in sync with the National Population Database, or 100.00%; not yet in sync \
0, or 0.00%.
- Death registrations: 250/257 in sync with the National Population Database, or 97.28%; not yet in sync \
7, or 2.72%.

### Linked procedures

- Linked procedures: 1,170 dossiers received, 1,170 completed, in 2 groups:
  + “Birth registration - Permanent residence registration - Health-insurance card for a child under 6”: \
913 received, 913 completed (100.00%); time to complete: median 3.20 s, p95 5.80 s, max 7.00 s.
  + “Death registration - Permanent residence deregistration - Funeral allowance”: 257 received, \
257 completed (100.00%); time to complete: median 2.50 s, p95 4.10 s, max 6.00 s.

### e-ID (VNeID)

- e-ID (008): applications 620,224; approved 592,671 (level 1: 300,736; level 2: 291,935); activated \
467,406 (level 1: 196,290; level 2: 271,116).
"""

# Bình Định, first half of 2024 (001_…txt): 122/122 legacy IDs, 408 malformed IDs sent to C06, 54.933/54.933
# records with missing fields fixed, labour 740.564/751.108; the rest is made up.
BD = {
    "scenario": "bd",
    "totals": [
        total("insurance", "052", cleaned=36_000, corrected=122, malformed_id=408, missing_fields=54_933,
              corrections={"personal_id": 122, "full_name": 0}, legacy_ids=122, legacy_corrected=122),
        total("labour", "052", cleaned=740_564, deceased=6_000, moved=4_000, missing_fields=544),
    ],
    "cleansing": [
        {"sector": "insurance", "province": "052", "tasks": 54_933, "fixed": 54_933},
    ],
}  # fmt: skip


def merged(*summaries: dict[str, Any]) -> Merged:
    return merge_summaries((f"s{i}.json", s) for i, s in enumerate(summaries))


def write(directory: Path, name: str, content: Any) -> Path:
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


# --- the report --------------------------------------------------------------------------------------


def test_tuyen_quang_in_vietnamese() -> None:
    assert render_markdown(merged(TQ_INSURANCE, TQ_LABOUR, TQ_LINKED)) == TQ_VI


def test_tuyen_quang_in_english() -> None:
    assert render_markdown(merged(TQ_INSURANCE, TQ_LABOUR, TQ_LINKED), Lang.EN) == TQ_EN


def test_binh_dinh_in_the_seed_words() -> None:
    report = render_markdown(merged(BD))
    assert "\n- Rà soát, cập nhật CMND 9 số: 122/122 trường hợp (đạt 100,00%).\n" in report
    assert (
        "\n- Đề nghị C06 hủy, xác lập lại số định danh cá nhân đối với 408 trường hợp sai cấu trúc "
        "số định danh cá nhân theo đúng quy trình quy định.\n"
    ) in report
    assert "\n- Rà soát, làm sạch dữ liệu chưa đồng bộ: 54.933/54.933 trường hợp (đạt 100,00%).\n" in report
    assert "Hiệu chỉnh họ tên" not in report  # no names corrected: no line
    assert "gửi xác thực lại" not in report and "Thời gian xử lý" not in report  # not in the entry
    labour = report[report.index("### Thông tin về người lao động") :]
    assert labour.startswith(
        "### Thông tin về người lao động\n\n"
        "- Kết quả thu thập phiếu thông tin về người lao động:\n"
        "  + Số phiếu do Tổ công tác Đề án 06 cấp xã thu thập là: 751.108 phiếu.\n"
        "  + Số phiếu Công an cấp xã đã cập nhật vào Cơ sở dữ liệu quốc gia về dân cư: 740.564 phiếu, "
        "chiếm 98,60%.\n"
        "  + Số phiếu không cập nhật do công dân chết, chuyển nơi đăng ký thường trú: 10.000 phiếu, "
        "chiếm 1,33%.\n"
        "  + Số phiếu chưa cập nhật do thiếu trường thông tin: 544 phiếu, chiếm 0,07%.\n\n"
        "| Nguyên nhân chưa đồng bộ | Số trường hợp | Tỷ lệ |\n"
    )


def test_two_files_merge_per_province_ordered_by_code() -> None:
    report = render_markdown(merged(BD, TQ_LABOUR, TQ_INSURANCE))
    headings = [line for line in report.splitlines() if line.startswith("#")]
    assert headings == [
        "# Kết quả làm sạch, đồng bộ dữ liệu với Cơ sở dữ liệu quốc gia về dân cư",
        "## Tuyên Quang (008)",
        "### Bảo hiểm xã hội, BHYT, bảo hiểm thất nghiệp",
        "### Thông tin về người lao động",
        "## Bình Định (052)",
        "### Bảo hiểm xã hội, BHYT, bảo hiểm thất nghiệp",
        "### Thông tin về người lao động",
    ]
    assert "\nKịch bản: bd, tq-labour, tq-insurance.\n" in report


def test_the_same_entries_twice_are_reported_once() -> None:
    assert render_markdown(merged(TQ_INSURANCE, TQ_LABOUR, TQ_LINKED, TQ_LABOUR, TQ_INSURANCE)) == TQ_VI


@pytest.mark.parametrize(
    ("second", "says"),
    [
        ({"totals": [total("insurance", "008", cleaned=1)]}, "insurance 008 is in both s0.json and s1.json"),
        (
            {"totals": [], "cleansing": [{**TQ_INSURANCE["cleansing"][0], "fixed": 179}]},
            "the cleansing of insurance 008 is in both s0.json and s1.json",
        ),
        (
            {"totals": [], "chains": [{"province": "008", "kind": "birth", "started": 1, "completed": 1}]},
            "the birth linked procedures of 008 is in both s0.json and s1.json",
        ),
        (
            {"totals": [], "civil_events": [{**TQ_LINKED["civil_events"][0], "synced": 257, "unsynced": 0}]},
            "civil_status 008 death events is in both s0.json and s1.json",
        ),
        (
            {"totals": [], "eid": [{**TQ_LINKED["eid"][0], "activated": 1}]},
            "the e-ID figures of 008 is in both s0.json and s1.json",
        ),
    ],
)
def test_different_figures_for_the_same_thing_are_an_error(second: dict[str, Any], says: str) -> None:
    first = {**TQ_INSURANCE, **{k: v for k, v in TQ_LINKED.items() if k != "totals"}}
    with pytest.raises(
        ReportError, match=f"^{says} with different figures; report each from one summary only$"
    ):
        merged(first, second)


def test_different_figures_twice_in_one_file_are_an_error() -> None:
    twice = {"totals": [total("labour", "008", cleaned=1), total("labour", "008", cleaned=2)]}
    with pytest.raises(ReportError, match=r"^labour 008 is in s0\.json twice with different figures"):
        merged(twice)


def test_a_summary_of_today_without_the_new_sections() -> None:
    # What `simulate` wrote before corrections, cleansing, civil events and chains: only the sector lines.
    old = {"totals": [total("insurance", "008", cleaned=3, corrected=1)]}
    assert render_markdown(merged(old)) == (
        "# Kết quả làm sạch, đồng bộ dữ liệu với Cơ sở dữ liệu quốc gia về dân cư\n\n"
        "## Tuyên Quang (008)\n\n"
        "### Bảo hiểm xã hội, BHYT, bảo hiểm thất nghiệp\n\n"
        "- Số người có CCCD/ĐDCN đã được cập nhật và xác thực với Cơ sở dữ liệu quốc gia về dân cư: "
        "4/4 người, đạt tỷ lệ 100,00%. "
        "Số người có thông tin chưa đồng bộ với Cơ sở dữ liệu quốc gia về dân cư: 0/4, chiếm 0,00%.\n"
    )


def test_totals_without_outcomes_have_no_table_and_one_unwritten_line() -> None:
    figures = {"sector": "labour", "province": "008", "total": 596_720, "synced": 577_210, "unsynced": 19_510}
    report = render_markdown(merged({"totals": [figures]}))
    assert report.endswith(
        "  + Số phiếu chưa cập nhật vào Cơ sở dữ liệu quốc gia về dân cư: 19.510 phiếu, chiếm 3,27%.\n"
    )
    assert "|" not in report


def test_civil_status_total_unknown_sector_and_unknown_province() -> None:
    summary = {
        "totals": [total("civil_status", "019", cleaned=9, mismatch=1), total("tax", "999", cleaned=2)],
        "civil_events": [{"province": "019", "event": "adoption", "total": 1, "synced": 1, "unsynced": 0}],
    }
    report = render_markdown(merged(summary))
    assert (
        "## Thái Nguyên (019)\n\n### Hộ tịch\n\n"
        "- Số trường hợp đã xác thực, đồng bộ với Cơ sở dữ liệu quốc gia về dân cư: 9/10, đạt tỷ lệ 90,00%. "
        "Số trường hợp chưa đồng bộ: 1/10, chiếm 10,00%.\n"
        "- adoption: 1/1 hồ sơ đã đồng bộ"
    ) in report
    assert "## Mã tỉnh 999\n\n### tax\n\n- Số trường hợp" in report
    english = render_markdown(merged(summary), Lang.EN)
    assert "## Province code 999\n\n### tax\n\n- Records verified" in english


def test_a_chain_that_stalled_and_one_in_progress() -> None:
    chains = [
        {"province": "008", "kind": "birth", "started": 10, "completed": 7, "stalled": 2, "in_progress": 1}
    ]
    report = render_markdown(merged({"totals": [], "chains": chains}))
    assert report.endswith(
        "### Dịch vụ công liên thông\n\n"
        "- Tiếp nhận 10 hồ sơ, giải quyết 7 hồ sơ đối với 01 nhóm DVC liên thông:\n"
        "  + “Đăng ký khai sinh - Đăng ký thường trú - Cấp thẻ BHYT cho trẻ em dưới 6 tuổi”: "
        "tiếp nhận 10 hồ sơ, hoàn thành 7 hồ sơ (đạt 70,00%); dừng giữa chừng 2 hồ sơ; đang xử lý 1 hồ sơ.\n"
    )
    english = render_markdown(merged({"totals": [], "chains": chains}), Lang.EN)
    assert english.endswith("in 1 group:\n  + “Birth registration - Permanent residence registration - "
                            "Health-insurance card for a child under 6”: 10 received, 7 completed (70.00%); "
                            "2 stalled; 1 in progress.\n")  # fmt: skip


def test_a_cleansing_loop_without_tasks_and_corrections_without_legacy_ids_count() -> None:
    summary = {
        "totals": [
            total("insurance", "008", cleaned=1, corrected=2, corrections={"personal_id": 2, "gender": 1})
        ],
        "cleansing": [{"sector": "insurance", "province": "008", "tasks": 0, "fixed": 0}],
    }
    report = render_markdown(merged(summary))
    assert "\n- Rà soát, cập nhật CMND 9 số: 2 trường hợp.\n" in report
    assert (
        "\n- Hiệu chỉnh tự động trường gender theo Cơ sở dữ liệu quốc gia về dân cư: 1 trường hợp.\n"
        in report
    )
    assert "làm sạch dữ liệu chưa đồng bộ" not in report


def test_nothing_to_report() -> None:
    assert render_markdown(merged({"scenario": "empty", "totals": []}), Lang.EN) == (
        "# Data cleansing and sync with the National Population Database\n\n"
        "Scenarios: empty.\n\nNo figures.\n"
    )


def test_what_build_summary_writes_is_reported() -> None:
    # The contract with `simulate`: its summary passes the checks and its figures reach the report.
    rows = {
        "insurance|052|1": RecordResult("corrected", (), 5, corrected=("personal_id",), legacy_id=True),
        "insurance|052|2": RecordResult("unsynced/malformed_id", ("personal_id",), 5),
        "insurance|052|3": RecordResult(
            "cleaned", (), 5, version=2, decided_ms=3_000, first_outcome="unsynced/missing_fields",
            first_decided_ms=1_000,
        ),
    }  # fmt: skip
    summary = build_summary("bd", list(rows), rows, 0, 1.0, cleansing=[("insurance", "052")])
    report = render_markdown(merged(json.loads(json.dumps(check_summary(summary)))))
    assert "\n- Rà soát, cập nhật CMND 9 số: 1/1 trường hợp (đạt 100,00%).\n" in report
    assert "\n- Đề nghị C06 hủy, xác lập lại số định danh cá nhân đối với 1 trường hợp sai cấu trúc" in report
    assert "\n  + Thiếu trường thông tin: 1/1 trường hợp (đạt 100,00%).\n" in report
    assert "\n  + Thời gian xử lý: trung vị 2,00 giây, p95 2,00 giây, tối đa 2,00 giây.\n" in report


# --- the command -------------------------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["report", *args])


def tq_files(directory: Path) -> list[str]:
    return [
        str(write(directory, "ins.json", TQ_INSURANCE)),
        str(write(directory, "lab.json", TQ_LABOUR)),
        str(write(directory, "linked.json", TQ_LINKED)),
    ]


def test_command_prints_the_markdown_and_writes_it(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    result = run(*tq_files(tmp_path), "--markdown", str(out))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == TQ_VI
    assert out.read_text(encoding="utf-8") == TQ_VI


def test_command_in_english(tmp_path: Path) -> None:
    result = run(*tq_files(tmp_path), "--lang", "en")
    assert (result.exit_code, result.stdout) == (0, TQ_EN)


def test_command_lines_keep_the_one_line_form(tmp_path: Path) -> None:
    result = run(*tq_files(tmp_path), "--lines")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "Bảo hiểm (008): 755.363/757.543 bản ghi đã làm sạch, đạt 99,71%; chưa đồng bộ 2.180 (0,29%)",
        "Người lao động (008): 577.210/596.720 bản ghi đã làm sạch, đạt 96,73%; chưa đồng bộ 19.510 (3,27%)",
        "Định danh điện tử (008): tiếp nhận 620.224 hồ sơ; "
        "phê duyệt 592.671 (mức 1: 300.736; mức 2: 291.935); "
        "kích hoạt 467.406 (mức 1: 196.290; mức 2: 271.116)",
    ]


def test_command_conflict_names_both_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", TQ_INSURANCE)
    b = write(tmp_path, "b.json", {"totals": [total("insurance", "008", cleaned=5)]})
    result = run(str(a), str(b))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: insurance 008 is in both {a} and {b} with different figures; "
        "report each from one summary only\n"
    )


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read it (No such file or directory)"),
        ("name: yaml\n", "it is not JSON (Expecting value: line 1 column 1 (char 0))"),
        ("[1, 2]", "its top level is a JSON list, not an object"),
        ('{"hello": "world"}', "it has no 'totals' list"),
        ('{"totals": [{"sector": "insurance", "province": "008"}]}', "totals[0]: a total lacks total"),
        ('{"totals": [], "chains": [{"province": "008", "kind": "birth", "started": 1}]}',
         "chains[0] lacks completed"),
    ],
)  # fmt: skip
def test_command_bad_input_is_one_line_and_status_2(tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "s.json"
    if content is not None:
        write(tmp_path, "s.json", content)
    result = run(str(path))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: {path} is not a popsync summary: {says}")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_command_cannot_write_the_markdown(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "r.md"
    result = run(*tq_files(tmp_path), "--markdown", str(target))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: cannot write the report to {target}: No such file or directory\n"


def test_command_unknown_language(tmp_path: Path) -> None:
    result = run(*tq_files(tmp_path), "--lang", "fr")
    assert result.exit_code == 2
    assert "'fr' is not one of vi, en" in result.stderr
    assert result.stdout == ""


def test_command_needs_a_file() -> None:
    result = run()
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_the_example_in_the_docs_is_what_the_command_prints() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "report.md").read_text(encoding="utf-8")
    example = docs.split("```markdown\n", 1)[1].split("\n```", 1)[0] + "\n"
    assert example == TQ_VI


def test_the_cleansing_lines_name_only_the_kinds_the_province_fixed() -> None:
    total = {
        "sector": "labour", "province": "052", "total": 100, "synced": 95, "unsynced": 5,
        "outcomes": {"cleaned": 95, "unsynced/deceased": 3, "unsynced/missing_fields": 2},
    }  # fmt: skip
    loop = {
        "sector": "labour", "province": "052", "tasks": 13, "republished": 10, "fixed": 10,
        "tasks_by_outcome": {"unsynced/deceased": 3, "unsynced/missing_fields": 10},
        "fixed_by_outcome": {"unsynced/missing_fields": 10},
        "fix_time_s": {"p50": 1.0, "p95": 2.0, "max": 3.0},
    }  # fmt: skip
    text = render_markdown(merge_summaries([("s.json", {"totals": [total], "cleansing": [loop]})]))
    assert "  + Thiếu trường thông tin: 10/10 trường hợp (đạt 100,00%)." in text
    assert "Công dân chết: 0/3" not in text
