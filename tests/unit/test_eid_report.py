"""e-ID figures in the summary (`eid_entry`, expectations) and in report lines, in the seeds' style."""

from __future__ import annotations

from typing import Any

import pytest

from popsync.report import eid_report_line
from popsync.summary import build_summary, check_eid_expectations, eid_entry

pytestmark = pytest.mark.unit

# Tuyên Quang, December 2023, as the workers' counts would hold it (province|level|status → accounts).
TQ_COUNTS = {
    "008|1|approved": 300_736 - 196_290,
    "008|1|activated": 196_290 - 700,
    "008|1|locked/activated": 700,
    "008|2|approved": 291_935 - 271_116,
    "008|2|activated": 271_116,
    "008|2|applied": 27_553,
    "052|2|activated": 5,  # another province's: not in 008's entry
}
BD_COUNTS = {"052|2|activated": 1_006_251, "052|2|applied": 1_195_107 - 1_006_251}


def tq() -> dict[str, Any]:
    return eid_entry("008", TQ_COUNTS, eligible=640_000, as_of="2023-12-31", report="levels")


def bd() -> dict[str, Any]:
    return eid_entry("052", BD_COUNTS, eligible=1_256_188, as_of="2024-06-30", report="eligible")


def test_tuyen_quang_line() -> None:
    assert eid_report_line(tq()) == (
        "Định danh điện tử (008): tiếp nhận 620.224 hồ sơ; "
        "phê duyệt 592.671 (mức 1: 300.736; mức 2: 291.935); "
        "kích hoạt 467.406 (mức 1: 196.290; mức 2: 271.116)"
    )


def test_binh_dinh_line_as_shares_of_the_citizens_aged_14_and_over() -> None:
    assert eid_report_line(bd()) == (
        "Định danh điện tử (052): thu nhận 1.195.107/1.256.188 (95,14%); "
        "kích hoạt 1.006.251/1.256.188 (80,10%)"
    )


def test_entry_counts_milestones_by_level() -> None:
    entry = tq()
    assert entry == {
        "province": "008",
        "as_of": "2023-12-31",
        "eligible": 640_000,
        "applied": 620_224,
        "approved": 592_671,
        "activated": 467_406,
        "locked": 700,
        "level_1": {"applied": 300_736, "approved": 300_736, "activated": 196_290, "locked": 700},
        "level_2": {"applied": 319_488, "approved": 291_935, "activated": 271_116, "locked": 0},
        "statuses": {
            "activated": 467_406 - 700,
            "applied": 27_553,
            "approved": 125_265,
            "locked/activated": 700,
        },
        "report": "levels",
    }


def test_a_lock_keeps_the_milestones_it_reached() -> None:
    counts = {"019|1|locked/applied": 1, "019|1|locked/approved": 2, "019|2|locked/activated": 3}
    entry = eid_entry("019", counts, eligible=10, as_of="2023-12-31", report="levels")
    assert (entry["applied"], entry["approved"], entry["activated"], entry["locked"]) == (6, 5, 3, 6)


def test_a_province_without_accounts_has_zeros() -> None:
    entry = eid_entry("019", {}, eligible=0, as_of="2023-12-31", report="eligible")
    assert entry["applied"] == entry["level_2"]["approved"] == 0
    assert eid_report_line(entry) == "Định danh điện tử (019): thu nhận 0/0 (0,00%); kích hoạt 0/0 (0,00%)"


def test_summary_has_eid_only_with_e_id_figures() -> None:
    assert "eid" not in build_summary("s", [], {}, 0, 1.0)
    assert build_summary("s", [], {}, 0, 1.0, eid=[tq()])["eid"] == [tq()]


def test_expectations_name_what_differs() -> None:
    summary = build_summary("s", [], {}, 0, 1.0, eid=[tq(), bd()])
    good = [("008", {"applied": 620_224, "approved_level_1": 300_736, "locked_level_1": 700}),
            ("052", {"eligible": 1_256_188, "activated": 1_006_251})]  # fmt: skip
    assert check_eid_expectations(summary, good) == []
    bad = [("008", {"activated_level_2": 271_117}), ("019", {"applied": 1})]
    assert check_eid_expectations(summary, bad) == [
        "e-ID 008: activated_level_2 expected 271,117, got 271,116",
        "e-ID 019: applied expected 1, got 0",
    ]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ([], "must be a JSON object"),
        ({"province": "008"}, "lacks eligible, applied, approved, activated"),
        (
            {"province": "008", "eligible": 1, "applied": -1, "approved": 0, "activated": 0},
            "applied of an e-ID",
        ),
        (
            {"province": "008", "eligible": True, "applied": 1, "approved": 0, "activated": 0},
            "eligible of an",
        ),
    ],
)
def test_a_line_of_something_else_says_what_is_wrong(entry: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        eid_report_line(entry)
