"""The supervisor of a run's services, on fake services: restarts, limits, the one line of a failure."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from popsync.broker.probe import describe_exit
from popsync.exceptions import ServiceError
from popsync.services import ManagedProcess, QuietClients, Supervisor, one_line_tail, supervised

pytestmark = pytest.mark.unit


@dataclass
class Fake:
    """A service that dies when told and comes back when restarted (or fails to, when told so)."""

    name: str
    running: bool = True
    stopped_on_purpose: bool = False
    log_path: Path | None = None
    log: str = "starting\nready"
    fail_restart: str | None = None
    restarted: int = 0
    order: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.running

    def exit_status(self) -> str:
        return "running" if self.running else "killed by SIGKILL"

    def log_tail(self, lines: int = 20) -> str:
        return self.log

    def restart(self, timeout: float = 20.0) -> None:
        self.order.append(self.name)
        if self.fail_restart is not None:
            raise ServiceError(self.fail_restart)
        self.restarted += 1
        self.running = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _supervisor() -> tuple[Supervisor, list[str], list[str]]:
    said: list[str] = []
    failures: list[str] = []
    supervisor = Supervisor(said.append, clock=Clock())
    supervisor.on_failure = failures.append
    return supervisor, said, failures


def test_a_dead_worker_is_restarted_with_one_line_each_time_up_to_its_limit() -> None:
    supervisor, said, failures = _supervisor()
    worker, other = Fake("worker-1"), Fake("worker-2")
    supervisor.watch(worker, limit=2)
    supervisor.watch(other, limit=2)
    for _ in range(3):
        worker.running = False
        supervisor.tick()
    assert said == [
        "worker-1 died (killed by SIGKILL); restarting it (1 of 2)",
        "worker-1 died (killed by SIGKILL); restarting it (2 of 2)",
        "worker-1 died (killed by SIGKILL) after 2 restarts; it stays down",
    ]
    assert worker.restarted == 2 and not worker.running
    assert failures == [] and supervisor.failure is None  # worker-2 still runs
    supervisor.tick()
    assert len(said) == 3  # given up: said once
    assert supervisor.restarts() == {"worker-1": 2, "worker-2": 0}


def test_the_last_worker_past_its_limit_fails_the_run_with_one_line() -> None:
    supervisor, _, failures = _supervisor()
    worker = Fake("worker-1", running=False, log="x\nTraceback (most recent call last):\nValueError: boom\n")
    supervisor.watch(worker, limit=0)
    supervisor.tick()
    assert failures == [
        "no worker is left: worker-1 died (killed by SIGKILL) after 0 restarts; its log ends: "
        "Traceback (most recent call last): | ValueError: boom"
    ]
    with pytest.raises(ServiceError, match="no worker is left"):
        supervisor.check()


def test_an_essential_service_that_cannot_come_back_fails_once_and_nothing_more_is_done() -> None:
    supervisor, said, failures = _supervisor()
    broker = Fake(
        "the broker", running=False, log_path=Path("/data/broker.log"), fail_restart="its data is gone: /x."
    )
    worker = Fake("worker-1", running=False)
    supervisor.watch(worker)
    supervisor.watch(broker, essential=True)
    supervisor.tick()
    assert said == ["the broker died (killed by SIGKILL); restarting it (1 of 5)"]
    assert failures == [
        "the broker died (killed by SIGKILL) and could not be restarted: its data is gone: /x; "
        "its log /data/broker.log ends: starting | ready"
    ]
    supervisor.tick()
    assert worker.order == [] and len(failures) == 1  # the worker waited for the broker, then the run ended


def test_workers_wait_for_the_broker_and_the_broker_comes_first() -> None:
    supervisor, said, _ = _supervisor()
    order: list[str] = []
    worker = Fake("worker-1", running=False, order=order)
    broker = Fake("the broker", running=False, order=order)
    supervisor.watch(worker)
    supervisor.watch(broker, essential=True)
    supervisor.tick()
    assert order == ["the broker", "worker-1"]
    assert supervisor.restarts() == {"worker-1": 1, "the broker": 1}
    assert len(said) == 2


def test_a_service_stopped_on_purpose_stays_down() -> None:
    supervisor, said, _ = _supervisor()
    worker = Fake("worker-1", running=False, stopped_on_purpose=True)
    supervisor.watch(worker)
    supervisor.tick()
    assert said == [] and worker.restarted == 0


def test_a_worker_started_again_by_hand_keeps_its_count() -> None:
    supervisor, _, _ = _supervisor()
    supervisor.watch(Fake("worker-1", running=False), limit=1)
    supervisor.tick()
    again = Fake("worker-1", running=False)
    supervisor.watch(again, limit=1)
    supervisor.tick()
    assert again.restarted == 0  # the one restart was used by its predecessor


def test_nothing_is_restarted_once_paused() -> None:
    supervisor, said, _ = _supervisor()
    worker = Fake("worker-1", running=False)
    supervisor.watch(worker)
    supervisor.pause()
    supervisor.tick()
    assert said == [] and not worker.running


def test_a_given_broker_that_stops_answering_fails_the_run_after_its_bound() -> None:
    clock = Clock()
    failures: list[str] = []
    supervisor = Supervisor(lambda _: None, clock=clock)
    supervisor.on_failure = failures.append
    answers = [True]
    supervisor.watch_reachable("the Kafka broker at h:1", lambda: answers[0], bound_s=30)
    answers[0] = False
    supervisor.tick()
    assert supervisor.quiet()  # its clients' errors are not shown while it is away
    clock.now += 29
    supervisor.tick()
    answers[0] = True  # back in time: the count starts again
    supervisor.tick()
    assert not supervisor.quiet()
    answers[0] = False
    supervisor.tick()
    clock.now += 30.5
    supervisor.tick()
    assert failures == ["the Kafka broker at h:1 has not answered for 30 s; the run cannot go on"]


def test_one_line_tail_prefers_the_errors_at_the_end_of_a_log() -> None:
    log = "\n".join(["INFO a", "ERROR   first   failure", "INFO b", "", "Exception: second", "INFO c"])
    assert one_line_tail(log) == "ERROR first failure | Exception: second"
    assert one_line_tail("INFO a\nINFO b\nINFO c\nINFO d") == "INFO b | INFO c | INFO d"
    assert one_line_tail("x" * 300, width=10) == "x" * 9 + "…"
    assert one_line_tail("") == "(empty)"


def test_exit_statuses_read_as_people_say_them() -> None:
    assert [describe_exit(c) for c in (None, 0, 1, -9, -15, -1000)] == [
        "running",
        "exit 0",
        "exit 1",
        "killed by SIGKILL",
        "killed by SIGTERM",
        "killed by signal 1000",
    ]


def _record(name: str, level: int = logging.ERROR, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, level, __file__, 1, "connection lost: %s", ("x",), exc_info)


def test_client_errors_are_dropped_while_a_service_is_down_and_throttled_otherwise() -> None:
    supervisor, _, _ = _supervisor()
    broker = Fake("the broker")
    supervisor.watch(broker, essential=True)
    quiet = QuietClients(supervisor)
    first = _record("kafka.net.connection", exc=OSError("reset"))
    assert quiet.filter(first)
    assert first.getMessage() == "connection lost: x (OSError: reset)" and first.exc_info is None
    assert not quiet.filter(_record("kafka.net.connection"))  # the same logger again within a minute
    assert quiet.filter(_record("kafka.cluster"))
    broker.running = False
    assert not quiet.filter(_record("kafka.producer.sender"))
    assert quiet.filter(_record("popsync.simulate"))  # not a client: always said
    assert quiet.filter(_record("kafka.producer.sender", logging.CRITICAL))


def test_a_failure_stops_the_main_thread_where_it_waits() -> None:
    supervisor = Supervisor(lambda _: None, interval_s=0.01)
    supervisor.watch(Fake("the NDXP", running=False, fail_restart="its data is gone: /npd"), essential=True)
    waiting = threading.Event()
    with (
        pytest.raises(ServiceError, match=r"^the NDXP died \(killed by SIGKILL\) and could not be restarted"),
        supervised(supervisor),
    ):
        waiting.wait(timeout=60)  # woken by the supervisor's signal, long before this
    assert not waiting.is_set()


def test_a_restart_refuses_when_its_data_is_gone(tmp_path: Path) -> None:
    proc = ManagedProcess("ndxp", ["true"], {}, tmp_path / "ndxp.log", requires=[tmp_path / "npd.sqlite"])
    with pytest.raises(ServiceError, match=r"^its data is gone: .*npd\.sqlite$"):
        proc.restart()
    assert proc.proc is None  # nothing was started


def test_a_broker_never_started_cannot_be_restarted() -> None:
    from popsync.broker import KafkaStartError, LocalKafka

    with pytest.raises(KafkaStartError, match="it was never started"):
        LocalKafka().restart()
