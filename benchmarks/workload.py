"""The generated records the benchmarks share: an insurance and a labour source with the demo's defect mix."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.harness import BenchContext
from connectors.generate import GenerateSpec, generate_records
from schemas.citizen import Citizen

__all__ = ["SOURCES", "generate", "population_counts", "spec_for", "split"]

SEED = 20240601
# (sector, province, share of the records): the demo scenario's two sources, 60/40.
SOURCES: tuple[tuple[str, str, float], ...] = (("insurance", "008", 0.6), ("labour", "052", 0.4))
# Defects per 10,000 records, about the demo scenario's mix (a few percent of the traffic is not clean).
_UNSYNCED_PER_10K = {
    "mismatch": 50,
    "not_found": 30,
    "malformed_id": 20,
    "missing_fields": 15,
    "deceased": 12,
    "duplicate": 10,
    "moved": 50,
}
_CORRECTED_PER_10K = {"no_diacritics": 65, "legacy_id": 15}
# Residents per record a source needs: clean records each name a distinct alive citizen, and a generated
# population has its dead and its inconsistent IDs too.
_HEADROOM = 1.3


def spec_for(sector: str, records: int) -> GenerateSpec:
    """A `generate:` block of `records` records with the benchmark's defect mix (moved: labour only)."""

    def scaled(per_10k: int) -> int:
        return per_10k * records // 10_000

    unsynced = {k: scaled(v) for k, v in _UNSYNCED_PER_10K.items() if k != "moved" or sector == "labour"}
    corrected = {k: scaled(v) for k, v in _CORRECTED_PER_10K.items()}
    return GenerateSpec.model_validate({"records": records, "unsynced": unsynced, "corrected": corrected})


def split(total: int) -> list[tuple[str, str, int]]:
    """(sector, province, records) of each source for `total` records."""
    counts = [int(total * share) for _, _, share in SOURCES]
    counts[0] += total - sum(counts)
    return [(sector, province, n) for (sector, province, _), n in zip(SOURCES, counts, strict=True)]


def population_counts(total: int) -> dict[str, int]:
    """Residents to generate per province so that `total` records can be drawn."""
    return {province: math.ceil(n * _HEADROOM) + 100 for _, province, n in split(total)}


def generate(ctx: BenchContext, total: int) -> tuple[list[dict[str, Any]], dict[str, list[Citizen]]]:
    """`total` records in publish order (source after source), and the population they were drawn from."""
    citizens = ctx.population(SEED, population_counts(total))
    records: list[dict[str, Any]] = []
    for index, (sector, province, n) in enumerate(split(total)):
        others = [c for p, group in citizens.items() if p != province for c in group]
        records += generate_records(
            spec_for(sector, n),
            sector=sector,
            province=province,
            citizens=citizens.get(province, []),
            other_citizens=others,
            seed=SEED + index,
        )
    return records, citizens
