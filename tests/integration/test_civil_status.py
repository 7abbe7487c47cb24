"""Civil-status registrations and the linked-procedure chains on the real broker and the real NDXP."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from connectors.civil_gen import build_civil
from popsync.population import scenario_population
from popsync.scenario import load_scenario
from popsync.simulate import Run, RunOptions, run_scenario

pytestmark = pytest.mark.integration

_CIVIL = """\
name: civil-{name}
seed: 11
population:
  generate: {{"008": 20000, "019": 2000}}
sources:
  - sector: civil_status
    province: "008"{rate}
    generate:
      births: {births}
      late_births: 4
      deaths: {deaths}
      marriages: 6
      corrected: {{no_diacritics: 3, legacy_id: 2}}
      unsynced: {{missing_fields: 3, duplicate: 3, not_found: 2, malformed_id: 2, mismatch: 3, deceased: 2}}
{later}
expect_chains:
  - {{province: "008", kind: birth, started: {birth_chains}, completed: {birth_chains}, stalled: 0}}
  - {{province: "008", kind: death, started: {death_chains}, completed: {death_chains}, stalled: 0}}
partitions: 3
"""


def _scenario(
    tmp_path: Path, name: str, births: int, deaths: int, later: str = "", rate: int | None = None
) -> Path:
    path = tmp_path / "s.yaml"
    text = _CIVIL.format(
        rate=f"\n    rate: {rate}" if rate else "",
        name=name,
        births=births,
        deaths=deaths,
        later=later,
        birth_chains=births + 4,
        death_chains=deaths + 5,
    )
    path.write_text(text, encoding="utf-8")
    return path


def _options(tmp_path: Path, kafka_bootstrap: str, on_running=None) -> RunOptions:  # type: ignore[no-untyped-def]
    return RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=tmp_path / "results.jsonl",
        summary=tmp_path / "summary.json",
        workdir=tmp_path / "run",
        on_running=on_running,
        timeout_s=600,
    )


def test_registrations_change_the_npd_and_later_stages_see_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Stage 2: labour forms of people whose death stage 1 registers, written exactly as the NPD holds them.
    scenario_path = _scenario(tmp_path, "stages", 40, 15)
    scenario = load_scenario(scenario_path)
    citizens = scenario_population(scenario)
    everyone = [c for group in citizens.values() for c in group]
    batch = build_civil(
        scenario.sources[0].civil,  # type: ignore[arg-type]
        seed=scenario.seed,
        province="008",
        citizens=everyone,
        as_of=scenario.population.as_of,
    )
    by_id = {c.personal_id: c for c in everyone}
    died = [
        by_id[r["personal_id"].strip()]
        for r in batch.records
        if batch.events[r["record_id"]] == "death"
        and batch.outcomes[r["record_id"]] == "cleaned"
        and r["personal_id"].strip() in by_id
    ]
    assert len(died) >= 10
    with (tmp_path / "labour.jsonl").open("w", encoding="utf-8") as out:
        for n, c in enumerate(died):
            record = {
                "record_id": f"LAB-{n}",
                "sector": "labour",
                "province": "008",
                "personal_id": c.personal_id,
                "full_name": c.full_name,
                "date_of_birth": c.date_of_birth.isoformat(),
                "gender": c.gender,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    later = '  - {sector: labour, province: "008", stage: 2, file: labour.jsonl}'
    scenario_path = _scenario(tmp_path, "stages", 40, 15, later)

    outcome = run_scenario(scenario_path, _options(tmp_path, kafka_bootstrap), Console(file=io.StringIO()))
    assert outcome.problems == [], outcome.problems

    results = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    civil = {r["record_id"]: r["outcome"] for r in results if r["sector"] == "civil_status"}
    assert civil == batch.outcomes  # every registration ends as the rules say, in any partition order
    labour = Counter(r["outcome"] for r in results if r["sector"] == "labour")
    assert labour == {"unsynced/deceased": len(died)}  # stage 2 saw stage 1's deaths
    cards = [r for r in results if r["sector"] == "insurance"]
    assert len(cards) == 40 and {r["outcome"] for r in cards} == {"cleaned"}  # one card per child under 6
    assert not any("personal_id" in r for r in results)  # the issued IDs stay internal

    # The NPD: one registration per synced record, the children with their residence registered.
    with sqlite3.connect(tmp_path / "run" / "npd.sqlite") as db:
        registered = db.execute("SELECT count(*) FROM civil_registrations").fetchone()[0]
        statuses = Counter(
            json.loads(extra or "{}").get("residence_status")
            for (extra,) in db.execute("SELECT extra FROM citizens WHERE extra LIKE '%residence_status%'")
        )
    synced = sum(1 for o in batch.outcomes.values() if o in ("cleaned", "corrected"))
    assert registered == synced
    assert statuses == {"registered": 44, "ended": 20}
    # The workers' own chain counts agree with the steps.
    assert outcome.chain_counts == {"008|birth|completed": 44, "008|death|completed": 20}
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    births = next(e for e in summary["civil_events"] if e["event"] == "birth")
    assert births["synced"] == 44


def test_a_worker_killed_mid_chain_completes_every_chain_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    events: list[str] = []

    def chaos(run: Run) -> None:
        def kill_then_restart() -> None:
            deadline = time.monotonic() + 300
            while len(run.collector.chains) < 100 and time.monotonic() < deadline:
                time.sleep(0.02)
            run.workers[0].kill()  # SIGKILL mid-chain: steps half sent, offsets not committed
            with run.collector.lock:
                done = sum(1 for c in run.collector.chains.values() if c["status"] == "completed")
            events.append(f"killed at {done} completed chains")
            time.sleep(2)
            run.start_worker(1)
            events.append("restarted")

        threading.Thread(target=kill_then_restart, daemon=True).start()

    # Published at 150 records/s, so registrations and chains are still coming when the worker dies.
    scenario_path = _scenario(tmp_path, "kill", 400, 200, rate=150)
    outcome = run_scenario(
        scenario_path, _options(tmp_path, kafka_bootstrap, chaos), Console(file=io.StringIO())
    )
    assert events[-1] == "restarted", events
    assert int(events[0].split()[2]) < 609, f"killed after every chain had completed: {events}"
    assert outcome.problems == [], outcome.problems  # expect_chains: every chain completed, none stalled
    assert outcome.chain_counts == {"008|birth|completed": 404, "008|death|completed": 205}
    # Each card once, however often it was issued; cards are reported with their chains, not in totals.
    assert all(t["sector"] != "insurance" for t in outcome.summary["totals"])
    (cards,) = outcome.summary["chain_cards"]
    assert (cards["province"], cards["cards"], cards["cards_synced"]) == ("008", 400, 400)
    with sqlite3.connect(tmp_path / "run" / "npd.sqlite") as db:
        children = db.execute("SELECT count(*) FROM civil_registrations WHERE event = 'birth'").fetchone()[0]
        changes = db.execute("SELECT count(*) FROM residence_changes").fetchone()[0]
    assert children == 404  # no child registered twice
    assert changes == 404 + 205  # one residence change per chain, replays answered from the table
