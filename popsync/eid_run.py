"""The e-ID stage of `simulate`: drive the mock VNeID's accounts to the scenario's figures, publish every
account event through the outbox and the VNeID connector to Kafka, and read back the workers' counts.

Nothing is counted here: the figures come from the workers' e-ID snapshots (`streams.eid`), which the stage
waits for until they account for every event the outbox holds.

    plan (pure, eid_plan) ──► VNeID accounts + outbox (SQLite, one transaction per batch of changes)
                                   │ VneidEventConnector (a process: drains while the plan is written)
                                   ▼
                 <prefix>.eid.events ──► workers: count-eid ──► <prefix>.eid.progress ──► this stage

The accounts are written in bulk (`popsync.eid_writer`), the changes decided by the VNeID's own lifecycle
rules, and the outbox drained by the real connector (`python -m connectors.vneid`), in envelopes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from rich.progress import Progress, TaskID

from connectors.vneid import READY_LINE
from mocks.ndxp.population_exact import is_eligible
from mocks.vneid.accounts import AccountsDB
from popsync.eid_plan import AccountPlan, plan_accounts
from popsync.eid_writer import WRITE_BATCH, write_timeline
from popsync.exceptions import ScenarioError, ServiceError
from popsync.report import vn_int
from popsync.scenario import Scenario
from popsync.services import ManagedProcess
from popsync.summary import eid_entry
from schemas.citizen import Citizen
from streams.eid import latest_partitions, sum_snapshots
from streams.kafka_security import get_kafka_security
from streams.topics import TopicNames

__all__ = ["EidOutcome", "EidProgressReader", "eid_expectations", "eligible_citizens", "run_eid"]

log = logging.getLogger(__name__)

# The writer waits while this many events are not yet confirmed by the broker: left alone it holds the
# SQLite write lock the connector needs to mark events sent (measured on a thread: 10k events/s written,
# 2k published), and the workers, waiting for events, sat idle.
MAX_PENDING = 2 * WRITE_BATCH
DRAIN_BATCH = 20_000  # outbox events per connector batch


@dataclass
class EidOutcome:
    """What the stage produced: the summary's `eid` entries and how the run went."""

    entries: list[dict[str, Any]]
    events: int  # distinct account events (the outbox's rows), every one counted by the workers
    accounts: int
    duration_s: float
    write_s: float  # writing the accounts and the outbox (the connector drains meanwhile)
    dropped: dict[str, int] = field(default_factory=dict)  # the workers' replays dropped (informational)

    @property
    def events_per_s(self) -> float:
        return round(self.events / self.duration_s, 1) if self.duration_s > 0 else 0.0


def eligible_citizens(citizens: Sequence[Citizen], as_of: date) -> list[Citizen]:
    """The citizens who may hold an account on `as_of` (alive, aged 14 and over), in population order."""
    return [c for c in citizens if is_eligible(c, as_of)]


def eid_expectations(scenario: Scenario) -> list[tuple[str, dict[str, int]]]:
    """The scenario's `expect_eid` as `check_eid_expectations` takes them."""
    return [(e.province, e.figures()) for e in scenario.expect_eid]


class EidProgressReader:
    """A background reader of the workers' e-ID snapshots: the latest one of every partition."""

    def __init__(self, bootstrap_servers: str, topics: TopicNames) -> None:
        self.topic = topics.eid_progress
        self.lock = threading.Lock()
        self.latest: dict[int, tuple[int, Mapping[str, Any]]] = {}
        self.dropped: dict[str, dict[str, int]] = {}  # worker -> its latest `dropped` tally
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="popsync-eid-progress",
            **get_kafka_security().kafka_python_config(),
        )
        self._thread = threading.Thread(target=self._run, name="popsync-eid-progress", daemon=True)

    def start(self) -> EidProgressReader:
        partitions = [TopicPartition(self.topic, p) for p in sorted(self._partitions())]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self._thread.start()
        return self

    def _partitions(self, timeout_s: float = 30.0) -> set[int]:
        deadline = time.monotonic() + timeout_s
        while not (found := self._consumer.partitions_for_topic(self.topic)):
            if time.monotonic() > deadline:
                raise ServiceError(f"topic {self.topic} does not exist; were the run's topics created?")
            time.sleep(0.2)
        return set(found)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for messages in self._consumer.poll(timeout_ms=200, max_records=5000).values():
                    bodies = [json.loads(m.value) for m in messages]
                    with self.lock:
                        latest_partitions(bodies, into=self.latest)
                        for body in bodies:
                            self.dropped[str(body.get("worker"))] = dict(body.get("dropped", {}))
        except BaseException as exc:  # reported by the waiting thread, not lost in this one
            self.error = exc

    def totals(self) -> tuple[int, dict[str, int]]:
        """Distinct events counted and the counts, summed over the latest snapshot of every partition."""
        if self.error is not None:
            raise ServiceError(f"the e-ID progress reader failed: {self.error!r}") from self.error
        with self.lock:
            events, counts = sum_snapshots(self.latest)
        return events, dict(counts)


class _Drainer:
    """The VNeID connector in a process of its own (`python -m connectors.vneid`), draining the outbox
    while the accounts are written. On a thread it shared the GIL with the writer: Tuyên Quang's outbox
    written and drained in 113 s that way, 84 s this way (no workers running, same machine)."""

    def __init__(self, database_url: str, topic: str, bootstrap_servers: str, log_path: Path) -> None:
        command = [
            sys.executable, "-m", "connectors.vneid", "--database-url", database_url, "--topic", topic,
            "--bootstrap-servers", bootstrap_servers, "--interval-s", "0.1", "--batch-size", str(DRAIN_BATCH),
        ]  # fmt: skip
        self.process = ManagedProcess("vneid-connector", command, {}, log_path)

    def start(self) -> _Drainer:
        self.process.start()
        return self

    def alive(self) -> bool:
        return self.process.alive()

    def stop(self) -> None:
        """After a failure: SIGTERM (it stops after its current drain), SIGKILL if it does not."""
        self.process.stop(grace=30.0)

    def finish(self, tick: Callable[[], None]) -> None:
        """Tell the connector the outbox is complete (SIGTERM: it drains what is left, then exits) and
        wait for it; `tick` is called about twice a second meanwhile."""
        proc = self.process.proc
        assert proc is not None, "started"
        if proc.poll() is None:
            # A SIGTERM before its handler is installed would kill it mid-drain (a short stage).
            self.process.wait_ready(lambda: READY_LINE in self.process.log_tail(200), timeout=60.0)
            proc.terminate()
        while proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
            tick()
        if proc.returncode != 0:
            raise ServiceError(
                f"the VNeID connector ended with status {proc.returncode}; events may still be pending in "
                f"the outbox. Last log lines:\n{self.process.log_tail()}"
            )


@dataclass
class _Bars:
    """The stage's progress: events written to the outbox, published to Kafka, counted by the workers."""

    progress: Progress
    total: int
    published: Callable[[int], int]  # written events → how many of them the broker confirmed
    write: TaskID = field(init=False)
    publish: TaskID = field(init=False)
    count: TaskID = field(init=False)
    last_plain: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.write = self.progress.add_task("e-ID: write accounts + outbox", total=self.total)
        self.publish = self.progress.add_task("e-ID: publish (VNeID connector)", total=self.total)
        self.count = self.progress.add_task("e-ID: counted by workers", total=self.total)

    def update(self, written: int, counted: int) -> None:
        published = self.published(written)
        self.progress.update(self.write, completed=written)
        self.progress.update(self.publish, completed=published)
        self.progress.update(self.count, completed=counted)
        # Without a terminal rich draws nothing until the end: a plain line every 10 s shows the stage moving.
        if not self.progress.console.is_terminal and time.monotonic() - self.last_plain >= 10:
            self.last_plain = time.monotonic()
            self.progress.console.print(
                f"e-ID events: written {vn_int(written)}, published {vn_int(published)}, "
                f"counted {vn_int(counted)} of {vn_int(self.total)}",
                highlight=False,
            )


def run_eid(
    scenario: Scenario,
    citizens: Mapping[str, Sequence[Citizen]],
    *,
    bootstrap_servers: str,
    topics: TopicNames,
    workdir: Path,
    progress: Progress,
    workers_alive: Callable[[], bool] | None = None,
    timeout_s: float = 3600.0,
) -> EidOutcome:
    """Run the scenario's `eid` section against running workers; the summary's `eid` entries.

    `citizens` is the run's population by permanent province; `workers_alive` says whether any worker
    process runs (the stage fails when none has for 20 s, instead of waiting out `timeout_s`).
    """
    started = time.monotonic()
    as_of = scenario.population.as_of
    eligible = {
        spec.province: eligible_citizens(citizens.get(spec.province, ()), as_of) for spec in scenario.eid
    }
    plans: list[AccountPlan] = []
    people: list[Citizen] = []
    for targets in (spec.targets() for spec in scenario.eid):
        pool = eligible[targets.province]
        try:
            province_plans = plan_accounts(targets, len(pool), scenario.seed)
        except ValueError as exc:
            raise ScenarioError(f"scenario {scenario.name}: {exc}") from None
        plans.extend(province_plans)
        people.extend(pool[p.citizen] for p in province_plans)
    total = sum(len(p.steps) for p in plans)
    # A million long-lived plans make every garbage collection scan them (as the population does in
    # `simulate`): freeze them; they hold no reference cycles, reference counting frees them.
    gc.freeze()
    db_path = workdir / "vneid.sqlite3"
    for stale in db_path.parent.glob(db_path.name + "*"):  # a re-used workdir starts from no accounts
        stale.unlink()
    db = AccountsDB.create(db_path)
    bars = _Bars(progress, total, lambda written: _published(db, written))
    reader = EidProgressReader(bootstrap_servers, topics).start()
    try:
        drainer = _Drainer(
            f"sqlite:///{db_path}", topics.eid_events, bootstrap_servers, workdir / "vneid-connector.log"
        ).start()
        try:
            write_s = _write(db, plans, people, scenario.seed, as_of, bars, reader, drainer)
            drainer.finish(lambda: bars.update(total, reader.totals()[0]))
        finally:
            drainer.stop()  # after a failure; a finished one is gone already
        events = _outbox_count(db)
        assert events == total, f"the outbox holds {events} events, the plan made {total}"
        counts = _wait_for_counts(reader, total, bars, workers_alive, started + timeout_s)
        with reader.lock:
            dropped: dict[str, int] = {}
            for tally in reader.dropped.values():
                for k, v in tally.items():
                    dropped[k] = dropped.get(k, 0) + v
    finally:
        reader.stop()
        db.close()
    entries = [
        eid_entry(
            spec.province,
            counts,
            eligible=len(eligible[spec.province]),
            as_of=as_of.isoformat(),
            report=spec.report_style,
        )
        for spec in scenario.eid
    ]
    return EidOutcome(entries, total, len(plans), time.monotonic() - started, write_s, dropped)


def _published(db: AccountsDB, written: int) -> int:
    """How many of the `written` events the broker confirmed: the connector sends and marks them in `seq`
    order, so every event before the oldest pending one is sent (one index look-up, where counting the
    pending events reads them all)."""
    row = db.connections.get().execute("SELECT MIN(seq) FROM outbox WHERE sent_at IS NULL").fetchone()
    return written if row[0] is None else int(row[0]) - 1


def _outbox_count(db: AccountsDB) -> int:
    row = db.connections.get().execute("SELECT COUNT(*) FROM outbox").fetchone()
    return int(row[0])


def _write(
    db: AccountsDB,
    plans: Sequence[AccountPlan],
    people: Sequence[Citizen],
    seed: int,
    as_of: date,
    bars: _Bars,
    reader: EidProgressReader,
    drainer: _Drainer,
) -> float:
    """Write every planned change, keeping the connector close behind; returns the seconds it took."""
    started = time.monotonic()

    def after_batch(written: int) -> None:
        bars.update(written, reader.totals()[0])
        while written - _published(db, written) > MAX_PENDING and drainer.alive():
            time.sleep(0.1)
            bars.update(written, reader.totals()[0])

    write_timeline(db, plans, people, seed, as_of, after_batch)
    return time.monotonic() - started


def _wait_for_counts(
    reader: EidProgressReader,
    total: int,
    bars: _Bars,
    workers_alive: Callable[[], bool] | None,
    deadline: float,
) -> dict[str, int]:
    """Block until the workers' snapshots account for all `total` events; their counts then."""
    all_dead_since: float | None = None
    while True:
        counted, counts = reader.totals()
        bars.update(total, counted)
        if counted == total:
            return counts
        if counted > total:  # a double count would be a bug in the workers, not a matter of waiting
            raise ServiceError(
                f"the workers counted {counted:,} distinct e-ID events, but only {total:,} exist"
            )
        now = time.monotonic()
        if workers_alive is None or workers_alive():
            all_dead_since = None
        elif all_dead_since is None:
            all_dead_since = now
        elif now - all_dead_since > 20:
            raise ServiceError(f"no worker is running and {total - counted:,} e-ID events are not counted")
        if now > deadline:
            raise ServiceError(
                f"timed out with {counted:,} of {total:,} e-ID events counted by the workers; "
                "is a worker with the e-ID agent (streams.eid) running?"
            )
        time.sleep(0.2)
