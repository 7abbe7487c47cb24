"""The cleansing loop on the real broker: tasks out, fixes re-published, latest outcome counted once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from rich.console import Console

from popsync.simulate import Run, RunOptions, run_scenario

pytestmark = pytest.mark.integration

_SCENARIO = """\
name: cleansing-{name}
seed: 3
population:
  generate: {{"052": 6000}}
sources:
  - sector: labour
    province: "052"
    generate:
      records: {records}
      unsynced: {{missing_fields: 40, mismatch: 12, malformed_id: 4, deceased: 3}}
      corrected: {{legacy_id: 5}}
    cleansing:
      missing_fields: {{share: 1.0, after_s: 0.5}}
      mismatch: {{share: 0.5, after_s: 1}}
  - sector: insurance
    province: "052"
    generate:
      records: 200
      unsynced: {{missing_fields: 10, mismatch: 3}}
expect:
  - {{sector: labour, province: "052", total: {records}, unsynced: 13, mismatch: 6, missing_fields: 0,
     fixed: 46, republished: 46, legacy_ids: 5, legacy_corrected: 5}}
  - {{sector: insurance, province: "052", total: 200, unsynced: 13, fixed: 0, republished: 0}}
partitions: 3
"""


def _run(tmp_path: Path, kafka_bootstrap: str, name: str, records: int, chaos=None):  # type: ignore[no-untyped-def]
    scenario = tmp_path / "s.yaml"
    scenario.write_text(_SCENARIO.format(name=name, records=records), encoding="utf-8")
    runs: list[Run] = []

    def on_running(run: Run) -> None:
        runs.append(run)
        if chaos is not None:
            chaos(run)

    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=tmp_path / "results.jsonl",
        summary=tmp_path / "summary.json",
        workdir=tmp_path / "run",
        on_running=on_running,
        timeout_s=600,
    )
    outcome = run_scenario(scenario, options, Console(quiet=True))
    return outcome, runs[0]


def test_fixes_supersede_the_first_outcome_and_every_record_counts_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    outcome, run = _run(tmp_path, kafka_bootstrap, "plain", 600)
    assert outcome.problems == [], outcome.problems
    (loop,) = [c for c in outcome.summary["cleansing"]]
    assert (loop["sector"], loop["province"]) == ("labour", "052")
    assert loop["tasks_by_outcome"] == {
        "unsynced/deceased": 3,
        "unsynced/malformed_id": 4,
        "unsynced/mismatch": 12,
        "unsynced/missing_fields": 40,
    }
    assert loop["fixed_by_outcome"] == {"unsynced/missing_fields": 40, "unsynced/mismatch": 6}
    # The fixes waited at least the planned delay after their task.
    assert 0.5 <= loop["fix_time_s"]["p50"] <= loop["fix_time_s"]["max"] < 60
    # The results file: one line per record, the fixed ones with their version and first outcome.
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 800 and len({(x["sector"], x["record_id"]) for x in lines}) == 800
    moved = Counter(x["first_outcome"] for x in lines if x.get("version") == 2)
    assert moved == {"unsynced/missing_fields": 40, "unsynced/mismatch": 6}
    assert all(x["outcome"] == "cleaned" for x in lines if x.get("version") == 2)
    # The workers' own counts agree with the summary: the superseded outcomes are not counted.
    labour = Counter()
    for label, n in outcome.stream_counts.items():
        sector, _, name = label.split("|")
        if sector == "labour":
            labour[name] += n
    (total,) = [t for t in outcome.summary["totals"] if t["sector"] == "labour"]
    assert {k: v for k, v in total["outcomes"].items() if v} == {k: v for k, v in labour.items() if v}

    # Each task carries the NPD's values of the named fields (the province may see them).
    consumer = KafkaConsumer(
        run.topics.tasks("labour"),
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        tasks = [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()
    mismatches = [t for t in tasks if t["outcome"] == "unsynced/mismatch" and t["version"] == 1]
    assert len(mismatches) == 12
    for task in mismatches:
        assert task["fields"] and set(task["npd"]) == set(task["fields"])
        assert task["record"]["record_id"] == task["record_id"]


def test_a_worker_killed_while_fixes_arrive_still_counts_every_record_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events: list[str] = []

    def chaos(run: Run) -> None:
        def kill_then_restart() -> None:
            deadline = time.monotonic() + 300
            while len(run.collector.results) < 1200 and time.monotonic() < deadline:
                time.sleep(0.05)
            run.workers[0].kill()  # SIGKILL: no commit; fixes keep arriving while it is down
            events.append(f"killed at {len(run.collector.results)}")
            time.sleep(2)
            run.start_worker(1)
            events.append("restarted")

        threading.Thread(target=kill_then_restart, daemon=True).start()

    outcome, _ = _run(tmp_path, kafka_bootstrap, "kill", 3000, chaos)
    assert events[-1] == "restarted", events
    assert outcome.problems == [], outcome.problems
    for total in outcome.summary["totals"]:
        stream = Counter()
        for label, n in outcome.stream_counts.items():
            sector, _, name = label.split("|")
            if sector == total["sector"]:
                stream[name] += n
        assert {k: v for k, v in total["outcomes"].items() if v} == {k: v for k, v in stream.items() if v}
