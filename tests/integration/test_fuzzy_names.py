"""`matching: fuzzy` end to end on the real broker: planted name defects, precision, recall, explanations."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from simulate_oracle import assert_no_personal_data, read_results

from connectors.generate import GenerateSpec, generate_records
from popsync.population import scenario_population
from popsync.scenario import load_scenario
from popsync.simulate import RunOptions, run_scenario
from schemas.fuzzy_rules import judge_names
from schemas.records import Record, parse_object
from schemas.rules import decide, holder_key, lookup_key

pytestmark = pytest.mark.integration

NAMES = {"typo": 60, "tone_mark": 40, "order": 40, "dropped_middle": 40, "different_person": 60}
GENERATE: dict[str, Any] = {
    "records": 1200,
    "unsynced": {"mismatch": 20, "not_found": 15, "missing_fields": 15, "duplicate": 10},
    "corrected": {"no_diacritics": 20, "legacy_id": 10},
    "names": NAMES,
}
SCENARIO = f"""\
name: fuzzy-names
seed: 13
matching: fuzzy
population:
  generate: {{"008": 2500}}
sources:
  - sector: insurance
    province: "008"
    generate: {json.dumps(GENERATE)}
"""
COMPARED = {"cleaned", "corrected", "unsynced/mismatch"}


def oracle(scenario_path: Path) -> dict[str, tuple[str, list[str]]]:
    """record_id → (outcome, fields) by the pure rules under `matching: fuzzy`, in publish order."""
    scenario = load_scenario(scenario_path)
    citizens = scenario_population(scenario)
    records = generate_records(
        GenerateSpec.model_validate(GENERATE),
        sector="insurance",
        province="008",
        citizens=citizens["008"],
        seed=scenario.seed,  # the first source's seed
    )
    npd = {c.personal_id: c for group in citizens.values() for c in group}
    npd.update({c.legacy_id: c for group in citizens.values() for c in group if c.legacy_id})
    holders: dict[tuple[str, str, str], str] = {}
    expected = {}
    for raw in records:
        record = parse_object(raw)
        assert isinstance(record, Record)
        key = lookup_key(record)
        hkey = holder_key(record)
        first = holders.get(hkey) if hkey else None
        citizen = npd.get(key) if key else None
        decision, _ = judge_names(record, citizen, decide(record, citizen, first))
        if decision.passed_identity and first is None and hkey:
            holders[hkey] = record.record_id
        expected[record.record_id] = (decision.outcome.value, list(decision.fields))
    return expected


def test_fuzzy_scenario_measures_its_matcher(kafka_bootstrap: str, tmp_path: Path) -> None:
    scenario = tmp_path / "fuzzy.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    results, summary_path = tmp_path / "results.jsonl", tmp_path / "summary.json"
    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=results,
        summary=summary_path,
        timeout_s=600,
        workdir=tmp_path / "run",
        keep_workdir=True,
    )
    terminal = io.StringIO()
    run_scenario(scenario, options, Console(file=terminal, width=160))
    summary = json.loads(summary_path.read_text(encoding="utf-8"))

    # Precision and recall against the planted defects, per kind.
    (entry,) = summary["name_matching"]
    assert entry["matching"] == "fuzzy" and entry["planted"] == sum(NAMES.values())
    assert entry["scored"] == entry["planted"]
    assert entry["precision"] >= 0.995 and entry["recall"] >= 0.95, entry
    assert entry["kinds"]["different_person"]["false_accepts"] == 0
    assert {k: v["planted"] for k, v in entry["kinds"].items()} == NAMES

    # Every result that compared a name carries its score and explanation; the others none.
    lines = read_results(results)
    assert len(lines) == GENERATE["records"]
    for line in lines:
        match = line.get("name_match")
        if line["outcome"] in COMPARED:
            assert match is not None, line
            assert 0.0 <= match["score"] <= 1.0 and match["tokens"]
            assert match["accepted"] == (match["score"] >= match["threshold"])
            assert all({"role", "level", "similarity", "weight"} <= set(t) for t in match["tokens"])
        else:
            assert match is None, line
    # An accepted name that is not equal to the NPD's is corrected, never cleaned.
    for line in lines:
        if line["outcome"] == "cleaned":
            assert line["name_match"]["score"] == 1.0
    # Each record decided as the pure rules under `matching: fuzzy` decide it.
    expected = oracle(scenario)
    got = {line["record_id"]: (line["outcome"], line["fields"]) for line in lines}
    assert got == expected

    # No name, ID or birth date in the terminal or the logs: the explanation names roles, not words.
    citizens = [c for group in scenario_population(load_scenario(scenario)).values() for c in group]
    logs = [p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "run").glob("*.log")]
    assert_no_personal_data([terminal.getvalue(), *logs], citizens)
