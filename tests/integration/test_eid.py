"""e-ID figures end to end on the real broker: VNeID accounts and outbox → connector → Kafka → a real faust
worker's e-ID agent → its snapshots. Exact, also when a worker is SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import io
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import Progress

from connectors.vneid import HEADER_EVENT_ID, VneidEventConnector, event_line
from mocks.vneid.accounts import AccountsDB
from mocks.vneid.lifecycle import Action
from mocks.vneid.matching import Applicant
from popsync import eid_run, eid_writer
from popsync.eid_run import EidOutcome, EidProgressReader, eid_expectations, run_eid
from popsync.population import scenario_population
from popsync.report import eid_report_line
from popsync.scenario import Scenario, load_scenario
from popsync.services import ManagedProcess
from popsync.summary import build_summary, check_eid_expectations, eid_entry
from streams.topics import TopicNames, ensure_topics

pytestmark = pytest.mark.integration

SCENARIO = """\
name: eid-small
seed: 5
population:
  as_of: 2024-06-30
  generate: {"008": 9000}
  generate_by_age: {"052": {aged_14_plus: 8000, under_14: 1500, deceased: 100}}
eid:
  - province: "008"
    applied: 6000
    approved: {level_1: 2500, level_2: 3000}
    activated: {level_1: 1500, level_2: 2600}
    upgraded: 400
    locked: 80
  - {province: "052", applied: 7400, activated: 6100}
expect_eid:
  - {province: "008", applied: 6000, approved_level_1: 2500, approved_level_2: 3000,
     activated_level_1: 1500, activated_level_2: 2600, locked: 80}
  - {province: "052", eligible: 8000, applied: 7400, approved: 6100, activated: 6100, locked: 0}
partitions: 4
"""


class Workers:
    """faust workers running the e-ID agent (`python -m streams.eid_worker`), restartable by index."""

    def __init__(self, bootstrap: str, topics: TopicNames, partitions: int, workdir: Path) -> None:
        self.env = {
            "POPSYNC_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMS_APP_ID": f"popsync-{topics.prefix}",
            "STREAMS_TOPIC_PREFIX": topics.prefix,
            "STREAMS_PARTITIONS": str(partitions),
            "STREAMS_SESSION_TIMEOUT_S": "6",
            "STREAMS_LOG_LEVEL": "INFO",
        }
        self.workdir = workdir
        self.procs: dict[int, ManagedProcess] = {}

    def start(self, index: int) -> ManagedProcess:
        env = {
            **self.env,
            "STREAMS_WORKER_ID": f"worker-{index}",
            "STREAMS_DATA_DIR": str(self.workdir / f"worker-{index}"),
        }
        proc = ManagedProcess(
            f"eid-worker-{index}",
            [sys.executable, "-m", "streams.eid_worker"],
            env,
            self.workdir / f"worker-{index}.log",
        ).start()
        self.procs[index] = proc
        return proc

    def alive(self) -> bool:
        return any(p.alive() for p in self.procs.values())

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("worker-*.log"))


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    path = tmp_path / "eid.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return load_scenario(path)


@pytest.fixture
def run_parts(
    kafka_bootstrap: str, scenario: Scenario, tmp_path: Path, unique_name: Callable[[str], str]
) -> Iterator[tuple[TopicNames, Workers]]:
    topics = TopicNames(unique_name("popsync.eid"))
    ensure_topics(kafka_bootstrap, topics.all(), scenario.partitions)
    workers = Workers(kafka_bootstrap, topics, scenario.partitions, tmp_path / "run")
    yield topics, workers
    workers.stop()


def run(
    scenario: Scenario, bootstrap: str, topics: TopicNames, workers: Workers, workdir: Path
) -> tuple[EidOutcome, str]:
    terminal = io.StringIO()
    with Progress(console=Console(file=terminal, width=120)) as progress:
        outcome = run_eid(
            scenario,
            scenario_population(scenario),
            bootstrap_servers=bootstrap,
            topics=topics,
            workdir=workdir,
            progress=progress,
            workers_alive=workers.alive,
            timeout_s=600,
        )
    return outcome, terminal.getvalue()


def outbox_truth(db: Path, eligible: dict[str, int]) -> tuple[list[dict[str, Any]], int]:
    """The e-ID entries as the outbox says (each account's last event), and how many events it holds."""
    conn = sqlite3.connect(db)
    try:
        last: dict[str, tuple[str, int, str, str | None]] = {}
        rows = conn.execute(
            "SELECT personal_id, province, level, to_status, from_status FROM outbox ORDER BY seq"
        )
        n = 0
        for personal_id, province, level, to, frm in rows:
            last[personal_id] = (province, level, to, frm)
            n += 1
        accounts = Counter(
            f"{p}|{lv}|{'locked/' + (lf or '') if st == 'locked' else st}"
            for p, lv, st, lf in conn.execute("SELECT province, level, status, locked_from FROM accounts")
        )
    finally:
        conn.close()
    counts = Counter(
        f"{p}|{lv}|{'locked/' + (f or '') if to == 'locked' else to}" for p, lv, to, f in last.values()
    )
    assert counts == accounts, "the accounts table and its outbox agree"
    entries = [
        eid_entry(p, counts, eligible=e, as_of="2024-06-30", report="levels" if p == "008" else "eligible")
        for p, e in eligible.items()
    ]
    return entries, n


def check(outcome: EidOutcome, scenario: Scenario, workdir: Path) -> None:
    summary = build_summary(scenario.name, [], {}, 0, 1.0, eid=outcome.entries)
    assert check_eid_expectations(summary, eid_expectations(scenario)) == []
    truth, events = outbox_truth(
        workdir / "vneid.sqlite3", {e["province"]: e["eligible"] for e in outcome.entries}
    )
    assert outcome.entries == truth
    assert outcome.events == events


def test_eid_figures_are_exact_end_to_end(
    kafka_bootstrap: str, scenario: Scenario, run_parts: tuple[TopicNames, Workers], tmp_path: Path
) -> None:
    topics, workers = run_parts
    workers.start(1)
    outcome, terminal = run(scenario, kafka_bootstrap, topics, workers, tmp_path / "run")
    check(outcome, scenario, tmp_path / "run")
    by_province = {e["province"]: e for e in outcome.entries}
    assert eid_report_line(by_province["008"]) == (
        "Định danh điện tử (008): tiếp nhận 6.000 hồ sơ; phê duyệt 5.500 (mức 1: 2.500; mức 2: 3.000); "
        "kích hoạt 4.100 (mức 1: 1.500; mức 2: 2.600)"
    )
    assert eid_report_line(by_province["052"]) == (
        "Định danh điện tử (052): thu nhận 7.400/8.000 (92,50%); kích hoạt 6.100/8.000 (76,25%)"
    )
    assert "e-ID: counted by workers" in terminal
    # No citizen's ID in what the workers logged.
    conn = sqlite3.connect(tmp_path / "run" / "vneid.sqlite3")
    ids = [r[0] for r in conn.execute("SELECT personal_id FROM accounts")]
    conn.close()
    logs = workers.logs()
    assert len(logs) > 100 and not [i for i in ids if i in logs]


@pytest.mark.slow
def pace_writes(monkeypatch: pytest.MonkeyPatch, events_per_s: float, batch: int = 500) -> None:
    """Write the stage's outbox `batch` events at a time, at `events_per_s`: with envelopes the workers
    count the whole scenario within seconds, so a kill must meet events that are still arriving."""
    monkeypatch.setattr(eid_writer, "WRITE_BATCH", batch)
    write_timeline = eid_run.write_timeline

    def paced(
        db: Any, plans: Any, people: Any, seed: int, as_of: Any, after_batch: Callable[[int], None]
    ) -> int:
        started = time.monotonic()

        def after(written: int) -> None:
            after_batch(written)
            ahead = written / events_per_s - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)  # pacing the source, not waiting for a condition

        return write_timeline(db, plans, people, seed, as_of, after)

    monkeypatch.setattr(eid_run, "write_timeline", paced)


def test_a_worker_killed_mid_stream_still_counts_exactly(
    kafka_bootstrap: str,
    scenario: Scenario,
    run_parts: tuple[TopicNames, Workers],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topics, workers = run_parts
    pace_writes(monkeypatch, events_per_s=4000)  # ~9 s for the scenario's 35,680 events
    workers.start(1)
    workers.start(2)  # a second worker: the kill and the restart each move partitions between them
    events: list[str] = []

    def chaos() -> None:
        reader = EidProgressReader(kafka_bootstrap, topics).start()
        try:
            deadline = time.monotonic() + 300
            while reader.totals()[0] < 8000 and time.monotonic() < deadline:
                time.sleep(0.05)
            workers.procs[1].kill()  # SIGKILL: no commit, changelog mid-write
            events.append(f"killed at {reader.totals()[0]}")
            time.sleep(2)
            workers.start(1)
            events.append("restarted")
        finally:
            reader.stop()

    thread = threading.Thread(target=chaos, daemon=True)
    thread.start()
    outcome, _ = run(scenario, kafka_bootstrap, topics, workers, tmp_path / "run")
    thread.join(timeout=60)
    assert events[-1:] == ["restarted"], events
    assert int(events[0].split()[-1]) < outcome.events, "the worker was killed before the end"
    check(outcome, scenario, tmp_path / "run")


def test_single_event_messages_of_another_producer_count_with_the_envelopes(
    kafka_bootstrap: str, run_parts: tuple[TopicNames, Workers], tmp_path: Path
) -> None:
    topics, workers = run_parts
    workers.start(1)
    db = AccountsDB.create(tmp_path / "vneid.sqlite3")
    pids = [f"00809{n:07d}" for n in range(40)]
    try:
        for n, pid in enumerate(pids):
            db.apply(Applicant(pid, f"Người {n}", date(1990, 1, 1), "male"), "008", 1)
        with VneidEventConnector(kafka_bootstrap, topics.eid_events, db.outbox) as connector:
            assert connector.drain().envelopes < len(pids)  # the applications travel in envelopes
        # Another producer sends every other citizen's approval as a message of its own, keyed by the ID.
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        try:
            for pid in pids[::2]:
                db.change(pid, Action.APPROVE)
                event = db.outbox.events(pid)[-1]
                headers = [(HEADER_EVENT_ID, event.event_id.encode())]
                producer.send(topics.eid_events, key=pid.encode(), value=event_line(event), headers=headers)
            producer.flush()
        finally:
            producer.close()
    finally:
        db.close()
    reader = EidProgressReader(kafka_bootstrap, topics).start()
    try:
        deadline = time.monotonic() + 120
        while reader.totals()[0] < 60:
            assert time.monotonic() < deadline, f"counted {reader.totals()[0]} of 60 events"
            assert workers.alive(), workers.logs()[-2000:]
            time.sleep(0.1)
        assert reader.totals() == (60, {"008|1|applied": 20, "008|1|approved": 20})
    finally:
        reader.stop()
