"""A scenario's sources published stage by stage, and the waits that end each stage.

A stage ends when every record published so far has its final outcome: its first result, then, for the
sources with a cleansing plan, the result of every fix the province re-published. Only then does the
next stage publish, so a record that depends on an earlier stage's changes to the NPD (a labour form of
a citizen whose death was registered) is decided the same way in every run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.progress import Progress, TaskID

from connectors.civil_gen import build_civil
from connectors.cleansing import CleansingLoop, FixPlan, plan_for_generated
from connectors.generate import generate_records, planted_names
from connectors.lgsp import LgspConnector
from popsync.collector import Collector
from popsync.exceptions import ServiceError
from popsync.population import residents
from popsync.report import SECTOR_LABELS
from popsync.scenario import SourceSpec
from popsync.services import one_line_tail
from schemas.citizen import Citizen
from schemas.provinces import map_for

if TYPE_CHECKING:
    from popsync.simulate import Run

__all__ = [
    "Published",
    "label",
    "publish_stage",
    "wait_for_chain_counts",
    "wait_for_chains",
    "wait_for_cleansing",
    "wait_for_outcomes",
    "wait_for_stream_counts",
]


def label(sector: str, province: str) -> str:
    """A source as its progress bars name it: `người lao động (052)`."""
    return f"{SECTOR_LABELS.get(sector, sector)} ({province})"


@dataclass
class Published:
    """What the stages published so far."""

    keys: list[str] = field(default_factory=list)  # result keys in publish order
    rejected: int = 0
    by_source: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    # (sector, province) → record_id → planted name defect (connectors.name_defects): the matcher's truth.
    planted_names: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


def publish_stage(
    run: Run,
    sources: Sequence[tuple[int, SourceSpec]],
    citizens: dict[str, list[Citizen]],
    progress: Progress,
    out: Published,
    *,
    on_source: Callable[[tuple[str, str]], None],
    on_plan: Callable[[FixPlan], None],
) -> None:
    """Publish one stage's sources in scenario order (rule 7's "earlier" is this order within a source).

    `index` is the source's position in the scenario (its generation seed). A source with a `cleansing`
    block hands its fix plan to `on_plan` before its first record is published.
    """
    scenario = run.scenario
    # Every record_id published in earlier stages too: a repeat is dead-lettered, once per run.
    connector = LgspConnector(
        run.bootstrap_servers, run.topics, metrics=run.connector_metrics, seen=set(out.keys)
    )
    try:
        for index, source in sources:
            task = progress.add_task(f"{label(source.sector.value, source.province)}: publish", total=None)

            def advance(n: int, task: TaskID = task) -> None:
                progress.update(task, completed=n)
                if run.supervisor is not None:
                    run.supervisor.check()  # where no signal reaches (not the main thread)

            connector.rate = source.rate
            seed = scenario.seed + index
            if source.civil is not None:
                batch = build_civil(
                    source.civil,
                    seed=seed,
                    province=source.province,
                    citizens=[c for group in citizens.values() for c in group],
                    as_of=scenario.population.as_of,
                )
                progress.update(task, total=len(batch.records))
                report = connector.publish_records(batch.records, f"source-{index}", on_progress=advance)
            elif source.generate is not None:
                kinds: list[str] = []
                truth: list[Citizen | None] = []
                # From the scenario's `as_of` on 2025-07-01, a source's residents are its current province's.
                here, elsewhere = residents(citizens, source.province, map_for(scenario.as_of))
                records = generate_records(
                    source.generate,
                    sector=source.sector.value,
                    province=source.province,
                    citizens=here,
                    other_citizens=elsewhere,
                    provinces=map_for(scenario.as_of),
                    seed=seed,
                    kinds_out=kinds,
                    truth_out=truth,
                )
                names = planted_names(records, kinds)
                if names:
                    out.planted_names.setdefault((source.sector.value, source.province), {}).update(names)
                if source.cleansing is not None:
                    on_plan(
                        plan_for_generated(
                            source.cleansing,
                            sector=source.sector.value,
                            province=source.province,
                            records=records,
                            kinds=kinds,
                            truth=truth,
                            seed=seed,
                        )
                    )
                progress.update(task, total=len(records))
                report = connector.publish_records(records, f"source-{index}", on_progress=advance)
            else:
                assert source.file is not None  # the scenario model guarantees one of the two
                if source.cleansing is not None:
                    on_plan(FixPlan(source.sector.value, source.province, source.cleansing.rules(), seed))
                report = connector.publish_file(source.file, on_progress=advance)
            progress.update(task, total=report.published + report.rejected)
            out.keys.extend(report.keys)
            out.rejected += report.rejected
            for key, n in report.by_source.items():
                out.by_source[key] += n
                on_source(key)
    except BaseException:
        # The run is failing, maybe because its broker is gone: the producer's close must not hold it
        # for the 30 s it grants pending messages, nor say later that those were not confirmed.
        def close_quietly() -> None:
            with contextlib.suppress(Exception):
                connector.close()

        closing = threading.Thread(target=close_quietly, name="popsync-connector-close", daemon=True)
        closing.start()
        closing.join(timeout=3)
        raise
    connector.close()


def wait_for_outcomes(run: Run, records: int, rejected: int, started: float, timeout_s: float) -> None:
    """Block until every published record has an outcome; fail if no worker has been alive for a while."""
    _wait(run, started, timeout_s, lambda: _outcomes_missing(run.collector, records, rejected))


def _outcomes_missing(collector: Collector, records: int, rejected: int) -> str | None:
    with collector.lock:
        # Records a chain made (a child's card) are not among the published ones.
        have, dead = len(collector.results) - collector.chain_records, len(collector.rejected)
    if have >= records and dead >= rejected:
        return None
    return f"{records - have:,} of {records:,} records have no outcome"


def wait_for_cleansing(run: Run, loop: CleansingLoop, started: float, timeout_s: float) -> None:
    """Block until the province read every task and every fix it re-published has its new outcome."""
    sources = set(loop.plans)

    def missing() -> str | None:
        loop.check()
        with run.collector.lock:
            unsynced_first = sum(run.collector.unsynced_first[s] for s in sources)
        with loop.lock:
            seen = sum(n for (sec, prov, _), n in loop.stats.tasks.items() if (sec, prov) in sources)
            republished = set(loop.stats.republished_keys)
        if seen < unsynced_first or not loop.settled():
            return f"the provinces have read {seen:,} of {unsynced_first:,} correction tasks"
        with run.collector.lock:
            waiting = sum(1 for k in republished if run.collector.results[k].version < 2)
        return f"{waiting:,} re-published fixes have no new outcome" if waiting else None

    _wait(run, started, timeout_s, missing)


def wait_for_chains(run: Run, started: float, timeout_s: float) -> None:
    """Block until every registered birth and death has started its chain and every chain has ended."""

    def missing() -> str | None:
        collector = run.collector
        with collector.lock:
            due, states = collector.chains_due, list(collector.chains.values())
        begun = sum(1 for s in states if "registered" in s["steps"])
        open_ = sum(1 for s in states if s["status"] == "in_progress")
        if begun < due:
            return f"{due - begun:,} of {due:,} linked-procedure chains have not started"
        return f"{open_:,} of {len(states):,} linked-procedure chains are in progress" if open_ else None

    _wait(run, started, timeout_s, missing)


def _wait(run: Run, started: float, timeout_s: float, missing: Callable[[], str | None]) -> None:
    """Poll `missing` until it says nothing is missing; fail on timeout or when every worker is gone."""
    deadline = started + timeout_s
    all_dead_since: float | None = None
    while True:
        run.collector.check()
        what = missing()
        if what is None:
            return
        if run.supervisor is not None:
            run.supervisor.check()  # where no signal reaches (not the main thread)
        now = time.monotonic()
        if any(w.alive() for w in run.workers):
            all_dead_since = None
        elif all_dead_since is None:
            all_dead_since = now
        elif now - all_dead_since > 20:  # long enough for the supervisor (or a test) to restart one
            last = run.workers[-1]
            raise ServiceError(
                f"no worker has run for 20 s and {what}; {last.name} ({last.exit_status()}): its log "
                f"{last.log_path} ends: {one_line_tail(last.log_tail(200))}"
            )
        if now > deadline:
            raise ServiceError(f"timed out after {timeout_s:.0f} s: {what}; see {run.workdir}")
        time.sleep(0.2)


def wait_for_stream_counts(collector: Collector, records: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The workers' own counts, once their snapshots agree with the results read (or after `timeout_s`).

    Snapshots lag by one interval, and a re-published fix changes a record's outcome without changing
    how many records there are, so waiting for the sum alone could return counts from before the fixes.
    What comes back is the workers' figure as it is: a caller comparing it with the summary sees any
    difference that outlived the wait.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        counts = collector.stream_counts()
        if sum(counts.values()) >= records:  # only then walk every result, under the lock the reader needs
            with collector.lock:
                read = Counter(
                    "|".join((*k.split("|", 2)[:2], r.outcome)) for k, r in collector.results.items()
                )
            if +counts == +read:
                return dict(counts)
        if time.monotonic() > deadline:
            return dict(counts)
        time.sleep(0.3)


def wait_for_chain_counts(collector: Collector, timeout_s: float = 30.0) -> dict[str, int]:
    """The workers' own chain counts (`province|kind|status`), once they agree with the steps read."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = collector.chain_counts()
        with collector.lock:
            read = Counter(f"{s['province']}|{s['kind']}|{s['status']}" for s in collector.chains.values())
        if +counts == +read or time.monotonic() > deadline:
            return dict(counts)
        time.sleep(0.3)
