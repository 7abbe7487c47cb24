"""Report lines in the seeds' style (`.` groups thousands, `,` is the decimal mark, two decimals), and
the summary files they are read from.

`load_summary` raises ReportError (a PopsyncError) naming the file and what is wrong with it; the line
functions raise ValueError for an entry that is not what `simulate` writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from popsync.exceptions import PopsyncError
from schemas.outcomes import RECORD_OUTCOMES

__all__ = [
    "EID_LABEL",
    "OUTCOME_LABELS",
    "SECTOR_LABELS",
    "Lang",
    "ReportError",
    "breakdown_rows",
    "chain_report_line",
    "check_summary",
    "cleansing_report_line",
    "eid_report_line",
    "en_int",
    "en_percent",
    "load_summary",
    "report_line",
    "seconds",
    "vn_int",
    "vn_percent",
]


class Lang(StrEnum):
    """The language of a report: the seeds' Vietnamese, or English for readers of neither."""

    VI = "vi"
    EN = "en"


# Kept here rather than in popsync/exceptions.py, which this module's owner does not edit; it is a
# PopsyncError, so `popsync` reports it as one line and exit status 2 like every other.
class ReportError(PopsyncError):
    """A summary cannot be reported: unreadable, not a summary, or in conflict with another summary."""


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
    "unsynced/ineligible": "không đủ điều kiện đăng ký theo luật",
}


def vn_int(value: int) -> str:
    """`757543` → `757.543`."""
    return f"{value:,}".replace(",", ".")


def vn_percent(part: int, whole: int) -> str:
    """`755363, 757543` → `99,71%` (half-up to two decimals, as a person rounding would)."""
    return f"{_ratio(part, whole)}".replace(".", ",") + "%"


def en_int(value: int) -> str:
    """`757543` → `757,543`."""
    return f"{value:,}"


def en_percent(part: int, whole: int) -> str:
    """`755363, 757543` → `99.71%`, rounded as `vn_percent` rounds."""
    return f"{_ratio(part, whole)}%"


def _ratio(part: int, whole: int) -> Decimal:
    if whole == 0:  # nothing to report is 0 %, not a division error
        return Decimal("0.00")
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def seconds(value: float, lang: Lang = Lang.VI) -> str:
    """`1234.5` → `1.234,50` (vi) or `1,234.50` (en): two decimals, half-up."""
    # str() first: Decimal(0.125) would carry the float's binary error into the rounding.
    text = f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    return text if lang == Lang.EN else text.translate(str.maketrans(",.", ".,"))


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


# The words of an e-ID line: label, then applied/approved/activated/collected, level, dossiers.
_EID_WORDS = {
    Lang.VI: (EID_LABEL, "tiếp nhận", "phê duyệt", "kích hoạt", "thu nhận", "mức", " hồ sơ"),
    Lang.EN: ("e-ID", "applications", "approved", "activated", "collected", "level", ""),
}


def eid_report_line(entry: Mapping[str, Any], lang: Lang = Lang.VI) -> str:
    """One province's e-ID figures as the seeds write them; `report` picks the form.

    `levels` (Tuyên Quang): `Định danh điện tử (008): tiếp nhận 620.224 hồ sơ; phê duyệt 592.671 (mức 1:
    300.736; mức 2: 291.935); kích hoạt 467.406 (mức 1: 196.290; mức 2: 271.116)`.
    `eligible` (Bình Định), as shares of the citizens aged 14 and over: `Định danh điện tử (052): thu nhận
    1.195.107/1.256.188 (95,14%); kích hoạt 1.006.251/1.256.188 (80,10%)`.
    In English (`lang=Lang.EN`): `e-ID (008): applications 620,224; approved 592,671 (level 1: …`.
    """
    _check_eid(entry)
    label, applied, approved, activated, collected, level, dossiers = _EID_WORDS[lang]
    integer, percent = (en_int, en_percent) if lang == Lang.EN else (vn_int, vn_percent)
    head = f"{label} ({entry['province']}): "
    if entry.get("report") == "eligible":
        eligible = entry["eligible"]
        return head + "; ".join(
            f"{verb} {integer(entry[key])}/{integer(eligible)} ({percent(entry[key], eligible)})"
            for verb, key in ((collected, "applied"), (activated, "activated"))
        )

    def by_level(name: str) -> str:
        parts = "; ".join(f"{level} {n}: {integer(entry.get(f'level_{n}', {}).get(name, 0))}" for n in (1, 2))
        return f"{integer(entry[name])} ({parts})"

    return head + (
        f"{applied} {integer(entry['applied'])}{dossiers}; {approved} {by_level('approved')}; "
        f"{activated} {by_level('activated')}"
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


def load_summary(path: Path) -> dict[str, Any]:
    """The summary JSON in `path`, checked; ReportError naming the file and what is wrong otherwise."""

    def wrong(what: str) -> ReportError:
        return ReportError(f"{path} is not a popsync summary: {what}")

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise wrong(f"it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise wrong(f"cannot read it ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise wrong(f"it is not JSON ({exc})") from exc
    except RecursionError as exc:
        raise wrong("its JSON is nested too deeply to be a summary") from exc
    try:
        return check_summary(data)
    except ValueError as exc:
        raise wrong(str(exc)) from exc


def check_summary(data: Any) -> dict[str, Any]:
    """`data` itself if it is a summary `simulate` writes; ValueError saying where and what is wrong if not.

    Only `totals` is required; the other sections (`civil_events`, `cleansing`, `chains`, `eid`) are
    checked when present, so older summaries still report.
    """
    if not isinstance(data, dict):
        raise ValueError(f"its top level is a JSON {_json_type(data)}, not an object")
    if "totals" not in data:
        raise ValueError("it has no 'totals' list; give a summary written by `popsync simulate --summary`")
    if "scenario" in data and not isinstance(data["scenario"], str):
        raise ValueError(f"'scenario' must be a string, got {data['scenario']!r}")
    if "as_of" in data:
        as_of = data["as_of"]
        try:
            if not isinstance(as_of, str) or not re.fullmatch("[0-9]{4}-[0-9]{2}-[0-9]{2}", as_of):
                raise ValueError
            date.fromisoformat(as_of)
        except ValueError:
            raise ValueError(f"'as_of' must be a date written YYYY-MM-DD, got {as_of!r}") from None
    for i, total in enumerate(_entries(data, "totals")):
        where = f"totals[{i}]"
        try:
            _check_total(total)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        _texts(total, where, "sector", "province")
        _sums(total, where)
        _count_map(total, where, "outcomes")
        _count_map(total, where, "corrections")
        _counts(total, where, "legacy_ids", "legacy_corrected", "republished", "fixed", required=False)
    for i, event in enumerate(_entries(data, "civil_events")):
        where = f"civil_events[{i}]"
        _texts(event, where, "province", "event")
        _counts(event, where, "total", "synced", "unsynced")
        _sums(event, where)
    for i, loop in enumerate(_entries(data, "cleansing")):
        where = f"cleansing[{i}]"
        _texts(loop, where, "sector", "province")
        _counts(loop, where, "tasks", "fixed")
        _counts(loop, where, "republished", required=False)
        _count_map(loop, where, "tasks_by_outcome")
        _count_map(loop, where, "fixed_by_outcome")
        _times(loop, where, "fix_time_s")
    for i, chain in enumerate(_entries(data, "chains")):
        where = f"chains[{i}]"
        _texts(chain, where, "province", "kind")
        _counts(chain, where, "started", "completed")
        _counts(chain, where, "stalled", "in_progress", required=False)
        _times(chain, where, "duration_s")
    for i, entry in enumerate(_entries(data, "eid")):
        where = f"eid[{i}]"
        try:
            _check_eid(entry)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        _texts(entry, where, "province")
        _count_map(entry, where, "level_1")
        _count_map(entry, where, "level_2")
    return data


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "number")


def _entries(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"'{key}' must be a list, got a JSON {_json_type(value)}")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"{key}[{i}] must be a JSON object, got {entry!r}")
    return value


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _texts(entry: Mapping[str, Any], where: str, *keys: str) -> None:
    for key in keys:
        if key not in entry:
            raise ValueError(f"{where} lacks {key}")
        if not isinstance(entry[key], str) or not entry[key]:
            raise ValueError(f"{where}: {key} must be a non-empty string, got {entry[key]!r}")


def _counts(entry: Mapping[str, Any], where: str, *keys: str, required: bool = True) -> None:
    for key in keys:
        if key not in entry:
            if required:
                raise ValueError(f"{where} lacks {key}")
        elif not _is_count(entry[key]):
            raise ValueError(f"{where}: {key} must be a non-negative whole number, got {entry[key]!r}")


def _sums(entry: Mapping[str, Any], where: str) -> None:
    if entry["synced"] + entry["unsynced"] != entry["total"]:
        raise ValueError(
            f"{where}: synced {entry['synced']} + unsynced {entry['unsynced']} is not total {entry['total']}"
        )


def _count_map(entry: Mapping[str, Any], where: str, key: str) -> None:
    value = entry.get(key, {})
    if not isinstance(value, dict) or not all(_is_count(n) for n in value.values()):
        raise ValueError(f"{where}: {key} must map names to non-negative whole numbers, got {value!r}")


def _times(entry: Mapping[str, Any], where: str, key: str) -> None:
    value = entry.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t >= 0
        for t in value.values()
    ):
        raise ValueError(f"{where}: {key} must map p50, p95, max to seconds, got {value!r}")


CHAIN_LABELS = {
    "birth": "Liên thông khai sinh - thường trú - thẻ BHYT trẻ em dưới 6 tuổi",
    "death": "Liên thông khai tử - xóa thường trú - trợ cấp mai táng phí",
}


def chain_report_line(entry: Mapping[str, Any]) -> str:
    """`Liên thông khai sinh - … (008): hoàn thành 913/913 hồ sơ (100,00%); dừng 0; đang xử lý 0`."""
    started, done = int(entry["started"]), int(entry["completed"])
    label = CHAIN_LABELS.get(str(entry["kind"]), str(entry["kind"]))
    return (
        f"{label} ({entry['province']}): hoàn thành {vn_int(done)}/{vn_int(started)} hồ sơ "
        f"({vn_percent(done, started)}); dừng {vn_int(int(entry['stalled']))}; "
        f"đang xử lý {vn_int(int(entry['in_progress']))}"
    )


def cleansing_report_line(entry: Mapping[str, Any]) -> str:
    """`Làm sạch lại người lao động (052): 54.933/55.341 bản ghi chưa đồng bộ đã sửa, gửi lại và đồng bộ`."""
    label = SECTOR_LABELS.get(str(entry["sector"]), str(entry["sector"]))
    fixed, tasks = int(entry["fixed"]), int(entry["tasks"])
    parts = "; ".join(
        f"{OUTCOME_LABELS.get(k, k)} {vn_int(int(n))}/{vn_int(int(entry['tasks_by_outcome'].get(k, 0)))}"
        for k, n in sorted(entry.get("fixed_by_outcome", {}).items())
    )
    return (
        f"Làm sạch lại {label} ({entry['province']}): {vn_int(fixed)}/{vn_int(tasks)} bản ghi chưa đồng bộ "
        f"đã được sửa, gửi lại và đồng bộ ({vn_percent(fixed, tasks)})" + (f": {parts}" if parts else "")
    )
