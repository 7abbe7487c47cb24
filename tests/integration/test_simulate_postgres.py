"""`popsync simulate --npd-url postgresql://…`: a scenario on a PostgreSQL NPD gives every record the outcome
the pure rules give it (as the default SQLite run does), and the NDXP's audit lands in that database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from simulate_oracle import assert_matches_oracle, assert_no_personal_data, oracle

from connectors.generate import GenerateSpec, generate_records, write_records
from mocks.ndxp.db import open_population
from mocks.ndxp.population import generate_population, write_population
from popsync.exceptions import NpdNotEmptyError
from popsync.population import load_npd
from popsync.postgres import LocalPostgres
from popsync.simulate import RunOptions, run_scenario

pytestmark = pytest.mark.integration


def test_a_scenario_runs_on_a_postgres_npd(
    kafka_bootstrap: str, postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    citizens = list(generate_population(13, {"008": 2000, "052": 2000}))
    write_population(tmp_path / "population.jsonl", citizens)
    spec = GenerateSpec.model_validate(
        {
            "records": 1200,
            "unsynced": {"mismatch": 30, "not_found": 20, "malformed_id": 10, "deceased": 10, "moved": 15},
            "corrected": {"no_diacritics": 20, "legacy_id": 15},
        }
    )
    in_008 = [c for c in citizens if c.permanent_province == "008"]
    in_052 = [c for c in citizens if c.permanent_province == "052"]
    records = generate_records(
        spec, sector="labour", province="052", citizens=in_052, other_citizens=in_008, seed=9
    )
    write_records(tmp_path / "labour.jsonl", records)
    scenario = tmp_path / "pg.yaml"
    scenario.write_text(
        "name: pg\nseed: 3\npopulation:\n  file: population.jsonl\nsources:\n"
        '  - {sector: labour, province: "052", file: labour.jsonl}\n',
        encoding="utf-8",
    )
    expected, rejected = oracle(citizens, [tmp_path / "labour.jsonl"])
    npd_url = postgres_server.create_database("simulate")

    results = tmp_path / "results.jsonl"
    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=results,
        summary=tmp_path / "s.json",
        timeout_s=600,
        workdir=tmp_path / "run",
        npd_url=npd_url,
    )
    terminal = io.StringIO()
    outcome = run_scenario(scenario, options, Console(file=terminal, width=120))

    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert_matches_oracle(summary, results, expected, rejected)
    assert sum(outcome.stream_counts.values()) == len(expected) == 1200
    assert not (tmp_path / "run" / "npd.sqlite").exists()  # the NPD was PostgreSQL, not a file
    assert_no_personal_data(
        [terminal.getvalue(), *(p.read_text() for p in (tmp_path / "run").glob("*.log"))], citizens
    )
    db = open_population(npd_url)
    try:
        assert db.count() == len(citizens)
        audit = db.audit_log()
        entries = audit.read(limit=100_000)
        assert entries and {e.endpoint for e in entries} == {"citizens.verify_batch"}
        assert {e.personal_id for e in entries} <= {c.personal_id for c in citizens}
    finally:
        db.close()


def test_a_run_refuses_an_npd_that_holds_citizens(postgres_url: str) -> None:
    citizens = list(generate_population(5, {"008": 20}))
    assert load_npd(postgres_url, {"008": citizens}, lambda _: None) == 20
    with pytest.raises(
        NpdNotEmptyError, match=r"already holds 20 citizens.*give --npd-url a new one"
    ) as info:
        load_npd(postgres_url, {"008": citizens}, lambda _: None)
    assert "@127.0.0.1" in str(info.value)
