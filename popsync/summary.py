"""The summary and results files `simulate` writes (CONTRACT.md, "What simulate writes")."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

from popsync.collector import RecordResult
from popsync.scenario import FLAT_FIGURES
from schemas.outcomes import RECORD_OUTCOMES, Sector, is_synced
from streams.chain_steps import duration_ms

# The `civil_events` row of civil-status records whose `event` is absent or unreadable (missing_fields).
UNREADABLE_EVENT = "unreadable"
_CIVIL = Sector.CIVIL_STATUS.value

__all__ = [
    "EID_APPROVED",
    "UNREADABLE_EVENT",
    "build_summary",
    "chain_entries",
    "check_chain_expectations",
    "check_eid_expectations",
    "check_expectations",
    "eid_entry",
    "percentile",
    "spread_s",
    "write_results",
]

# Statuses of an account that has reached each milestone (a lock keeps the milestone it locked).
EID_APPROVED = frozenset({"approved", "activated", "locked/approved", "locked/activated"})
EID_ACTIVATED = frozenset({"activated", "locked/activated"})
EID_LEVELS = (1, 2)


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0
    # The rank is ceil(q * n) computed on the decimal q as written: in floats 0.07 * 100 is 7.000000000000001.
    rank = max(1, math.ceil(Fraction(q).limit_denominator(1_000_000) * len(sorted_values)))
    return int(sorted_values[min(rank, len(sorted_values)) - 1])


def spread_s(sorted_ms: Sequence[int]) -> dict[str, float]:
    """p50, p95 and max of sorted milliseconds in seconds (0 for none), as `fix_time_s` and `duration_s`."""
    return {
        "p50": percentile(sorted_ms, 0.50) / 1e3,
        "p95": percentile(sorted_ms, 0.95) / 1e3,
        "max": (sorted_ms[-1] if sorted_ms else 0) / 1e3,
    }


def build_summary(
    scenario: str,
    keys: Iterable[str],
    results: Mapping[str, RecordResult],
    rejected: int,
    duration_s: float,
    eid: Sequence[Mapping[str, Any]] = (),
    *,
    cleansing: Iterable[tuple[str, str]] = (),
    chains: Mapping[str, Mapping[str, Any]] | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Totals per (sector, province) with every outcome listed, zeros included; `eid` entries if any.

    Each total also holds the sources' correction figures (`legacy_ids`, `legacy_corrected`,
    `corrections` by field) and the cleansing loop's (`republished`: records re-published with a later
    version, `fixed`: of those, the ones that moved from unsynced to synced). `cleansing` names the
    sources with a cleansing plan: each gets an entry in the summary's `cleansing` list. Civil-status
    totals are also split by event (`civil_events`); `chains` (chain ID → state) become `chains` entries,
    and the children's cards the birth chains made are counted per province in `chain_cards` (they stay
    out of the totals).
    """
    events: dict[tuple[str, str], Counter[str]] = {}
    outcomes: dict[tuple[str, str], Counter[str]] = {}
    extra: dict[tuple[str, str], Counter[str]] = {}
    tasks: dict[tuple[str, str], Counter[str]] = {}
    fixed_by: dict[tuple[str, str], Counter[str]] = {}
    fix_ms: dict[tuple[str, str], list[int]] = {}
    lags: list[int] = []
    n = 0
    cards: dict[str, Counter[str]] = {}
    for key in keys:
        sector, province, _ = key.split("|", 2)
        source = (sector, province)
        result = results[key]
        if result.chain:
            # A record a linked procedure made (a child's health-insurance card) is reported with its
            # chain, not in the sector's totals: a province's insurance figure stays its participants'.
            card = cards.setdefault(province, Counter())
            card["cards"] += 1
            card["cards_synced"] += is_synced(result.outcome)
            card[f"outcome:{result.outcome}"] += 1
            lags.append(result.lag_ms)
            n += 1
            continue
        outcomes.setdefault(source, Counter())[result.outcome] += 1
        if result.event or sector == _CIVIL:
            # A civil-status record whose `event` is unreadable has a row of its own, so the rows of a
            # province add up to its civil-status total.
            by_event = events.setdefault((province, result.event or UNREADABLE_EVENT), Counter())
            by_event["total"] += 1
            by_event["synced"] += is_synced(result.outcome)
        figures = extra.setdefault(source, Counter())
        figures["legacy_ids"] += result.legacy_id
        figures["legacy_corrected"] += result.legacy_id and "personal_id" in result.corrected
        for name in result.corrected:
            figures[f"corrected:{name}"] += 1
        first = (result.first_outcome if result.version > 1 else result.outcome) or ""
        was_unsynced = first.startswith("unsynced/")
        if was_unsynced:
            tasks.setdefault(source, Counter())[first] += 1
        if result.version > 1:
            figures["republished"] += 1
            if was_unsynced and is_synced(result.outcome):
                figures["fixed"] += 1
                fixed_by.setdefault(source, Counter())[first] += 1
                fix_ms.setdefault(source, []).append(result.decided_ms - result.first_decided_ms)
        lags.append(result.lag_ms)
        n += 1
    totals = []
    for (sector, province), counts in sorted(outcomes.items()):
        full = {o.value: counts.get(o.value, 0) for o in RECORD_OUTCOMES}
        total = sum(full.values())
        synced = sum(v for k, v in full.items() if is_synced(k))
        figures = extra[(sector, province)]
        totals.append(
            {
                "sector": sector,
                "province": province,
                "total": total,
                "synced": synced,
                "unsynced": total - synced,
                "outcomes": full,
                "corrections": {f: figures[f"corrected:{f}"] for f in ("personal_id", "full_name")},
                "legacy_ids": figures["legacy_ids"],
                "legacy_corrected": figures["legacy_corrected"],
                "republished": figures["republished"],
                "fixed": figures["fixed"],
            }
        )
    cleansing_entries = []
    for source in sorted(set(cleansing)):
        todo, figures = tasks.get(source, Counter()), extra.get(source, Counter())
        cleansing_entries.append(
            {
                "sector": source[0],
                "province": source[1],
                "tasks": todo.total(),
                "tasks_by_outcome": dict(sorted(todo.items())),
                "republished": figures["republished"],
                "fixed": figures["fixed"],
                "fixed_by_outcome": dict(sorted(fixed_by.get(source, Counter()).items())),
                "fix_time_s": spread_s(sorted(fix_ms.get(source, []))),
            }
        )
    lags.sort()
    summary: dict[str, Any] = {
        "scenario": scenario,
        # the scenario's `as_of`: `popsync report` groups by the current provinces from 2025-07-01 on
        **({"as_of": as_of.isoformat()} if as_of is not None else {}),
        "totals": totals,
        "rejected": rejected,
        "duration_s": round(duration_s, 3),
        "records_per_s": round(n / duration_s, 1) if duration_s > 0 else 0.0,
        "sync_lag_ms": {
            "p50": percentile(lags, 0.50),
            "p95": percentile(lags, 0.95),
            "p99": percentile(lags, 0.99),
        },
    }
    # Sections only for scenarios that have them.
    if events:
        summary["civil_events"] = [
            {
                "province": p,
                "event": e,
                "total": c["total"],
                "synced": c["synced"],
                "unsynced": c["total"] - c["synced"],
            }
            for (p, e), c in sorted(events.items())
        ]
    if cleansing_entries:
        summary["cleansing"] = cleansing_entries
    if chains:
        summary["chains"] = chain_entries(chains)
    if cards:
        summary["chain_cards"] = [
            {
                "province": p,
                "cards": c["cards"],
                "cards_synced": c["cards_synced"],
                "outcomes": {o.value: c[f"outcome:{o.value}"] for o in RECORD_OUTCOMES},
            }
            for p, c in sorted(cards.items())
        ]
    if eid:
        summary["eid"] = [dict(e) for e in eid]
    return summary


def chain_entries(chains: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (province, kind): chains started, completed, stalled, in progress, and how long they took."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    took: dict[tuple[str, str], list[int]] = {}
    for state in chains.values():
        where = (str(state["province"]), str(state["kind"]))
        counts.setdefault(where, Counter())[str(state["status"])] += 1
        took_ms = duration_ms(state)
        if took_ms is not None and state["status"] == "completed":
            took.setdefault(where, []).append(took_ms)
    entries = []
    for (province, kind), c in sorted(counts.items()):
        ms = sorted(took.get((province, kind), []))
        entries.append(
            {
                "province": province,
                "kind": kind,
                "started": sum(c.values()),
                "completed": c["completed"],
                "stalled": c["stalled"],
                "in_progress": c["in_progress"],
                "duration_s": spread_s(ms),
            }
        )
    return entries


def check_chain_expectations(
    summary: Mapping[str, Any], expectations: Iterable[tuple[str, str, Mapping[str, int]]]
) -> list[str]:
    """The chain figures that differ, each as a sentence naming province, kind, figure, both values."""
    by_key = {(c["province"], c["kind"]): dict(c) for c in summary.get("chains", [])}
    for card in summary.get("chain_cards", []):
        by_key.setdefault((card["province"], "birth"), {}).update(card)
    problems = []
    for province, kind, figures in expectations:
        entry = by_key.get((province, kind), {})
        for name, expected in figures.items():
            actual = int(entry.get(name, 0))
            if actual != expected:
                problems.append(f"{kind} chains {province}: {name} expected {expected:,}, got {actual:,}")
    return problems


def eid_entry(
    province: str, counts: Mapping[str, int], *, eligible: int, as_of: str, report: str
) -> dict[str, Any]:
    """One province's e-ID figures from the workers' counts (`province|level|status` → accounts).

    Every account applied; `approved` and `activated` count the accounts that reached the milestone (an
    activated account was approved; a locked one keeps what it reached); `locked` those locked now.
    """
    statuses: Counter[str] = Counter()
    levels = {n: Counter[str]() for n in EID_LEVELS}
    for label, n in counts.items():
        where, level, status = label.split("|", 2)
        if where != province or not n:
            continue
        statuses[status] += n
        figures = levels.setdefault(int(level), Counter())
        figures["applied"] += n
        if status in EID_APPROVED:
            figures["approved"] += n
        if status in EID_ACTIVATED:
            figures["activated"] += n
        if status.startswith("locked"):
            figures["locked"] += n
    names = ("applied", "approved", "activated", "locked")
    entry: dict[str, Any] = {"province": province, "as_of": as_of, "eligible": eligible}
    entry.update({name: sum(f[name] for f in levels.values()) for name in names})
    for n, figures in sorted(levels.items()):
        entry[f"level_{n}"] = {name: figures[name] for name in names}
    entry["statuses"] = dict(sorted(statuses.items()))
    entry["report"] = report
    return entry


def _eid_figure(entry: Mapping[str, Any], key: str) -> int:
    name, _, level = key.partition("_level_")
    if level:
        return int(entry.get(f"level_{level}", {}).get(name, 0))
    return int(entry.get(name, 0))


def check_eid_expectations(
    summary: Mapping[str, Any], expectations: Iterable[tuple[str, Mapping[str, int]]]
) -> list[str]:
    """The e-ID figures that differ, each naming the province, the figure, expected and actual."""
    by_province = {e["province"]: e for e in summary.get("eid", [])}
    problems = []
    for province, figures in expectations:
        entry = by_province.get(province, {})
        for key, expected in figures.items():
            actual = _eid_figure(entry, key)
            if actual != expected:
                problems.append(f"e-ID {province}: {key} expected {expected:,}, got {actual:,}")
    return problems


def write_results(
    path: Path,
    keys: Iterable[str],
    results: Mapping[str, RecordResult],
    rejected: Iterable[Mapping[str, Any]],
) -> int:
    """One JSON line per record in publish order, then one per rejected line (outcome `rejected`)."""
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for key in keys:
            sector, province, record_id = key.split("|", 2)
            r = results[key]
            line: dict[str, Any] = {
                "record_id": record_id,
                "sector": sector,
                "province": province,
                "outcome": r.outcome,
                "fields": list(r.fields),
            }
            if r.version > 1:  # a corrected re-publication superseded the first outcome
                line["version"] = r.version
                line["first_outcome"] = r.first_outcome
            if r.name_match is not None:  # `matching: fuzzy`: the score and its explanation
                line["name_match"] = dict(r.name_match)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            written += 1
        for body in rejected:
            line = {
                "record_id": body.get("record_id"),
                "sector": body.get("sector"),
                "province": body.get("province"),
                "outcome": "rejected",
                "fields": [],
                "reason": body.get("reason"),
                "origin": body.get("origin"),
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            written += 1
    return written


def check_expectations(
    summary: Mapping[str, Any], expectations: Iterable[tuple[str, str, Mapping[str, int]]]
) -> list[str]:
    """The figures that differ, each as a sentence naming the source, the figure, expected and actual."""
    by_source = {(t["sector"], t["province"]): t for t in summary["totals"]}
    problems = []
    for sector, province, figures in expectations:
        total = by_source.get((sector, province))
        for name, expected in figures.items():
            if total is None:
                actual = 0
            elif name in ("total", "synced", "unsynced", *FLAT_FIGURES):
                actual = int(total.get(name, 0))
            else:
                actual = total["outcomes"].get(name, 0)
            if actual != expected:
                problems.append(f"{sector} {province}: {name} expected {expected:,}, got {actual:,}")
    return problems
