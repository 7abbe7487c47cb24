"""What a `simulate` run must produce, by the pure rules one line at a time; checks of what a run wrote.

Importable as `simulate_oracle`: `tests/conftest.py` puts this folder on `sys.path`.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.lgsp import iter_file_lines
from schemas.citizen import Citizen
from schemas.records import Rejected, parse_line
from schemas.rules import decide, lookup_key

__all__ = [
    "Expected",
    "assert_matches_oracle",
    "assert_no_personal_data",
    "expected_outcomes",
    "oracle",
    "read_results",
]


@dataclass
class Expected:
    """Per-record outcomes (key "sector|province|record_id" → (outcome, fields)) and the rejected lines
    (origin "file:line" as the connector names them)."""

    outcomes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    lines: int = 0  # non-empty lines read


def expected_outcomes(citizens: Iterable[Citizen], files: Iterable[Path]) -> Expected:
    """The pure rules applied one record at a time in publish order: what Kafka must reproduce.

    Like the connector, a record whose (sector, province, record_id) repeats an earlier record of the run
    is rejected (dead-lettered) without being decided.
    """
    lookup: dict[str, Citizen] = {}
    for c in citizens:
        lookup[c.personal_id] = c
        if c.legacy_id:
            lookup[c.legacy_id] = c
    holders: dict[tuple[str, str, str], str] = {}
    out = Expected()
    for path in files:
        for number, line in iter_file_lines(path):
            record = parse_line(line)
            if record is None:
                continue
            out.lines += 1
            if isinstance(record, Rejected):
                out.rejected.append(f"{path.name}:{number}")
                continue
            result_key = f"{record.sector}|{record.province}|{record.record_id}"
            if result_key in out.outcomes:
                out.rejected.append(f"{path.name}:{number}")
                continue
            key = lookup_key(record)
            hk = (record.sector, record.province, key or "")
            decision = decide(record, lookup.get(key) if key else None, holders.get(hk) if key else None)
            if key and decision.passed_identity and hk not in holders:
                holders[hk] = record.record_id
            out.outcomes[result_key] = (decision.outcome.value, list(decision.fields))
    return out


def oracle(
    citizens: Iterable[Citizen], files: Iterable[Path]
) -> tuple[dict[str, tuple[str, list[str]]], int]:
    """`expected_outcomes` as (per-record outcomes, number of rejected lines)."""
    expected = expected_outcomes(citizens, files)
    return expected.outcomes, len(expected.rejected)


def assert_no_personal_data(texts: list[str], citizens: list[Citizen]) -> None:
    """No personal ID, legacy ID, name or birth date of any citizen in what was logged or printed."""
    text = unicodedata.normalize("NFC", "\n".join(texts))
    assert len(text) > 200, "the run logged something to check"
    leaked = [
        c.personal_id
        for c in citizens
        if c.personal_id in text
        or (c.legacy_id and c.legacy_id in text)
        or unicodedata.normalize("NFC", c.full_name) in text
        or c.date_of_birth.isoformat() in text
        or c.date_of_birth.strftime("%d/%m/%Y") in text  # as the seeds and many sector files write it
    ]
    assert leaked == [], f"{len(leaked)} citizens' data in the logs"


def read_results(path: Path) -> list[dict[str, Any]]:
    """The lines of a --results file. Split on `\n` only: a record_id may hold U+2028 or U+0085, which JSON
    allows raw and `str.splitlines` would split on."""
    with path.open(encoding="utf-8", newline="\n") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def assert_matches_oracle(
    outcome_summary: dict[str, Any], results_path: Path, expected: dict[str, Any], rejected: int
) -> None:
    """The run's --results file and summary hold exactly the expected outcomes and rejected count."""
    lines = read_results(results_path)
    records = [r for r in lines if r["outcome"] != "rejected"]
    got = {f"{r['sector']}|{r['province']}|{r['record_id']}": (r["outcome"], r["fields"]) for r in records}
    assert len(records) == len(got), "one result line per record"
    assert got == expected
    assert sum(1 for r in lines if r["outcome"] == "rejected") == rejected == outcome_summary["rejected"]
    # the summary's counts are exactly the per-record outcomes
    per_source: dict[tuple[str, str], Counter[str]] = {}
    for r in records:
        per_source.setdefault((r["sector"], r["province"]), Counter())[r["outcome"]] += 1
    for total in outcome_summary["totals"]:
        counts = per_source[(total["sector"], total["province"])]
        assert {k: v for k, v in total["outcomes"].items() if v} == dict(counts)
        assert total["total"] == sum(counts.values())
        assert total["synced"] == counts["cleaned"] + counts["corrected"]
