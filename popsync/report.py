"""Report lines in the seeds' style: `.` groups thousands, `,` is the decimal mark, two decimals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from schemas.outcomes import RECORD_OUTCOMES

__all__ = [
    "EID_LABEL",
    "OUTCOME_LABELS",
    "SECTOR_LABELS",
    "breakdown_rows",
    "eid_report_line",
    "report_line",
    "vn_int",
    "vn_percent",
]

SECTOR_LABELS = {"insurance": "Bảo hiểm", "labour": "Người lao động", "civil_status": "Hộ tịch"}
EID_LABEL = "Định danh điện tử"

# The seeds' Vietnamese terms for each unsynced kind (DOMAIN.md).
OUTCOME_LABELS = {
    "cleaned": "đã xác thực, đồng bộ",
    "corrected": "đã hiệu chỉnh tự động",
    "unsynced/mismatch": "thông tin chưa khớp",
    "unsynced/not_found": "không có thông tin trên hệ thống",
    "unsynced/malformed_id": "sai cấu trúc số định danh",
    "unsynced/missing_fields": "thiếu trường thông tin",
    "unsynced/deceased": "công dân chết",
    "unsynced/moved": "chuyển nơi đăng ký thường trú",
    "unsynced/duplicate": "trùng lặp",
}


def vn_int(value: int) -> str:
    """`757543` → `757.543`."""
    return f"{value:,}".replace(",", ".")


def vn_percent(part: int, whole: int) -> str:
    """`755363, 757543` → `99,71%` (half-up to two decimals, as a person rounding would)."""
    if whole == 0:
        return "0,00%"
    ratio = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{ratio}".replace(".", ",") + "%"


def report_line(total: Mapping[str, Any]) -> str:
    """`Bảo hiểm (008): 755.363/757.543 bản ghi đã làm sạch, đạt 99,71%; chưa đồng bộ 2.180 (0,29%)`."""
    _check_total(total)
    label = SECTOR_LABELS.get(total["sector"], total["sector"])
    n, synced, unsynced = total["total"], total["synced"], total["unsynced"]
    return (
        f"{label} ({total['province']}): {vn_int(synced)}/{vn_int(n)} bản ghi đã làm sạch, "
        f"đạt {vn_percent(synced, n)}; chưa đồng bộ {vn_int(unsynced)} ({vn_percent(unsynced, n)})"
    )


def _check_total(total: Any) -> None:
    """Raise ValueError saying what is wrong unless `total` is a summary total as `simulate` writes it."""
    if not isinstance(total, Mapping):
        raise ValueError(f"a total must be a JSON object, got {total!r}")
    missing = [k for k in ("sector", "province", "total", "synced", "unsynced") if k not in total]
    if missing:
        raise ValueError(f"a total lacks {', '.join(missing)}: {dict(total)!r}")
    for key in ("total", "synced", "unsynced"):
        value = total[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key} of a total must be a non-negative whole number, got {value!r}")


def eid_report_line(entry: Mapping[str, Any]) -> str:
    """One province's e-ID figures as the seeds write them; `report` picks the form.

    `levels` (Tuyên Quang): `Định danh điện tử (008): tiếp nhận 620.224 hồ sơ; phê duyệt 592.671 (mức 1:
    300.736; mức 2: 291.935); kích hoạt 467.406 (mức 1: 196.290; mức 2: 271.116)`.
    `eligible` (Bình Định), as shares of the citizens aged 14 and over: `Định danh điện tử (052): thu nhận
    1.195.107/1.256.188 (95,14%); kích hoạt 1.006.251/1.256.188 (80,10%)`.
    """
    _check_eid(entry)
    head = f"{EID_LABEL} ({entry['province']}): "
    if entry.get("report") == "eligible":
        eligible = entry["eligible"]
        return head + "; ".join(
            f"{verb} {vn_int(entry[key])}/{vn_int(eligible)} ({vn_percent(entry[key], eligible)})"
            for verb, key in (("thu nhận", "applied"), ("kích hoạt", "activated"))
        )

    def by_level(name: str) -> str:
        parts = "; ".join(f"mức {n}: {vn_int(entry.get(f'level_{n}', {}).get(name, 0))}" for n in (1, 2))
        return f"{vn_int(entry[name])} ({parts})"

    return head + (
        f"tiếp nhận {vn_int(entry['applied'])} hồ sơ; phê duyệt {by_level('approved')}; "
        f"kích hoạt {by_level('activated')}"
    )


def _check_eid(entry: Any) -> None:
    """Raise ValueError saying what is wrong unless `entry` is an e-ID entry as `simulate` writes it."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"an e-ID entry must be a JSON object, got {entry!r}")
    missing = [k for k in ("province", "eligible", "applied", "approved", "activated") if k not in entry]
    if missing:
        raise ValueError(f"an e-ID entry lacks {', '.join(missing)}: {dict(entry)!r}")
    for key in ("eligible", "applied", "approved", "activated"):
        value = entry[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key} of an e-ID entry must be a non-negative whole number, got {value!r}")


def breakdown_rows(total: Mapping[str, Any]) -> Sequence[tuple[str, str, str, str]]:
    """Rows (outcome, Vietnamese term, count, share) of one total, non-zero outcomes only."""
    outcomes = total["outcomes"]
    return [
        (
            o.value,
            OUTCOME_LABELS[o.value],
            vn_int(outcomes[o.value]),
            vn_percent(outcomes[o.value], total["total"]),
        )
        for o in RECORD_OUTCOMES
        if outcomes.get(o.value)
    ]
