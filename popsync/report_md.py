"""The Markdown report of one or more summaries: per province, per sector, in the seeds' words.

`merge_summaries` joins the summaries of separate runs (say, one scenario per sector) per province and
raises ReportError when two of them hold different figures for the same thing; `render_markdown` writes
the report in Vietnamese (the seeds' sentences and number format) or in English.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from popsync.report import (
    OUTCOME_LABELS,
    SECTOR_LABELS,
    Lang,
    ReportError,
    eid_report_line,
    en_int,
    en_percent,
    seconds,
    vn_int,
    vn_percent,
)
from schemas.outcomes import RECORD_OUTCOMES
from schemas.provinces import PROVINCES

__all__ = ["EN", "VI", "Lang", "Merged", "Words", "merge_summaries", "render_markdown"]

Key = tuple[str, ...]
SECTOR_ORDER = ("insurance", "labour", "civil_status")
EVENT_ORDER = ("birth", "death", "marriage", "unreadable")
CHAIN_ORDER = ("birth", "death")
GONE = ("unsynced/deceased", "unsynced/moved")  # labour forms not written: the citizen died or moved


@dataclass(frozen=True)
class Words:
    """Every sentence of the report in one language; `{…}` take numbers already formatted."""

    title: str
    scenarios: str
    nothing: str
    province: str
    unknown_province: str
    sectors: Mapping[str, str]
    other_sector: str
    chains_heading: str
    eid_heading: str
    insurance: str
    generic: str
    labour_head: str
    labour_collected: str
    labour_written: str
    labour_unsynced: str
    labour_gone: str
    labour_other: str
    events: Mapping[str, str]
    civil_event: str
    outcomes: Mapping[str, str]
    table_head: str
    legacy: str
    legacy_count: str
    names: str
    other_correction: str
    c06: str
    cleansing_head: str
    cleansing_republished: str
    cleansing_kind: str
    cleansing_time: str
    chains_head: str
    groups: Callable[[int], str]
    chain_names: Mapping[str, str]
    chain_group: str
    chain_stalled: str
    chain_in_progress: str
    chain_time: str
    chain_cards: str
    time: str
    time_names: tuple[str, str, str]  # p50, p95, max


NPD_VI = "Cơ sở dữ liệu quốc gia về dân cư"
NPD_EN = "the National Population Database"

# The seeds' sentences (000_…txt §VII.2, §VII.7, §II.2; 001_…txt), their figures replaced.
VI = Words(
    title=f"# Kết quả làm sạch, đồng bộ dữ liệu với {NPD_VI}",
    scenarios="Kịch bản: {names}.",
    nothing="Không có số liệu.",
    province="## {name} ({code})",
    unknown_province="## Mã tỉnh {code}",
    sectors={
        "insurance": "### Bảo hiểm xã hội, BHYT, bảo hiểm thất nghiệp",
        "labour": "### Thông tin về người lao động",
        "civil_status": "### Hộ tịch",
    },
    other_sector="### {label}",
    chains_heading="### Dịch vụ công liên thông",
    eid_heading="### Định danh điện tử",
    insurance=(
        f"- Số người có CCCD/ĐDCN đã được cập nhật và xác thực với {NPD_VI}: {{synced}}/{{total}} người, "
        f"đạt tỷ lệ {{synced_pct}}. Số người có thông tin chưa đồng bộ với {NPD_VI}: "
        "{unsynced}/{total}, chiếm {unsynced_pct}."
    ),
    generic=(
        f"- Số trường hợp đã xác thực, đồng bộ với {NPD_VI}: {{synced}}/{{total}}, đạt tỷ lệ {{synced_pct}}. "
        "Số trường hợp chưa đồng bộ: {unsynced}/{total}, chiếm {unsynced_pct}."
    ),
    labour_head="- Kết quả thu thập phiếu thông tin về người lao động:",
    labour_collected="  + Số phiếu do Tổ công tác Đề án 06 cấp xã thu thập là: {total} phiếu.",
    labour_written=(
        f"  + Số phiếu Công an cấp xã đã cập nhật vào {NPD_VI}: {{synced}} phiếu, chiếm {{synced_pct}}."
    ),
    labour_unsynced=f"  + Số phiếu chưa cập nhật vào {NPD_VI}: {{unsynced}} phiếu, chiếm {{unsynced_pct}}.",
    labour_gone=(
        "  + Số phiếu không cập nhật do công dân chết, chuyển nơi đăng ký thường trú: {n} phiếu, chiếm {pct}."
    ),
    labour_other="  + Số phiếu chưa cập nhật do {label}: {n} phiếu, chiếm {pct}.",
    events={
        "birth": "Đăng ký khai sinh",
        "death": "Đăng ký khai tử",
        "marriage": "Đăng ký kết hôn",
        "unreadable": "Hồ sơ không đọc được loại sự kiện",
    },
    civil_event=(
        f"- {{event}}: {{synced}}/{{total}} hồ sơ đã đồng bộ với {NPD_VI}, đạt tỷ lệ {{synced_pct}}; "
        "chưa đồng bộ {unsynced} hồ sơ, chiếm {unsynced_pct}."
    ),
    outcomes=OUTCOME_LABELS,
    table_head="| Nguyên nhân chưa đồng bộ | Số trường hợp | Tỷ lệ |",
    legacy="- Rà soát, cập nhật CMND 9 số: {n}/{of} trường hợp (đạt {pct}).",
    legacy_count="- Rà soát, cập nhật CMND 9 số: {n} trường hợp.",
    names=f"- Hiệu chỉnh họ tên không dấu theo {NPD_VI}: {{n}} trường hợp.",
    other_correction=f"- Hiệu chỉnh tự động trường {{field}} theo {NPD_VI}: {{n}} trường hợp.",
    c06=(
        "- Đề nghị C06 hủy, xác lập lại số định danh cá nhân đối với {n} trường hợp sai cấu trúc "
        "số định danh cá nhân theo đúng quy trình quy định."
    ),
    cleansing_head="- Rà soát, làm sạch dữ liệu chưa đồng bộ: {fixed}/{tasks} trường hợp (đạt {pct}).",
    cleansing_republished="  + Số trường hợp đã bổ sung, hiệu chỉnh và gửi xác thực lại: {n}.",
    cleansing_kind="  + {label}: {fixed}/{tasks} trường hợp (đạt {pct}).",
    cleansing_time="  + Thời gian xử lý: {times}.",
    chains_head="- Tiếp nhận {started} hồ sơ, giải quyết {completed} hồ sơ đối với {groups} DVC liên thông:",
    groups=lambda n: f"{n:02d} nhóm",  # the seeds write counts of kinds with two digits: "02 nhóm"
    chain_names={
        "birth": "Đăng ký khai sinh - Đăng ký thường trú - Cấp thẻ BHYT cho trẻ em dưới 6 tuổi",
        "death": "Đăng ký khai tử - Xóa đăng ký thường trú - Trợ cấp mai táng phí",
    },
    chain_group="  + “{name}”: tiếp nhận {started} hồ sơ, hoàn thành {completed} hồ sơ (đạt {pct})",
    chain_stalled="dừng giữa chừng {n} hồ sơ",
    chain_in_progress="đang xử lý {n} hồ sơ",
    chain_time="thời gian liên thông: {times}",
    chain_cards="cấp {n} thẻ BHYT trẻ em, {synced} thẻ đã xác thực với Cơ sở dữ liệu quốc gia về dân cư",
    time="{name} {value} giây",
    time_names=("trung vị", "p95", "tối đa"),
)

EN = Words(
    title="# Data cleansing and sync with the National Population Database",
    scenarios="Scenarios: {names}.",
    nothing="No figures.",
    province="## {name} ({code})",
    unknown_province="## Province code {code}",
    sectors={
        "insurance": "### Social, health and unemployment insurance",
        "labour": "### Worker information",
        "civil_status": "### Civil status",
    },
    other_sector="### {sector}",
    chains_heading="### Linked procedures",
    eid_heading="### e-ID (VNeID)",
    insurance=(
        f"- People whose ID number (CCCD/personal ID) has been updated and verified against {NPD_EN}: "
        f"{{synced}}/{{total}}, or {{synced_pct}}. People whose data is not yet in sync with {NPD_EN}: "
        "{unsynced}/{total}, or {unsynced_pct}."
    ),
    generic=(
        f"- Records verified and in sync with {NPD_EN}: {{synced}}/{{total}}, or {{synced_pct}}. "
        "Records not yet in sync: {unsynced}/{total}, or {unsynced_pct}."
    ),
    labour_head="- Worker information forms:",
    labour_collected="  + Forms collected by the commune Project 06 teams: {total}.",
    labour_written=f"  + Forms written into {NPD_EN} by the commune police: {{synced}}, or {{synced_pct}}.",
    labour_unsynced=f"  + Forms not written into {NPD_EN}: {{unsynced}}, or {{unsynced_pct}}.",
    labour_gone=(
        "  + Forms not written because the citizen has died or moved their permanent residence: "
        "{n}, or {pct}."
    ),
    labour_other="  + Forms not written, {label}: {n}, or {pct}.",
    events={
        "birth": "Birth registrations",
        "death": "Death registrations",
        "marriage": "Marriage registrations",
        "unreadable": "Registrations whose event is unreadable",
    },
    civil_event=(
        f"- {{event}}: {{synced}}/{{total}} in sync with {NPD_EN}, or {{synced_pct}}; "
        "not yet in sync {unsynced}, or {unsynced_pct}."
    ),
    outcomes={
        "unsynced/mismatch": "name, birth date or gender differ",
        "unsynced/not_found": f"not found in {NPD_EN}",
        "unsynced/malformed_id": "invalid personal ID structure",
        "unsynced/missing_fields": "missing fields",
        "unsynced/deceased": "citizen deceased",
        "unsynced/moved": "permanent residence moved",
        "unsynced/duplicate": "duplicate",
        "unsynced/ineligible": "not eligible to register under the law",
    },
    table_head="| Reason not in sync | Records | Share |",
    legacy="- Legacy 9-digit ID numbers (CMND) reviewed and updated: {n}/{of} ({pct}).",
    legacy_count="- Legacy 9-digit ID numbers (CMND) reviewed and updated: {n}.",
    names=f"- Names given without diacritics corrected from {NPD_EN}: {{n}}.",
    other_correction=f"- Field {{field}} corrected automatically from {NPD_EN}: {{n}}.",
    c06=(
        "- Personal ID numbers with an invalid structure sent to C06 for cancellation and re-issue, "
        "as the procedure requires: {n}."
    ),
    cleansing_head="- Records not in sync, reviewed and cleansed: {fixed}/{tasks} ({pct}).",
    cleansing_republished="  + Records completed or corrected and sent for verification again: {n}.",
    cleansing_kind="  + {label}: {fixed}/{tasks} ({pct}).",
    cleansing_time="  + Time taken: {times}.",
    chains_head="- Linked procedures: {started} dossiers received, {completed} completed, in {groups}:",
    groups=lambda n: f"{n} group" if n == 1 else f"{n} groups",
    chain_names={
        "birth": (
            "Birth registration - Permanent residence registration - "
            "Health-insurance card for a child under 6"
        ),
        "death": "Death registration - Permanent residence deregistration - Funeral allowance",
    },
    chain_group="  + “{name}”: {started} received, {completed} completed ({pct})",
    chain_stalled="{n} stalled",
    chain_in_progress="{n} in progress",
    chain_time="time to complete: {times}",
    chain_cards=(
        "{n} children's health-insurance cards issued, {synced} verified against the National "
        "Population Database"
    ),
    time="{name} {value} s",
    time_names=("median", "p95", "max"),
)


@dataclass
class Merged:
    """The entries of several summaries, one per thing reported, in the order they were read."""

    scenarios: list[str] = field(default_factory=list)
    totals: dict[Key, Mapping[str, Any]] = field(default_factory=dict)  # (sector, province)
    civil_events: dict[Key, Mapping[str, Any]] = field(default_factory=dict)  # (province, event)
    cleansing: dict[Key, Mapping[str, Any]] = field(default_factory=dict)  # (sector, province)
    chains: dict[Key, Mapping[str, Any]] = field(default_factory=dict)  # (province, kind)
    chain_cards: dict[Key, Mapping[str, Any]] = field(default_factory=dict)  # (province,)
    eid: dict[Key, Mapping[str, Any]] = field(default_factory=dict)  # (province,)

    def provinces(self) -> list[str]:
        """Every province with something to report, by code."""
        codes = {k[1] for k in (*self.totals, *self.cleansing)}
        codes |= {k[0] for k in (*self.civil_events, *self.chains, *self.eid)}
        return sorted(codes)


# Section of a summary, and the Merged field it goes in → (the fields naming an entry, how to name one).
_SECTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "totals": (("sector", "province"), "{sector} {province}"),
    "civil_events": (("province", "event"), "civil_status {province} {event} events"),
    "cleansing": (("sector", "province"), "the cleansing of {sector} {province}"),
    "chains": (("province", "kind"), "the {kind} linked procedures of {province}"),
    "chain_cards": (("province",), "the children's cards of {province}"),
    "eid": (("province",), "the e-ID figures of {province}"),
}


def merge_summaries(summaries: Iterable[tuple[str, Mapping[str, Any]]]) -> Merged:
    """Join (file name, checked summary) pairs; the same entry twice is kept once if identical.

    Raises ReportError naming both files when two summaries hold different figures for the same
    (sector, province), civil event, cleansing loop, linked procedure or e-ID province.
    """
    merged = Merged()
    origin: dict[tuple[str, Key], str] = {}
    for name, summary in summaries:
        scenario = summary.get("scenario")
        if scenario and scenario not in merged.scenarios:
            merged.scenarios.append(scenario)
        for section, (fields, what) in _SECTIONS.items():
            into: dict[Key, Mapping[str, Any]] = getattr(merged, section)
            for entry in summary.get(section, []):
                key = tuple(entry[f] for f in fields)
                if key not in into:
                    into[key] = entry
                    origin[section, key] = name
                elif into[key] != entry:
                    first = origin[section, key]
                    where = f"both {first} and {name}" if first != name else f"{name} twice"
                    raise ReportError(
                        f"{what.format(**entry)} is in {where} with different figures; "
                        "report each from one summary only"
                    )
    return merged


def render_markdown(merged: Merged, lang: Lang = Lang.VI, names: Mapping[str, str] = PROVINCES) -> str:
    """The Markdown report: a section per province, in it a section per sector with figures.

    `names` heads each province code (the legacy names; `popsync.report_provinces` gives the current ones).
    """
    w = EN if lang == Lang.EN else VI
    blocks = [w.title]
    if merged.scenarios:
        blocks.append(w.scenarios.format(names=", ".join(merged.scenarios)))
    provinces = merged.provinces()
    if not provinces:
        blocks.append(w.nothing)
    for code in provinces:
        name = names.get(code)
        blocks.append(
            w.province.format(name=name, code=code) if name else w.unknown_province.format(code=code)
        )
        blocks.extend(_Province(w, lang, merged, code).blocks())
    return "\n\n".join(blocks) + "\n"


class _Province:
    """The Markdown blocks of one province's report."""

    def __init__(self, w: Words, lang: Lang, merged: Merged, code: str) -> None:
        self.w, self.lang, self.merged, self.code = w, lang, merged, code
        english = lang == Lang.EN
        self.int: Callable[[int], str] = en_int if english else vn_int
        self.pct: Callable[[int, int], str] = en_percent if english else vn_percent

    def blocks(self) -> list[str]:
        m, code = self.merged, self.code
        sectors = {s for s, p in (*m.totals, *m.cleansing) if p == code}
        if any(p == code for p, _ in m.civil_events):
            sectors.add("civil_status")
        out: list[str] = []
        for sector in [*(s for s in SECTOR_ORDER if s in sectors), *sorted(sectors - set(SECTOR_ORDER))]:
            out.extend(self.sector(sector))
        chains = [m.chains[k] for k in _ordered(m.chains, code, CHAIN_ORDER)]
        if chains:
            out += [self.w.chains_heading, "\n".join(self.chains(chains))]
        if (code,) in m.eid:
            out += [self.w.eid_heading, f"- {eid_report_line(m.eid[code,], self.lang)}."]
        return out

    def sector(self, sector: str) -> list[str]:
        w, m = self.w, self.merged
        heading = w.sectors.get(sector) or w.other_sector.format(
            sector=sector, label=SECTOR_LABELS.get(sector, sector)
        )
        total = m.totals.get((sector, self.code))
        lines = self.headline(sector, total) if total else []
        if sector == "civil_status":
            for key in _ordered(m.civil_events, self.code, EVENT_ORDER):
                lines.append(self.civil_event(m.civil_events[key]))
        if total:
            lines += self.corrections(total)
        loop = m.cleansing.get((sector, self.code))
        if loop and loop["tasks"]:
            lines += self.cleansing(loop)
        blocks = [heading, "\n".join(lines)] if lines else [heading]
        if total and total["unsynced"] and total.get("outcomes"):
            blocks.append(self.table(total))
        return blocks

    def figures(self, entry: Mapping[str, Any]) -> dict[str, str]:
        n, synced, unsynced = entry["total"], entry["synced"], entry["unsynced"]
        return {
            "total": self.int(n),
            "synced": self.int(synced),
            "unsynced": self.int(unsynced),
            "synced_pct": self.pct(synced, n),
            "unsynced_pct": self.pct(unsynced, n),
        }

    def headline(self, sector: str, total: Mapping[str, Any]) -> list[str]:
        w, figures = self.w, self.figures(total)
        if sector == "insurance":
            return [w.insurance.format(**figures)]
        if sector != "labour":
            return [w.generic.format(**figures)]
        n, outcomes = total["total"], total.get("outcomes")
        lines = [w.labour_head, w.labour_collected.format(**figures), w.labour_written.format(**figures)]
        if not outcomes:  # an older summary without the outcomes: only the sum of the unwritten forms
            if total["unsynced"]:
                lines.append(w.labour_unsynced.format(**figures))
            return lines
        gone = sum(outcomes.get(o, 0) for o in GONE)
        if gone:
            lines.append(w.labour_gone.format(n=self.int(gone), pct=self.pct(gone, n)))
        for outcome, count in _unsynced(outcomes):
            if outcome not in GONE:
                label = w.outcomes.get(outcome, outcome)
                lines.append(w.labour_other.format(label=label, n=self.int(count), pct=self.pct(count, n)))
        return lines

    def civil_event(self, event: Mapping[str, Any]) -> str:
        label = self.w.events.get(event["event"], event["event"])
        return self.w.civil_event.format(event=label, **self.figures(event))

    def corrections(self, total: Mapping[str, Any]) -> list[str]:
        w, lines = self.w, []
        corrections: Mapping[str, int] = total.get("corrections", {})
        # legacy_corrected: of the records with a legacy ID, those whose ID was mapped (summaries before it
        # count only the personal_id corrections, which are the legacy IDs mapped)
        mapped = total.get("legacy_corrected", corrections.get("personal_id", 0))
        legacy = total.get("legacy_ids", 0)
        if legacy:
            lines.append(
                w.legacy.format(n=self.int(mapped), of=self.int(legacy), pct=self.pct(mapped, legacy))
            )
        elif mapped:
            lines.append(w.legacy_count.format(n=self.int(mapped)))
        if corrections.get("full_name"):
            lines.append(w.names.format(n=self.int(corrections["full_name"])))
        for name, n in sorted(corrections.items()):
            if n and name not in ("personal_id", "full_name"):
                lines.append(w.other_correction.format(field=name, n=self.int(n)))
        malformed = total.get("outcomes", {}).get("unsynced/malformed_id", 0)
        if malformed:
            lines.append(w.c06.format(n=self.int(malformed)))
        return lines

    def cleansing(self, loop: Mapping[str, Any]) -> list[str]:
        w, tasks, fixed = self.w, loop["tasks"], loop["fixed"]
        lines = [
            w.cleansing_head.format(tasks=self.int(tasks), fixed=self.int(fixed), pct=self.pct(fixed, tasks))
        ]
        if "republished" in loop:
            lines.append(w.cleansing_republished.format(n=self.int(loop["republished"])))
        fixed_by = loop.get("fixed_by_outcome", {})
        # Per kind only where the province fixed something: a kind it cannot fix by re-publishing
        # (deceased, moved …) is already in the breakdown table, and "0/4.210" would read as a failure.
        for outcome, n in _unsynced(loop.get("tasks_by_outcome", {})):
            done = fixed_by.get(outcome, 0)
            if not done:
                continue
            label = _capital(w.outcomes.get(outcome, outcome))
            lines.append(
                w.cleansing_kind.format(
                    label=label, fixed=self.int(done), tasks=self.int(n), pct=self.pct(done, n)
                )
            )
        if loop.get("fix_time_s"):
            lines.append(w.cleansing_time.format(times=self.times(loop["fix_time_s"])))
        return lines

    def chains(self, chains: Sequence[Mapping[str, Any]]) -> list[str]:
        w = self.w
        started, completed = (sum(c[k] for c in chains) for k in ("started", "completed"))
        lines = [
            w.chains_head.format(
                started=self.int(started), completed=self.int(completed), groups=w.groups(len(chains))
            )
        ]
        for c in chains:
            parts = [
                w.chain_group.format(
                    name=w.chain_names.get(c["kind"], c["kind"]),
                    started=self.int(c["started"]),
                    completed=self.int(c["completed"]),
                    pct=self.pct(c["completed"], c["started"]),
                )
            ]
            if c.get("stalled"):
                parts.append(w.chain_stalled.format(n=self.int(c["stalled"])))
            if c.get("in_progress"):
                parts.append(w.chain_in_progress.format(n=self.int(c["in_progress"])))
            card = self.merged.chain_cards.get((self.code,)) if c["kind"] == "birth" else None
            if card and card.get("cards"):
                parts.append(
                    w.chain_cards.format(n=self.int(card["cards"]), synced=self.int(card["cards_synced"]))
                )
            if c.get("duration_s"):
                parts.append(w.chain_time.format(times=self.times(c["duration_s"])))
            lines.append("; ".join(parts) + ".")
        return lines

    def table(self, total: Mapping[str, Any]) -> str:
        rows = [self.w.table_head, "|---|---:|---:|"]
        for outcome, n in _unsynced(total["outcomes"]):
            label = _capital(self.w.outcomes.get(outcome, outcome))
            rows.append(f"| {label} | {self.int(n)} | {self.pct(n, total['total'])} |")
        return "\n".join(rows)

    def times(self, figures: Mapping[str, float]) -> str:
        w = self.w
        return ", ".join(
            w.time.format(name=name, value=seconds(figures[key], self.lang))
            for key, name in zip(("p50", "p95", "max"), w.time_names, strict=True)
            if key in figures
        )


def _ordered(entries: Mapping[Key, Any], code: str, order: Sequence[str]) -> list[Key]:
    """The (province, kind) keys of one province, the known kinds first in `order`, then the others."""
    kinds = [k for p, k in entries if p == code]
    known = [k for k in order if k in kinds]
    return [(code, k) for k in [*known, *sorted(set(kinds) - set(known))]]


def _unsynced(outcomes: Mapping[str, int]) -> list[tuple[str, int]]:
    """The non-zero unsynced outcomes, in report order, unknown ones after the known."""
    known = [o.value for o in RECORD_OUTCOMES if o.unsynced]
    extra = sorted(o for o in outcomes if o.startswith("unsynced/") and o not in known)
    return [(o, outcomes[o]) for o in [*known, *extra] if outcomes.get(o)]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
