"""`rules`: the pure reconciliation rules (`parse_line` + `decide`) against a bare `json.loads` of the lines.

Both sides read the same ~210-byte JSON lines of the benchmark workload (clean records and the demo's
defect mix); the rules side also looks the citizen up in a dict and keeps rule 7's first holders, as a
worker does. Each side runs `ROUNDS` times, alternating, and keeps its best round.

Target: ratio ≥ 0.32, i.e. reading and judging a record may cost at most about three bare stdlib JSON
parses. `json.loads` does ~310k of these lines/s on one core of the 2-core development machine, so 0.32 is
the issue's 100k records/s. Measured in CPU time under load (other work running, best of 3 rounds, three
runs each): 0.28–0.29 before a Record was built without `frozen=True` (whose `__init__` sets every field
through `object.__setattr__`: 4.8 µs against 1.2 µs for ten fields), 0.30–0.33 after.
A worker reconciles ~9k records/s end to end (`pipeline`), so the pure rules then take about a tenth of
its time. A drop below the target means a rule started doing per-record work out of proportion (a regex
compiled per call, a copy of the record, a normalisation done twice, a pydantic model where a dict will do).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from benchmarks import workload
from benchmarks.harness import BenchContext, BenchResult, Rate, step, timed
from schemas.citizen import Citizen
from schemas.records import Record, parse_line
from schemas.rules import decide, holder_key, lookup_key
from streams.messages import dumps

__all__ = ["TARGET", "run"]

NAME = "rules"
TARGET = 0.32
RECORDS = 100_000
ROUNDS = 3  # candidate and baseline alternate; each keeps its best round (least disturbed by the machine)


def npd_index(citizens: Mapping[str, Sequence[Citizen]]) -> dict[str, Citizen]:
    """The NPD as a dict: 12-digit personal ID and 9-digit legacy ID → citizen (what a look-up returns)."""
    index: dict[str, Citizen] = {}
    for group in citizens.values():
        for c in group:
            index[c.personal_id] = c
            if c.legacy_id:
                index.setdefault(c.legacy_id, c)
    return index


def judge_all(lines: Sequence[bytes], npd: Mapping[str, Citizen]) -> int:
    """Parse and decide every line in order, keeping rule 7's first holders as a worker does."""
    holders: dict[tuple[str, str, str], str] = {}
    decided = 0
    for line in lines:
        record = parse_line(line)
        if not isinstance(record, Record):
            continue
        key = lookup_key(record)
        citizen = npd.get(key) if key else None
        holder = holder_key(record)
        first = holders.get(holder) if holder else None
        decision = decide(record, citizen, first)
        if holder and decision.passed_identity and first is None:
            holders[holder] = record.record_id
        decided += 1
    return decided


def parse_all(lines: Sequence[bytes]) -> int:
    """The baseline: `json.loads` of every line, nothing else."""
    loads = json.loads
    for line in lines:
        loads(line)
    return len(lines)


def run(ctx: BenchContext) -> BenchResult:
    n = ctx.size(RECORDS)
    with step(ctx.log, f"rules: generating {n:,} records"):
        records, citizens = workload.generate(ctx, n)
        lines = [dumps(r) for r in records]
        npd = npd_index(citizens)
    judge_all(lines[:2000], npd)  # warm-up: imports, regex caches, first-call paths
    parse_all(lines[:2000])
    best_rules = best_json = float("inf")
    with step(ctx.log, f"rules: {ROUNDS} rounds of parse_line + decide and of json.loads"):
        for _ in range(ROUNDS):
            best_json = min(best_json, timed(lambda: parse_all(lines))[1])
            best_rules = min(best_rules, timed(lambda: judge_all(lines, npd))[1])
    return BenchResult(
        NAME,
        "parse_line + decide vs json.loads",
        Rate("parse_line + decide per record", n, best_rules),
        Rate("json.loads per line", n, best_json),
        TARGET,
        {"records": n, "rounds": ROUNDS, "bytes_per_line": sum(map(len, lines)) // n},
    )
