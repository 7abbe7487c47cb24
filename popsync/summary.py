"""The summary and results files `simulate` writes (CONTRACT.md, "What simulate writes")."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from popsync.collector import RecordResult
from schemas.outcomes import RECORD_OUTCOMES, is_synced

__all__ = ["build_summary", "check_expectations", "percentile", "write_results"]


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0
    # The rank is ceil(q * n) computed on the decimal q as written: in floats 0.07 * 100 is 7.000000000000001.
    rank = max(1, math.ceil(Fraction(q).limit_denominator(1_000_000) * len(sorted_values)))
    return int(sorted_values[min(rank, len(sorted_values)) - 1])


def build_summary(
    scenario: str,
    keys: Iterable[str],
    results: Mapping[str, RecordResult],
    rejected: int,
    duration_s: float,
) -> dict[str, Any]:
    """Totals per (sector, province) with every outcome listed, zeros included."""
    outcomes: dict[tuple[str, str], Counter[str]] = {}
    lags: list[int] = []
    n = 0
    for key in keys:
        sector, province, _ = key.split("|", 2)
        result = results[key]
        outcomes.setdefault((sector, province), Counter())[result.outcome] += 1
        lags.append(result.lag_ms)
        n += 1
    totals = []
    for (sector, province), counts in sorted(outcomes.items()):
        full = {o.value: counts.get(o.value, 0) for o in RECORD_OUTCOMES}
        total = sum(full.values())
        synced = sum(v for k, v in full.items() if is_synced(k))
        totals.append(
            {
                "sector": sector,
                "province": province,
                "total": total,
                "synced": synced,
                "unsynced": total - synced,
                "outcomes": full,
            }
        )
    lags.sort()
    return {
        "scenario": scenario,
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
            elif name in ("total", "synced", "unsynced"):
                actual = total[name]
            else:
                actual = total["outcomes"].get(name, 0)
            if actual != expected:
                problems.append(f"{sector} {province}: {name} expected {expected:,}, got {actual:,}")
    return problems
