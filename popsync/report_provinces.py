"""Report figures by legacy or by current province (issue 13): `popsync report --provinces current|legacy`.

A summary keeps each source's province code as its records name it (a 2026 form may still name the
former Hà Giang, 002). `regroup` reports them by the 63 legacy provinces (as they are) or by
the 34 current ones, adding up the figures of the legacy provinces merged into one current province:

    merged = regroup(merge_summaries(...), ProvinceMap.CURRENT)
    text = render_markdown(merged, lang, names=province_names(ProvinceMap.CURRENT))

Counts add up. Time spreads (`fix_time_s`, `duration_s`: p50, p95, max) cannot be added: the merged
province shows, for each, the largest of its parts' (an upper bound; exact when only one part has any).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from popsync.report_md import Merged
from schemas.provinces import CURRENT_PROVINCES, PROVINCES, ProvinceMap, current_province, map_for

__all__ = ["province_names", "regroup", "summaries_map"]

# Merged's sections and the fields that name one entry in each (as merge_summaries keys them).
_KEYS: dict[str, tuple[str, ...]] = {
    "totals": ("sector", "province"),
    "civil_events": ("province", "event"),
    "cleansing": ("sector", "province"),
    "chains": ("province", "kind"),
    "chain_cards": ("province",),
    "eid": ("province",),
}
_SPREADS = frozenset({"fix_time_s", "duration_s"})


def summaries_map(summaries: Iterable[Mapping[str, Any]]) -> ProvinceMap:
    """The map a report of `summaries` uses unless told: current when every one is as of 2025-07-01 or later
    (its `as_of`, from the scenario), legacy when any is earlier or has no `as_of` (a summary before it)."""
    dates = [s.get("as_of") for s in summaries]
    current = all(isinstance(d, str) and map_for(date.fromisoformat(d)) is ProvinceMap.CURRENT for d in dates)
    return ProvinceMap.CURRENT if dates and current else ProvinceMap.LEGACY


def province_names(provinces: ProvinceMap) -> Mapping[str, str]:
    """The names a report heads its provinces with under `provinces`."""
    return CURRENT_PROVINCES if provinces is ProvinceMap.CURRENT else PROVINCES


def regroup(merged: Merged, provinces: ProvinceMap) -> Merged:
    """`merged` with every entry under its province of `provinces`; merged provinces' figures added up."""
    if provinces is ProvinceMap.LEGACY:
        return merged
    out = Merged(scenarios=list(merged.scenarios))
    for section, fields in _KEYS.items():
        into: dict[tuple[str, ...], Mapping[str, Any]] = getattr(out, section)
        for entry in getattr(merged, section).values():
            moved = {**entry, "province": current_province(str(entry["province"]))}
            key = tuple(str(moved[f]) for f in fields)
            into[key] = _add(into[key], moved) if key in into else moved
    return out


def _add(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two entries of one current province as one: counts summed (nested ones too), spreads by their max."""
    out: dict[str, Any] = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key in _SPREADS and isinstance(value, Mapping):
            out[key] = {k: max(out[key].get(k, 0), v) for k, v in value.items()} | {
                k: v for k, v in out[key].items() if k not in value
            }
        elif _count(value) and _count(out[key]):
            out[key] = out[key] + value
        elif isinstance(value, Mapping) and isinstance(out[key], Mapping):
            out[key] = _add(out[key], value)
        # Anything else (the province, a sector, an e-ID `as_of` or report style) keeps the first's value.
    return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
