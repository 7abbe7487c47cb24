"""The name matcher measured against the generator's planted name defects: precision and recall. Pure.

A generated source with a `generate.names` block knows, for every planted record, whether its name is
the citizen's written with a slip (typo, tone_mark, order, dropped_middle: the matcher should accept it)
or another person's (different_person: it should refuse it). Only the name is planted wrong, so a
record's first outcome tells what the matcher decided: synced (`corrected`) is an accept, anything else
a refusal.

- recall: accepted slips / planted slips (per kind: that kind's share accepted);
- precision: accepted slips / (accepted slips + accepted different persons); a kind's own precision is
  that of a matcher facing that kind of slip and the same planted different persons;
- `false_accepts`: different persons accepted.

A figure with nothing to divide is null. Without `matching: fuzzy` the exact rules are measured the same
way (they accept only the tone marks).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from popsync.collector import RecordResult
from schemas.outcomes import is_synced

__all__ = ["NAME_KINDS", "SAME_PERSON", "name_matching_entries", "name_matching_line"]

# The kinds of connectors.name_defects, in their report order.
NAME_KINDS = ("typo", "tone_mark", "order", "dropped_middle", "different_person")
SAME_PERSON = NAME_KINDS[:-1]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def name_matching_entries(
    planted: Mapping[tuple[str, str], Mapping[str, str]],
    results: Mapping[str, RecordResult],
    matching: str,
) -> list[dict[str, Any]]:
    """One entry per source with planted name defects: `planted` maps (sector, province) to record_id →
    kind; `results` are the collector's, keyed `sector|province|record_id`."""
    entries = []
    for (sector, province), kinds in sorted(planted.items()):
        planted_n: Counter[str] = Counter()
        accepted: Counter[str] = Counter()
        scored = 0
        for record_id, kind in kinds.items():
            result = results.get(f"{sector}|{province}|{record_id}")
            planted_n[kind] += 1
            if result is None:
                continue
            first = result.first_outcome if result.version > 1 and result.first_outcome else result.outcome
            accepted[kind] += is_synced(first)
            scored += result.name_match is not None
        true = sum(accepted[k] for k in SAME_PERSON)
        false = accepted["different_person"]
        slips = sum(planted_n[k] for k in SAME_PERSON)
        by_kind: dict[str, dict[str, Any]] = {}
        for kind in NAME_KINDS:
            if not planted_n[kind]:
                continue
            entry: dict[str, Any] = {"planted": planted_n[kind], "accepted": accepted[kind]}
            if kind == "different_person":
                entry["false_accepts"] = accepted[kind]
            else:
                entry["recall"] = _ratio(accepted[kind], planted_n[kind])
                entry["precision"] = _ratio(accepted[kind], accepted[kind] + false)
            by_kind[kind] = entry
        entries.append(
            {
                "sector": sector,
                "province": province,
                "matching": matching,
                "planted": sum(planted_n.values()),
                "scored": scored,  # planted records whose result carries a score and explanation
                "precision": _ratio(true, true + false),
                "recall": _ratio(true, slips),
                "false_accepts": false,
                "kinds": by_kind,
            }
        )
    return entries


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def name_matching_line(entry: Mapping[str, Any]) -> str:
    """`Name matching (fuzzy) insurance 008: precision 1.000, recall 0.996 over 1,000 planted; typo …`."""
    kinds = "; ".join(f"{k} {v['accepted']}/{v['planted']}" for k, v in entry["kinds"].items())
    return (
        f"Name matching ({entry['matching']}) {entry['sector']} {entry['province']}: precision "
        f"{_figure(entry['precision'])}, recall {_figure(entry['recall'])} over {entry['planted']:,} planted "
        f"(accepted: {kinds})"
    )
