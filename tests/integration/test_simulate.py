"""A scenario end to end on the real broker: every record's outcome checked against the pure rules."""

from __future__ import annotations

import io
import json
import threading
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from simulate_oracle import assert_matches_oracle, assert_no_personal_data, oracle

from connectors.generate import GenerateSpec, generate_records, write_records
from mocks.ndxp.population import generate_population, write_population
from popsync.simulate import Run, RunOptions, run_scenario
from schemas.citizen import Citizen

pytestmark = pytest.mark.integration


def _line(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False)


def tricky_lines(pop: list[Citizen]) -> list[bytes]:
    """Hand-written lines that exercise the readings of CONTRACT.md a generator would not produce."""
    alive = [c for c in pop if not c.deceased]
    a, b, c = alive[0], alive[1], alive[2]
    legacy = next(x for x in alive if x.legacy_id)
    dead = next(x for x in pop if x.deceased)
    nfd = unicodedata.normalize("NFD", a.full_name)
    dmy = a.date_of_birth.strftime("%d/%m/%Y")
    lines = [
        # a BOM in front of the first line is ignored
        "\ufeff"
        + _line(
            record_id="T-1",
            sector="insurance",
            province="008",
            personal_id=a.personal_id,
            full_name=nfd,
            date_of_birth=dmy,
            gender="Nam" if a.gender == "male" else "Nữ",
            insurance_code="0123456789",
        ),
        _line(
            record_id="T-2",
            sector="insurance",
            province="008",
            personal_id=f"  {a.personal_id} ",
            full_name=a.full_name,
            date_of_birth=str(a.date_of_birth),
            gender=a.gender,
            insurance_code="0123456788",
        ),  # same person again: duplicate
        _line(
            record_id="T-3",
            sector="labour",
            province="008",
            personal_id=legacy.legacy_id,
            full_name=legacy.full_name.upper(),
            date_of_birth=str(legacy.date_of_birth),
            gender=legacy.gender,
        ),
        _line(
            record_id="T-4",
            sector="labour",
            province="008",
            personal_id=b.personal_id,
            full_name=b.full_name,
            date_of_birth="1990-02-30",
            gender="x",
        ),  # two unreadable fields
        _line(
            record_id="T-5",
            sector="labour",
            province="008",
            personal_id=12345,
            full_name=c.full_name,
            date_of_birth=str(c.date_of_birth),
            gender=c.gender,
        ),  # a number is not an ID
        _line(
            record_id="T-6",
            sector="labour",
            province="008",
            personal_id=dead.personal_id,
            full_name=dead.full_name,
            date_of_birth=str(dead.date_of_birth),
            gender=dead.gender,
        ),
        _line(
            record_id="T-7",
            sector="labour",
            province="008",
            personal_id="099" + "1" * 9,
            full_name="X",
            date_of_birth="2000-01-01",
            gender="male",
        ),  # unknown province code
        _line(
            record_id="T-8",
            sector="insurance",
            province="008",
            personal_id=c.personal_id,
            full_name="Tên Khác Hẳn",
            date_of_birth=str(c.date_of_birth),
            gender=c.gender,
            insurance_code="0123456787",
        ),  # mismatch
        "   ",  # white space only: rejected
        "",  # empty: skipped
        "[1, 2]",  # not an object: rejected
        _line(sector="labour", province="008"),  # no record_id: rejected
        _line(record_id="T-9", sector="labour", province="8", personal_id=c.personal_id),  # bad province
        _line(record_id="T-10", sector="tax", province="008"),  # bad sector
    ]
    out = [line.encode() for line in lines]
    out.append(b'{"record_id": "T-11", "full_name": "\xff\xfe"}')  # not UTF-8: rejected
    return out


def _write_scenario(
    tmp: Path,
    name: str,
    files: list[str],
    expect: list[dict[str, Any]] | None = None,
    rate: float | None = None,
) -> Path:
    paced = f", rate: {rate}" if rate else ""
    sources = "\n".join(f'  - {{sector: insurance, province: "008", file: {f}{paced}}}' for f in files)
    text = f"name: {name}\nseed: 3\npopulation:\n  file: population.jsonl\nsources:\n{sources}\n"
    if expect:
        text += "expect:\n" + "\n".join(f"  - {json.dumps(e)}" for e in expect) + "\n"
    path = tmp / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Citizen]]:
    tmp = tmp_path_factory.mktemp("pop")
    citizens = list(generate_population(11, {"008": 6000, "052": 3000}))
    write_population(tmp / "population.jsonl", citizens)
    return tmp, citizens


def test_scenario_outcomes_follow_the_rules(
    kafka_bootstrap: str, population: tuple[Path, list[Citizen]], tmp_path: Path
) -> None:
    pop_dir, citizens = population
    (tmp_path / "population.jsonl").write_bytes((pop_dir / "population.jsonl").read_bytes())
    in_008 = [c for c in citizens if c.permanent_province == "008"]
    in_052 = [c for c in citizens if c.permanent_province == "052"]
    spec = GenerateSpec.model_validate(
        {
            "records": 2500,
            "unsynced": {
                "mismatch": 40,
                "not_found": 30,
                "malformed_id": 20,
                "missing_fields": 25,
                "deceased": 10,
                "duplicate": 15,
                "moved": 20,
            },
            "corrected": {"no_diacritics": 30, "legacy_id": 15},
        }
    )
    write_records(
        tmp_path / "labour.jsonl",
        generate_records(
            spec, sector="labour", province="052", citizens=in_052, other_citizens=in_008, seed=5
        ),
    )
    (tmp_path / "tricky.jsonl").write_bytes(b"\n".join(tricky_lines(in_008)) + b"\n")
    scenario = _write_scenario(tmp_path, "rules", ["tricky.jsonl", "labour.jsonl"])
    expected, rejected = oracle(citizens, [tmp_path / "tricky.jsonl", tmp_path / "labour.jsonl"])
    assert rejected == 6 and len(expected) == 2500 + 8

    garbage: list[str] = []

    def inject_garbage(run: Run) -> None:
        # A message that is not a record, published straight to a records topic (not through a connector),
        # must reach the dead-letter topic from the worker too.
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=run.bootstrap_servers)
        producer.send(run.topics.records("labour"), key=b"x", value=b"{not json").get(timeout=30)
        producer.close()
        garbage.append("sent")

    results = tmp_path / "results.jsonl"
    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=results,
        summary=tmp_path / "s.json",
        on_running=inject_garbage,
        timeout_s=600,
        workdir=tmp_path / "run",
    )
    terminal = io.StringIO()
    outcome = run_scenario(scenario, options, Console(file=terminal, width=120))
    assert_no_personal_data(
        [terminal.getvalue(), *(p.read_text() for p in (tmp_path / "run").glob("*.log"))], citizens
    )
    # the worker's dead-letter entry may land after the last record's outcome; give it a moment
    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert garbage == ["sent"]
    worker_rejects = summary["rejected"] - rejected
    assert worker_rejects in (0, 1)
    expected_rejected = rejected + worker_rejects
    assert_matches_oracle(summary, results, expected, expected_rejected)
    # the workers' own counts (from their progress snapshots) agree with the per-record outcomes
    assert sum(outcome.stream_counts.values()) == len(expected)
    # the dead-letter entries carry a reason
    reasons = [
        json.loads(x).get("reason")
        for x in results.read_text(encoding="utf-8").splitlines()
        if json.loads(x)["outcome"] == "rejected"
    ]
    assert all(reasons) and any("UTF-8" in r for r in reasons)


@pytest.mark.slow
def test_worker_killed_mid_run_counts_stay_exact(
    kafka_bootstrap: str, population: tuple[Path, list[Citizen]], tmp_path: Path
) -> None:
    pop_dir, citizens = population
    (tmp_path / "population.jsonl").write_bytes((pop_dir / "population.jsonl").read_bytes())
    in_008 = [c for c in citizens if c.permanent_province == "008"]
    spec = GenerateSpec.model_validate(
        {
            "records": 5500,
            "unsynced": {
                "mismatch": 50,
                "not_found": 40,
                "malformed_id": 30,
                "missing_fields": 20,
                "deceased": 25,
                "duplicate": 60,
            },
            "corrected": {"no_diacritics": 40, "legacy_id": 20},
        }
    )
    write_records(
        tmp_path / "ins.jsonl",
        generate_records(spec, sector="insurance", province="008", citizens=in_008, seed=9),
    )
    expected, rejected = oracle(citizens, [tmp_path / "ins.jsonl"])
    counts = Counter(o for o, _ in expected.values())
    # Paced, so that the kill lands mid-run however fast a worker reconciles (about 5 s of publishing).
    scenario = _write_scenario(
        tmp_path,
        "kill",
        ["ins.jsonl"],
        rate=1100,
        expect=[
            {
                "sector": "insurance",
                "province": "008",
                "total": 5500,
                "duplicate": 60,
                "synced": counts["cleaned"] + counts["corrected"],
            }
        ],
    )
    events: list[str] = []

    def chaos(run: Run) -> None:
        def kill_then_restart() -> None:
            deadline = time.monotonic() + 300
            while len(run.collector.results) < 800 and time.monotonic() < deadline:
                time.sleep(0.05)
            run.workers[0].kill()  # SIGKILL: no goodbye, no commit, tables mid-write
            events.append(f"killed at {len(run.collector.results)}")
            time.sleep(2)
            run.start_worker(1)
            events.append("restarted")

        threading.Thread(target=kill_then_restart, daemon=True).start()

    results = tmp_path / "results.jsonl"
    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=results,
        summary=tmp_path / "s.json",
        on_running=chaos,
        timeout_s=600,
    )
    outcome = run_scenario(scenario, options, Console(quiet=True))
    assert events[-1] == "restarted", events
    assert int(events[0].split()[-1]) < 5500, "the worker was killed before the end of the run"
    assert outcome.problems == []
    assert_matches_oracle(outcome.summary, results, expected, rejected)
    # the restarted worker recounted from its recovered table: exact, not 5,500 plus replays
    total = outcome.summary["totals"][0]
    stream = Counter()
    for label, n in outcome.stream_counts.items():
        sector, province, name = label.split("|")
        assert (sector, province) == ("insurance", "008")
        stream[name] += n
    assert {k: v for k, v in total["outcomes"].items() if v} == dict(stream)
