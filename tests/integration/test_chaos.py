"""Chaos on the real broker: every run a fault leaves going ends with each record's fault-free outcome."""

# Faults: workers, the broker, the NDXP and `simulate` itself SIGKILLed mid-run; 429 storms and 503 bursts
# from the NDXP. Expected: the pure rules' outcomes (tests/simulate_oracle.py), what a fault-free run gives;
# none lost, none doubled, none different. A service that cannot come back ends the run with one line, and
# no process of the suite outlives it.
#
# Workers are killed while they reconcile, the only worker too: what faust 0.15 skips around the restart
# is read back (streams/gaps.py).

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fault_runs import (
    Data,
    assert_exact,
    assert_none_left,
    await_true,
    generated_data,
    marked_environment,
    processes,
    run_file_scenario,
    write_scenario,
)

from popsync.broker import LocalKafka, docker_available, process_alive
from popsync.exceptions import ServiceError
from popsync.services import ManagedProcess
from popsync.simulate import Run, RunOutcome

pytestmark = pytest.mark.integration

RECORDS = 5000
RATE = 400  # records/s: about 12 s of publishing, so every fault lands while records still arrive
MARK = "POPSYNC_CHAOS_MARK"  # in the environment of every process this suite starts (see the orphan test)


@dataclass
class Chaos:
    """Faults injected from a thread while a run goes on: what was done, and an error if one happened."""

    events: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self, inject: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                inject()
            except BaseException as exc:  # reported by the test thread
                self.errors.append(exc)

        self._thread = threading.Thread(target=guarded, name="chaos", daemon=True)
        self._thread.start()

    def check(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)
        assert self.errors == [], self.errors


@pytest.fixture(scope="module", autouse=True)
def chaos_mark(kafka_bootstrap: str) -> Iterator[str]:
    """Marks what the suite starts, after the session's broker started (that one is not the suite's)."""
    yield from marked_environment(MARK)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return generated_data(
        tmp_path_factory.mktemp("chaos"),
        people=7000,
        population_seed=11,
        records=RECORDS,
        records_seed=9,
        defects={
            "unsynced": {
                "mismatch": 50,
                "not_found": 40,
                "malformed_id": 30,
                "missing_fields": 20,
                "deceased": 25,
                "duplicate": 60,  # first holders must survive every crash: a replay is not a duplicate
            },
            "corrected": {"no_diacritics": 40, "legacy_id": 20},
        },
    )


def _scenario(data: Data, tmp: Path, rate: float = RATE) -> Path:
    return write_scenario(data, tmp, "chaos", rate)


def _run(
    data: Data,
    tmp: Path,
    bootstrap: str | None,
    on_running: Callable[[Run], None],
    rate: float = RATE,
    **options: object,
) -> tuple[RunOutcome, str]:
    """`run_scenario` of the chaos scenario; the outcome and what it printed."""
    return run_file_scenario(_scenario(data, tmp, rate), tmp, bootstrap, on_running, **options)


def _restarts(run: Run) -> dict[str, int]:
    assert run.supervisor is not None
    return {name: n for name, n in run.supervisor.restarts().items() if n}


def _reconciling(run: Run) -> list[ManagedProcess]:
    """The workers deciding records since they last started: their own counter has moved (/metrics)."""
    busy = []
    for index, worker in enumerate(run.workers, start=1):
        if not worker.alive():
            continue
        try:
            text = httpx.get(f"http://127.0.0.1:{run.metrics_ports[index]}/metrics", timeout=1.0).text
        except httpx.HTTPError:
            continue  # not serving yet: starting
        decided = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("popsync_records_reconciled_total{")
        )
        if decided > 0:
            busy.append(worker)
    return busy


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "kills", "rate", "timeout_s"),
    [
        pytest.param(1, 3, 100, 600, id="the-only-worker"),
        pytest.param(2, 4, 200, 600, id="two-workers"),
    ],
)
def test_workers_killed_at_random_are_restarted(
    kafka_bootstrap: str, data: Data, tmp_path: Path, workers: int, kills: int, rate: int, timeout_s: int
) -> None:
    # Paced so that every kill lands while records still arrive: a restarted worker catches up with what
    # was published while it was down in one go, and a worker restart takes seconds.
    rng = random.Random(workers * 100 + kills)
    thresholds = sorted(int(rng.uniform(0.05, 0.7) * RECORDS) for _ in range(kills))
    chaos, runs = Chaos(), []

    def on_running(run: Run) -> None:
        runs.append(run)

        def inject() -> None:
            for at in thresholds:
                await_true(lambda: len(run.collector.results) >= at, 300, f"{at} results")  # noqa: B023
                # A worker killed while it reconciles, not one still starting.
                await_true(lambda: bool(_reconciling(run)), 120, "a worker reconciling")
                victim = rng.choice(_reconciling(run))
                pid = victim.pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)  # a crash, as the OOM killer would do it
                chaos.events.append(f"{victim.name} at {len(run.collector.results)}")
                await_true(lambda: victim.pid != pid, 30, f"{victim.name} restarted")  # noqa: B023

        chaos.start(inject)

    outcome, printed = _run(
        data, tmp_path, kafka_bootstrap, on_running, rate=rate, workers=workers, timeout_s=timeout_s
    )
    chaos.check()
    assert len(chaos.events) == kills
    assert all(int(e.rsplit(" ", 1)[1]) < RECORDS for e in chaos.events), chaos.events  # mid-run
    assert_exact(outcome, tmp_path, data)
    restarts = _restarts(runs[0])
    assert sum(restarts.values()) == kills and set(restarts) <= {f"worker-{i}" for i in range(1, 3)}
    assert printed.count("(killed by SIGKILL); restarting it") == kills
    print(f"chaos: {kills} worker SIGKILLs, {workers} workers, {restarts}; {RECORDS} records exact")


@pytest.mark.slow
def test_broker_killed_mid_run_comes_back_on_its_data(
    data: Data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if docker_available():
        pytest.skip("a Docker engine answers: simulate would run its broker there, with no JVM to kill")
    monkeypatch.delenv("POPSYNC_BOOTSTRAP_SERVERS", raising=False)  # simulate starts its own broker
    chaos, runs, jvms = Chaos(), [], []

    def on_running(run: Run) -> None:
        runs.append(run)
        broker = run.broker
        assert broker is not None and broker.started_here and broker.pid is not None

        def inject() -> None:
            await_true(lambda: len(run.collector.results) >= RECORDS // 3, 300, "a third of the results")
            pid = broker.pid
            assert pid is not None
            jvms.append(pid)
            os.kill(pid, signal.SIGKILL)
            chaos.events.append(f"broker at {len(run.collector.results)}")
            await_true(lambda: broker.alive() and broker.pid != pid, 60, "the broker restarted")
            assert broker.pid is not None
            jvms.append(broker.pid)

        chaos.start(inject)

    outcome, printed = _run(data, tmp_path, None, on_running)
    chaos.check()
    assert_exact(outcome, tmp_path, data)
    broker = runs[0].broker
    assert broker is not None
    assert _restarts(runs[0]) == {broker.name: 1}
    assert f"{broker.name} died (killed by SIGKILL); restarting it (1 of 5)" in printed
    assert "Traceback" not in printed
    # No orphan JVM: the killed one and the one that replaced it are gone, and so is their data dir.
    data_dir = broker.broker.data_dir  # type: ignore[attr-defined]  # a LocalBroker, checked above
    assert [pid for pid in jvms if process_alive(pid)] == []
    assert not data_dir.exists()
    assert [pid for pid, cmd in processes().items() if f"{data_dir}/server.properties" in cmd] == []
    print(f"chaos: broker SIGKILL at {chaos.events}; {RECORDS} records, 0 lost, 0 doubled")


@pytest.mark.slow
def test_ndxp_killed_mid_run_records_wait_then_finish(
    kafka_bootstrap: str, data: Data, tmp_path: Path
) -> None:
    chaos, runs = Chaos(), []

    def on_running(run: Run) -> None:
        runs.append(run)
        ndxp = run.ndxp
        assert ndxp is not None

        def inject() -> None:
            await_true(lambda: len(run.collector.results) >= RECORDS // 3, 300, "a third of the results")
            pid = ndxp.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            chaos.events.append(f"ndxp at {len(run.collector.results)}")
            await_true(lambda: ndxp.alive() and ndxp.pid != pid, 60, "the NDXP restarted")

        chaos.start(inject)

    outcome, printed = _run(data, tmp_path, kafka_bootstrap, on_running)
    chaos.check()
    assert_exact(outcome, tmp_path, data)
    ndxp = runs[0].ndxp
    assert ndxp is not None
    assert _restarts(runs[0]) == {ndxp.name: 1}
    assert f"{ndxp.name} died (killed by SIGKILL); restarting it (1 of 5)" in printed
    # The records waited: the worker's calls failed while the NDXP was away, and were retried.
    worker_log = (tmp_path / "run" / "worker-1.log").read_text(errors="replace")
    assert "NDXP call failed" in worker_log
    print(f"chaos: NDXP SIGKILL at {chaos.events}; {RECORDS} records, 0 lost, 0 doubled")


@pytest.mark.slow
def test_ndxp_429_storms_and_503_bursts(
    kafka_bootstrap: str, data: Data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Passed to the run's NDXP and workers by their environment: 3 requests/s per agency (a bucket of 1),
    # small batches so the workers ask faster than that, and a third of the /v1 requests answered 503.
    monkeypatch.setenv("NDXP_RATE_LIMIT_PER_S", "1")
    monkeypatch.setenv("NDXP_RATE_LIMIT_BURST", "1")
    monkeypatch.setenv("NDXP_ERROR_RATE", "0.2")
    monkeypatch.setenv("NDXP_FAULT_SEED", "7")
    monkeypatch.setenv("STREAMS_BATCH_SIZE", "500")
    outcome, _ = _run(data, tmp_path, kafka_bootstrap, lambda run: None)
    assert_exact(outcome, tmp_path, data)
    ndxp_log = (tmp_path / "run" / "ndxp.log").read_text(errors="replace")
    answered = Counter(re.findall(r'"POST /v1/\S+ HTTP/1.1" (\d{3})', ndxp_log))
    assert answered["429"] > 0 and answered["503"] > 0, answered
    # The retries waited as the NDXP asked (Retry-After), and no traceback came of them.
    worker_log = (tmp_path / "run" / "worker-1.log").read_text(errors="replace")
    waits = re.findall(r"NDXP call failed \(attempt \d+\): (.*); retrying in ([\d.]+) s", worker_log)
    assert any("503" in why for why, _ in waits) and any("429" in why for why, _ in waits), waits[:5]
    assert all(float(s) >= 1.0 for why, s in waits if "503" in why), "a 503's Retry-After: 1 was not waited"
    assert "Traceback" not in worker_log
    print(f"chaos: NDXP answers {dict(answered)}; {RECORDS} records, 0 lost, 0 doubled")


def _children(parent: int) -> dict[int, str]:
    """pid → command line of the living children of `parent`."""
    out = {}
    for pid, cmd in processes().items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and process_alive(pid):
            out[pid] = cmd
    return out


class Cli:
    """`python -m popsync.cli simulate` in a subprocess, its output read line by line as it comes."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "popsync.cli", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []

    def read_until(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"simulate ended ({self.proc.wait()}) before printing {prefix!r}: {self.lines}")

    def broker(self) -> tuple[int, Path]:
        """The pid and data dir of the broker it started, as its start line says them."""
        for line in self.lines:
            match = re.search(r"ready on \S+ in [\d.]+ s \(pid (\d+), data (\S+)\)", line)
            if match:
                return int(match.group(1)), Path(match.group(2))
        raise AssertionError(f"no broker line in {self.lines}")


def _cli_env() -> dict[str, str]:
    # No given broker: simulate starts its own. Wide lines: a wrapped line is not one line.
    env = {k: v for k, v in os.environ.items() if k not in ("POPSYNC_BOOTSTRAP_SERVERS", "LINES")}
    env["COLUMNS"] = "400"
    return env


@pytest.mark.slow
def test_simulate_killed_leaves_nothing_it_started(data: Data, tmp_path: Path) -> None:
    if docker_available():
        pytest.skip("a Docker engine answers: simulate would run its broker there, not as its child")
    _scenario(data, tmp_path, rate=100)  # 50 s of records: the run is still on when simulate is killed
    cli = Cli(["simulate", "chaos.yaml", "--timeout", "600"], tmp_path, _cli_env())
    try:
        cli.read_until("metrics:")  # the broker, the NDXP and the worker run
        jvm, _ = cli.broker()
        started = _children(cli.proc.pid)
        (worker,) = [pid for pid, cmd in started.items() if "popsync.cli worker" in cmd]
        (ndxp,) = [pid for pid, cmd in started.items() if "popsync.cli ndxp serve" in cmd]
        assert jvm in started
        # A worker the supervisor restarted must go too: its death signal comes from a thread of simulate.
        os.kill(worker, signal.SIGKILL)

        def workers() -> list[int]:
            return [pid for pid, cmd in _children(cli.proc.pid).items() if "popsync.cli worker" in cmd]

        now: list[int] = []

        def restarted() -> bool:
            now[:] = workers()
            return bool(now) and worker not in now

        await_true(restarted, 30, "the worker restarted")
        (again,) = now
        os.kill(cli.proc.pid, signal.SIGKILL)
        cli.proc.wait(timeout=30)
        await_true(lambda: not any(map(process_alive, (jvm, ndxp, worker, again))), 30, "every service gone")
    finally:
        cli.proc.kill()
        cli.proc.communicate()
    print(f"chaos: simulate SIGKILLed; broker {jvm}, NDXP {ndxp}, workers {worker} and {again} gone")


@pytest.mark.slow
def test_a_broker_that_cannot_come_back_ends_the_run_with_one_line(data: Data, tmp_path: Path) -> None:
    if docker_available():
        pytest.skip("a Docker engine answers: simulate would run its broker there, with no JVM to kill")
    _scenario(data, tmp_path)
    cli = Cli(["simulate", "chaos.yaml", "--timeout", "600"], tmp_path, _cli_env())
    try:
        cli.read_until("metrics:")
        jvm, data_dir = cli.broker()
        (data_dir / "logs" / "meta.properties").unlink()  # what a restart would need to be the same broker
        os.kill(jvm, signal.SIGKILL)
        out, err = cli.proc.communicate(timeout=30)  # within 30 s, never waiting out --timeout
    finally:
        cli.proc.kill()
    assert cli.proc.returncode == 2
    said = "".join(cli.lines) + out + err
    assert "Traceback" not in said
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert re.fullmatch(
        r"error: the Kafka broker popsync started \(127\.0\.0\.1:\d+\) died \(killed by SIGKILL\) and could "
        r"not be restarted: its data is gone: \S+/meta\.properties; its log \S+/broker\.log ends: .+",
        line,
    ), line
    # Besides that line, at most what the clients said before the broker was seen dead (one line a logger).
    client = re.compile(
        r".* (WARNING|ERROR) (kafka|aiokafka|popsync\.lagwatch|popsync\.collector|connectors)\S*: "
    )
    others = [x for x in err.splitlines() if x and x != line]
    assert len(others) <= 8 and all(client.match(x) for x in others), others
    assert not process_alive(jvm)
    print(f"chaos: broker SIGKILL with its data gone: {line[:160]}…")


@pytest.mark.slow
def test_an_ndxp_that_cannot_come_back_ends_the_run_with_one_line(
    kafka_bootstrap: str, data: Data, tmp_path: Path
) -> None:
    chaos, runs = Chaos(), []

    def on_running(run: Run) -> None:
        runs.append(run)

        def inject() -> None:
            await_true(lambda: len(run.collector.results) >= RECORDS // 5, 300, "a fifth of the results")
            for path in (tmp_path / "run").glob("npd.sqlite*"):  # the NPD the NDXP serves
                path.unlink()
            assert run.ndxp is not None and run.ndxp.pid is not None
            os.kill(run.ndxp.pid, signal.SIGKILL)

        chaos.start(inject)

    with pytest.raises(ServiceError) as raised:
        _run(data, tmp_path, kafka_bootstrap, on_running)
    chaos.check()
    message = str(raised.value)
    assert "\n" not in message
    assert re.fullmatch(
        r"the NDXP popsync started \(http://127\.0\.0\.1:\d+\) died \(killed by SIGKILL\) and could not be "
        r"restarted: its data is gone: \S+/npd\.sqlite; its log \S+/ndxp\.log ends: .+",
        message,
    ), message
    assert not any(w.alive() for w in runs[0].workers)


@pytest.mark.slow
def test_a_given_broker_that_stops_answering_ends_the_run_with_one_line(data: Data, tmp_path: Path) -> None:
    chaos = Chaos()
    with LocalKafka(partitions=6) as given:  # a broker simulate is given, not one it started
        bootstrap = given.bootstrap_servers

        def on_running(run: Run) -> None:
            def inject() -> None:
                await_true(lambda: len(run.collector.results) >= RECORDS // 5, 300, "a fifth of the results")
                assert given.pid is not None
                os.kill(given.pid, signal.SIGKILL)

            chaos.start(inject)

        with pytest.raises(ServiceError) as raised:
            _run(data, tmp_path, bootstrap, on_running, unreachable_s=5.0)
    chaos.check()
    assert str(raised.value) == (
        f"the Kafka broker at {bootstrap} (not started by popsync) has not answered for 5 s; "
        "the run cannot go on"
    )


def test_no_process_of_the_suite_is_left(chaos_mark: str) -> None:
    """Last of the module: nothing any run above started (marked by its environment) still runs."""
    assert_none_left(MARK, chaos_mark)
