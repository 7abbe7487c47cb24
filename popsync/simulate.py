"""`popsync simulate`: start what a scenario needs, publish, wait for every outcome, report, check."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.core import Metric
from prometheus_client.registry import Collector as PromCollector
from prometheus_client.registry import CollectorRegistry
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from connectors.cleansing import CleansingLoop, FixPlan
from connectors.metrics import ConnectorMetrics, serve_metrics
from popsync.broker import RunBroker, run_broker
from popsync.collector import Collector
from popsync.eid_run import EidOutcome, eid_expectations, run_eid
from popsync.exceptions import ExpectationFailed, OutputPathError
from popsync.lagwatch import LagMonitor
from popsync.name_quality import name_matching_entries, name_matching_line
from popsync.population import load_npd, scenario_population
from popsync.report import (
    Lang,
    chain_report_line,
    cleansing_report_line,
    eid_report_line,
    report_line,
    vn_int,
)
from popsync.report_md import merge_summaries, render_markdown
from popsync.scenario import Scenario, load_scenario
from popsync.services import ManagedProcess, Supervisor, free_port, popsync_command, stop_all, supervised
from popsync.stages import (
    Published,
    label,
    publish_stage,
    wait_for_chain_counts,
    wait_for_chains,
    wait_for_cleansing,
    wait_for_outcomes,
    wait_for_stream_counts,
)
from popsync.summary import (
    build_summary,
    check_chain_expectations,
    check_eid_expectations,
    check_expectations,
    write_results,
)
from schemas.citizen import Citizen
from schemas.outcomes import Sector
from streams.topics import TopicNames, ensure_topics

__all__ = ["RunOptions", "RunOutcome", "run_scenario", "simulate"]

log = logging.getLogger(__name__)

AGENCY = "popsync-streams"
WORKER_RESTARTS = 5  # per worker and run: a worker that keeps dying is a bug to read in its log, not to hide
SERVICE_RESTARTS = 5  # the broker and the NDXP popsync started
UNREACHABLE_S = 30.0  # a broker popsync did not start may be away this long before the run gives up
# What the outcome rules read, and the civil-status registrations and residence changes they make.
STREAMS_SCOPES = (
    "citizen.identity",
    "citizen.residence",
    "citizen.status",
    "civil.register",
    "residence.write",
)


@dataclass
class RunOptions:
    workers: int = 1
    bootstrap_servers: str | None = None
    summary: Path | None = None
    results: Path | None = None
    workdir: Path | None = None
    keep_workdir: bool = False
    timeout_s: float = 3600.0
    # Called once the run's services are up (tests use it to kill and restart workers mid-run).
    on_running: Callable[[Run], None] | None = None
    # Serve the live dashboard on this port (0: a free one) while the run lasts; None: no dashboard.
    dashboard_port: int | None = None
    report: Path | None = None  # write the Markdown report here
    lang: str = "vi"
    # The NPD's database (sqlite:///… or postgresql://…, empty); None: a new SQLite file in the workdir.
    npd_url: str | None = None
    # A broker popsync did not start may not answer this long before the run stops (see `run_scenario`).
    unreachable_s: float = UNREACHABLE_S
    # Brokers of the Kafka popsync starts when none is given: > 1, a local KRaft cluster (popsync.broker).
    brokers: int = 1


@dataclass
class RunOutcome:
    summary: dict[str, Any]
    problems: list[str]
    stream_counts: dict[str, int]
    had_expectations: bool = False
    eid: EidOutcome | None = None  # the e-ID stage, when the scenario has an `eid` section
    chain_counts: dict[str, int] = field(default_factory=dict)  # the workers' own chain counts


@dataclass
class Run:
    """The live parts of one run, handed to `on_running` hooks."""

    scenario: Scenario
    workdir: Path
    bootstrap_servers: str
    topics: TopicNames
    ndxp_url: str
    api_key: str
    collector: Collector
    ndxp: ManagedProcess | None = None
    workers: list[ManagedProcess] = field(default_factory=list)
    published: int = 0
    published_by_source: dict[tuple[str, str], int] = field(default_factory=dict)  # set when publishing ends
    connector_metrics: ConnectorMetrics = field(default_factory=ConnectorMetrics)
    lag_monitor: LagMonitor | None = None
    # worker index -> its /metrics port, kept across restarts so a scraper's target stays the same
    metrics_ports: dict[int, int] = field(default_factory=dict)
    broker: RunBroker | None = None
    # Watches the broker, the NDXP and the workers while the run lasts (see `run_scenario`).
    supervisor: Supervisor | None = None

    def worker_env(self, index: int) -> dict[str, str]:
        port = self.metrics_ports.setdefault(index, free_port())
        return {
            "STREAMS_METRICS_PORT": str(port),
            "POPSYNC_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "STREAMS_APP_ID": f"popsync-{self.topics.prefix}",
            "STREAMS_TOPIC_PREFIX": self.topics.prefix,
            "STREAMS_PARTITIONS": str(self.scenario.partitions),
            "STREAMS_MATCHING": self.scenario.matching,
            "STREAMS_NDXP_URL": self.ndxp_url,
            # `api_key` is the run's random client secret: the workers get OAuth tokens with it.
            "STREAMS_NDXP_CLIENT_ID": AGENCY,
            "STREAMS_NDXP_CLIENT_SECRET": self.api_key,
            "STREAMS_NDXP_SCOPE": " ".join(STREAMS_SCOPES),
            "STREAMS_NDXP_API_KEY": "",  # an inherited key must not stand in for the client
            "STREAMS_WORKER_ID": f"worker-{index}",
            "STREAMS_DATA_DIR": str(self.workdir / f"worker-{index}"),
            "STREAMS_AS_OF": self.scenario.as_of.isoformat() if self.scenario.as_of else "",
        }

    def stop_workers(self) -> None:
        # All at once; quickly when a service died: a worker without its broker may never stop gracefully.
        failed = self.supervisor is not None and self.supervisor.failure is not None
        stop_all(self.workers, grace=3.0 if failed else 15.0)

    def start_worker(self, index: int) -> ManagedProcess:
        """Start worker `index` (1-based); a restarted worker appends to the same log."""
        proc = ManagedProcess(
            f"worker-{index}",
            popsync_command("worker"),
            self.worker_env(index),
            self.workdir / f"worker-{index}.log",
        ).start()
        if index <= len(self.workers):
            self.workers[index - 1] = proc
        else:
            self.workers.append(proc)
        if self.supervisor is not None:
            self.supervisor.watch(proc, limit=WORKER_RESTARTS)
        return proc


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "run"


@contextmanager
def _workdir(options: RunOptions) -> Iterator[Path]:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        yield options.workdir
        return
    path = Path(tempfile.mkdtemp(prefix="popsync-run-"))
    keep = options.keep_workdir
    try:
        yield path
    except BaseException:
        keep = True  # a run that failed keeps its logs and NPD for the user to read (its message names it)
        raise
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def _population(scenario: Scenario) -> dict[str, list[Citizen]]:
    return scenario_population(scenario)  # by count, by exact age groups (generate_by_age), from a file


def _start_ndxp(
    workdir: Path, npd_url: str, api_key: str, requires: list[Path]
) -> tuple[ManagedProcess, str]:
    """The NDXP of a run, in production mode: one OAuth client (the workers', secret `api_key`, the
    scopes the outcome rules need), a random token key, no API keys. Other NDXP_* variables of the
    environment pass through (e.g. NDXP_RATE_LIMIT_PER_S, NDXP_ERROR_RATE)."""
    port = free_port()
    client = {"secret": api_key, "scopes": list(STREAMS_SCOPES)}
    env = {
        "NDXP_DATABASE_URL": npd_url,
        "NDXP_CLIENTS": json.dumps({AGENCY: client}),
        "NDXP_TOKEN_SECRET": secrets.token_urlsafe(48),
        "NDXP_API_KEYS": "{}",
        "NDXP_AUDITOR_KEYS": "{}",
        "NDXP_ENVIRONMENT": "production",  # every secret is explicit, so the strict checks hold
    }
    url = f"http://127.0.0.1:{port}"
    # A restart (`ManagedProcess.restart`) re-uses all of it: the port, the NPD file, and the token secret,
    # so the tokens the workers hold stay valid.
    proc = ManagedProcess(
        f"the NDXP popsync started ({url})",
        popsync_command("ndxp", "serve", "--port", str(port)),
        env,
        workdir / "ndxp.log",
        requires=requires,  # a restart on a missing NPD file would serve an empty one
    ).start()
    proc.wait_ready(lambda: httpx.get(f"{url}/health", timeout=1.0).status_code == 200, timeout=60)
    return proc, url


def _load_npd(progress: Progress, citizens: dict[str, list[Citizen]], npd_url: str) -> None:
    """The scenario's population in an empty NPD (SQLite or PostgreSQL)."""
    task = progress.add_task("NPD: load population", total=sum(len(v) for v in citizens.values()))
    load_npd(npd_url, citizens, lambda loaded: progress.update(task, completed=loaded))


class _ReconcileBars:
    """One progress bar per (sector, province), fed from the collector by a background ticker."""

    def __init__(self, progress: Progress, collector: Collector) -> None:
        self.progress = progress
        self.collector = collector
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.totals: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="popsync-progress", daemon=True)

    def add(self, source: tuple[str, str]) -> None:
        if source not in self.tasks:
            self.tasks[source] = self.progress.add_task(f"{label(*source)}: reconcile", total=None)

    def set_totals(self, totals: dict[tuple[str, str], int]) -> None:
        self.totals = dict(totals)
        for source, task in self.tasks.items():
            self.progress.update(task, total=totals.get(source, 0))

    def refresh(self) -> None:
        with self.collector.lock:
            done = dict(self.collector.per_source)
        for source, task in list(self.tasks.items()):
            self.progress.update(task, completed=done.get(source, 0))

    def _run(self) -> None:
        # Without a terminal, rich draws nothing until the end: print a plain line every few seconds
        # instead, so a CI log or `tee` still shows the run moving.
        plain = not self.progress.console.is_terminal
        last_line = time.monotonic()
        while not self._stop.wait(0.3):
            self.refresh()
            if plain and time.monotonic() - last_line >= 10:
                last_line = time.monotonic()
                self._print_plain()

    def _print_plain(self) -> None:
        if not self.tasks:  # a scenario of e-ID figures alone: the e-ID stage prints its own lines
            return
        with self.collector.lock:
            done = dict(self.collector.per_source)
        parts = []
        for source in self.tasks:
            total = self.totals.get(source)
            of = f"/{vn_int(total)}" if total else ""
            parts.append(f"{label(*source)} {vn_int(done.get(source, 0))}{of}")
        self.progress.console.print("reconciled: " + "; ".join(parts), highlight=False)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.refresh()


def check_outputs(options: RunOptions) -> None:
    """Stop with `OutputPathError` when --summary, --results or --report cannot be written where asked."""
    for option, path in (
        ("--summary", options.summary),
        ("--results", options.results),
        ("--report", options.report),
    ):
        if path is None:
            continue
        folder = path.parent
        if path.is_dir():
            problem = "it is a folder"
        elif not folder.is_dir():
            problem = f"the folder {folder} does not exist"
        elif not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            problem = "permission denied"
        else:
            continue
        raise OutputPathError(f"cannot write {option} {path}: {problem}")


@contextmanager
def _writing(option: str, path: Path) -> Iterator[Path]:
    """`path`, with an OSError while writing it (a full disk, a folder gone since `check_outputs`)
    turned into `OutputPathError` naming the option."""
    try:
        yield path
    except OSError as exc:
        raise OutputPathError(f"cannot write {option} {path}: {exc.strerror or exc}") from exc


def run_scenario(path: Path, options: RunOptions, console: Console) -> RunOutcome:
    """Run one scenario end to end and return its summary; stops everything it started.

    While it runs, a `Supervisor` watches what it started: a worker, the broker or the NDXP that dies is
    restarted (the broker and the NDXP on their own data and port); one that cannot be, or a given broker
    that stops answering, ends the run within seconds with a `ServiceError` of one line naming it.
    """
    scenario = load_scenario(path)
    check_outputs(options)  # before anything starts: a long run must not fail at its last step
    run_id = f"{_slug(scenario.name)}-{uuid.uuid4().hex[:8]}"
    supervisor = Supervisor(lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    # The supervisor's thread outlives the stack: what it restarted gets the death signal from it.
    with supervised(supervisor), ExitStack() as stack:
        try:
            return _run(stack, scenario, run_id, options, console, supervisor)
        finally:
            supervisor.pause()  # before the stack stops the services: nothing is restarted while they stop


def _run(
    stack: ExitStack,
    scenario: Scenario,
    run_id: str,
    options: RunOptions,
    console: Console,
    supervisor: Supervisor,
) -> RunOutcome:
    workdir = stack.enter_context(_workdir(options))
    name, where = escape(scenario.name), escape(str(workdir))
    console.print(f"[bold]popsync[/] scenario [cyan]{name}[/] (run {run_id}, workdir {where})")
    # Before the broker: a bad line of a population file stops the run before anything was started.
    citizens = _population(scenario)
    # 800,000 long-lived citizens make every garbage collection scan them all (a third of the
    # generation time, and pauses that starve kafka-python's network thread): freeze them.
    gc.freeze()
    broker = stack.enter_context(
        run_broker(
            options.bootstrap_servers,
            log=lambda m: console.print(f"  {m}", markup=False),
            brokers=options.brokers,
        )
    )
    bootstrap = broker.bootstrap_servers
    if broker.started_here:
        for member in broker.members():  # each node of a cluster, restarted on its own data
            supervisor.watch(member, limit=SERVICE_RESTARTS, essential=True)
    else:
        supervisor.watch_reachable(broker.name, broker.reachable, options.unreachable_s)
    topics = TopicNames(f"popsync.{run_id}")
    ensure_topics(bootstrap, topics.all(), scenario.partitions)
    progress = stack.enter_context(
        Progress(
            TextColumn("{task.description:<38}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
    )
    db_path = workdir / "npd.sqlite"
    if options.npd_url is None:
        for stale in db_path.parent.glob(db_path.name + "*"):  # a re-used workdir starts from an empty NPD
            stale.unlink()
    npd_url = options.npd_url or f"sqlite:///{db_path}"
    _load_npd(progress, citizens, npd_url)

    api_key = secrets.token_urlsafe(24)
    ndxp, ndxp_url = _start_ndxp(workdir, npd_url, api_key, [] if options.npd_url else [db_path])
    stack.callback(ndxp.stop)
    supervisor.watch(ndxp, limit=SERVICE_RESTARTS, essential=True)
    collector = Collector(bootstrap, topics).start()
    stack.callback(collector.stop)
    run = Run(scenario, workdir, bootstrap, topics, ndxp_url, api_key, collector, ndxp=ndxp)
    run.broker, run.supervisor = broker, supervisor
    stack.callback(run.stop_workers)
    for i in range(1, options.workers + 1):
        run.start_worker(i)
    bars = _ReconcileBars(progress, collector)
    for source in scenario.sources:
        bars.add((source.sector.value, source.province))
    bars.start()
    stack.callback(bars.stop)
    _start_monitoring(stack, run, console)
    if options.dashboard_port is not None:
        url = _start_dashboard(stack, run, options.dashboard_port)
        console.print(f"dashboard: [link={url}]{url}[/link]")
    if options.on_running is not None:
        options.on_running(run)

    started = time.monotonic()
    published = Published()
    plans: list[FixPlan] = []
    loop: CleansingLoop | None = None
    if any(s.cleansing is not None for s in scenario.sources):
        loop = CleansingLoop(bootstrap, topics, plans).start()
        stack.callback(loop.stop)

    def on_plan(plan: FixPlan) -> None:
        plans.append(plan)
        if loop is not None:
            loop.add_plan(plan)

    stages = sorted({s.stage for s in scenario.sources})
    for stage in stages:
        if len(stages) > 1:
            console.print(f"stage {stage} of {len(stages)}", markup=False)
        stage_sources = [(i, s) for i, s in enumerate(scenario.sources) if s.stage == stage]
        publish_stage(run, stage_sources, citizens, progress, published, on_source=bars.add, on_plan=on_plan)
        bars.set_totals(published.by_source)
        run.published = len(published.keys)
        run.published_by_source = dict(published.by_source)
        wait_for_outcomes(run, len(published.keys), published.rejected, started, options.timeout_s)
        if loop is not None:
            wait_for_cleansing(run, loop, started, options.timeout_s)
        if any(s.sector is Sector.CIVIL_STATUS for _, s in stage_sources):
            wait_for_chains(run, started, options.timeout_s)
            # A child's card is a record too: its outcome ends its chain, so it has one by now.
    duration = time.monotonic() - started
    bars.refresh()
    stream_counts = wait_for_stream_counts(collector, len(published.keys) + collector.chain_records)
    chain_counts = wait_for_chain_counts(collector) if collector.chains else {}
    eid = None
    if scenario.eid:  # after the sources: the same workers count the VNeID's account events
        eid = run_eid(
            scenario,
            citizens,
            bootstrap_servers=bootstrap,
            topics=topics,
            workdir=workdir,
            progress=progress,
            workers_alive=lambda: any(w.alive() for w in run.workers),
            timeout_s=max(60.0, options.timeout_s - (time.monotonic() - started)),
        )
    with collector.lock:
        results, rejected = dict(collector.results), list(collector.rejected.values())
        chains = dict(collector.chains)
    published_keys = set(published.keys)
    made = sorted(k for k in results if k not in published_keys)  # records chains made
    keys = [*published.keys, *made]
    summary = build_summary(
        scenario.name,
        keys,
        results,
        len(rejected),
        duration,
        eid=eid.entries if eid else (),
        cleansing=[(p.sector, p.province) for p in plans],
        chains=chains,
        as_of=scenario.as_of,
    )
    if published.planted_names:  # the matcher measured against the planted name defects
        summary["name_matching"] = name_matching_entries(published.planted_names, results, scenario.matching)
    if options.results is not None:
        with _writing("--results", options.results) as out:
            write_results(out, keys, results, rejected)
    if options.summary is not None:
        with _writing("--summary", options.summary) as out:
            out.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    expectations = [(e.sector.value, e.province, e.figures()) for e in scenario.expect]
    problems = check_expectations(summary, expectations)
    problems += check_eid_expectations(summary, eid_expectations(scenario))
    problems += check_chain_expectations(
        summary, [(e.province, e.kind, e.figures()) for e in scenario.expect_chains]
    )
    had_expectations = bool(scenario.expect or scenario.expect_eid or scenario.expect_chains)
    return RunOutcome(summary, problems, stream_counts, had_expectations, eid, chain_counts)


class _Merged(PromCollector):
    """Several registries served as one: this process's connector metrics and its lag monitor's."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()


def _start_monitoring(stack: ExitStack, run: Run, console: Console) -> None:
    """Watch the run's consumer group (Burrow-style) and serve this process's metrics on a free port."""
    monitor = LagMonitor(run.bootstrap_servers, group_prefix=f"popsync-{run.topics.prefix}")
    monitor.start()
    stack.callback(monitor.stop)
    run.lag_monitor = monitor
    registry = CollectorRegistry()
    registry.register(_Merged(run.connector_metrics.registry, monitor.registry))
    port = serve_metrics(registry, 0)
    workers = ", ".join(f"http://127.0.0.1:{p}/metrics" for p in sorted(run.metrics_ports.values()))
    console.print(
        f"metrics: connector and lag http://127.0.0.1:{port}/metrics; NDXP {run.ndxp_url}/metrics; "
        f"workers {workers}",
        markup=False,
        soft_wrap=True,
    )


def _start_dashboard(stack: ExitStack, run: Run, port: int) -> str:
    """The live dashboard of this run: its collector's figures and its workers' consumer lag."""
    from popsync.dashboard.server import DashboardServer
    from popsync.dashboard.state import RunView

    view = RunView(
        run.collector,
        totals=lambda: run.published_by_source,
        lag_monitor=run.lag_monitor,
        sources=[(s.sector.value, s.province) for s in run.scenario.sources],
        cleansing=[(s.sector.value, s.province) for s in run.scenario.sources if s.cleansing is not None],
    )
    server = DashboardServer(view, port=port)
    url = server.start()
    stack.callback(server.stop)
    return url


def simulate(path: Path, options: RunOptions, console: Console) -> int:
    """The CLI command: run, print the report lines, write the files, exit 1 if `expect` fails."""
    outcome = run_scenario(path, options, console)
    summary = outcome.summary
    console.print()
    for total in summary["totals"]:
        console.print(report_line(total), soft_wrap=True, highlight=False)
    for entry in summary.get("chains", []):
        console.print(chain_report_line(entry), soft_wrap=True, highlight=False)
    for entry in summary.get("cleansing", []):
        console.print(cleansing_report_line(entry), soft_wrap=True, highlight=False)
    for entry in summary.get("eid", []):
        console.print(eid_report_line(entry), soft_wrap=True, highlight=False)
    for entry in summary.get("name_matching", []):
        console.print(name_matching_line(entry), soft_wrap=True, highlight=False)
    if summary["rejected"]:
        console.print(f"Bị từ chối (dead-letter): {summary['rejected']:,}".replace(",", "."))
    lag = summary["sync_lag_ms"]
    if summary["totals"]:
        console.print(
            f"[dim]{summary['records_per_s']:,.0f} records/s over {summary['duration_s']:.1f} s; "
            f"sync lag p50 {lag['p50']} ms, p95 {lag['p95']} ms, p99 {lag['p99']} ms[/]"
        )
    if outcome.eid is not None:
        e = outcome.eid
        console.print(
            f"[dim]{e.events:,} e-ID account events of {e.accounts:,} accounts counted by the workers "
            f"in {e.duration_s:.1f} s ({e.events_per_s:,.0f} events/s)[/]"
        )
    if options.report is not None:
        merged = merge_summaries([(str(options.summary or path.name), summary)])
        with _writing("--report", options.report) as out:
            out.write_text(render_markdown(merged, Lang(options.lang)), encoding="utf-8")
        console.print(f"report: {escape(str(options.report))}")
    if outcome.problems:
        raise ExpectationFailed("expectations not met:\n  " + "\n  ".join(outcome.problems))
    if outcome.had_expectations:
        console.print("[green]every expected figure matches[/]")
    return 0
