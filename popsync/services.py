"""Child processes popsync starts (NDXP, workers): started with a death signal, stopped, supervised."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from popsync.broker.probe import describe_exit
from popsync.exceptions import ServiceError

__all__ = [
    "ManagedProcess",
    "QuietClients",
    "Service",
    "ServiceDown",
    "Supervisor",
    "free_port",
    "one_line_tail",
    "popsync_command",
    "stop_all",
    "supervised",
]

_PR_SET_PDEATHSIG = 1
# Threads that live as long as the children they start (the main thread, a run's supervisor): only their
# children get the death signal, which the kernel sends when the *thread* that forked exits.
_LASTING: set[int] = set()
QUIET_AFTER_RESTART_S = 15.0  # how long clients' connection errors are dropped after a restart


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def popsync_command(*args: str) -> list[str]:
    """The CLI run with this interpreter, so children use the same environment as the parent."""
    return [sys.executable, "-m", "popsync.cli", *args]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # If popsync itself is killed (even with SIGKILL), the kernel kills the child too. SIGKILL, not SIGTERM:
    # a worker whose NDXP is gone may never finish a graceful stop, and nobody is left to escalate.
    # Nothing is lost: what the child had not committed is processed again by the next worker.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One child process with its log file; `stop` sends SIGTERM, then SIGKILL after a grace period."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        requires: Sequence[Path] = (),
    ) -> None:
        """`requires`: files a restart needs (its data): without them it would start afresh on nothing."""
        self.name = name
        self.command = list(command)
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.requires = list(requires)
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped_on_purpose = False  # `stop` or `kill` ended it: a supervisor leaves it down
        self._ready: tuple[Callable[[], bool], float] | None = None  # what `wait_ready` waited for

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.stopped_on_purpose = False
        log = self.log_path.open("ab")
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process: a child started
        # from a short-lived thread (a test's chaos thread) would be killed with it. Only the children of
        # the main thread and of a supervisor get the death signal; the others rely on `stop()` in the
        # run's cleanup.
        on_main = threading.current_thread() is threading.main_thread() or threading.get_ident() in _LASTING
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI, no shell
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if on_main else None,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_status(self) -> str:
        """How it ended: `exit 1`, `killed by SIGKILL` (`running` while it runs)."""
        return describe_exit(self.proc.poll() if self.proc is not None else None)

    def restart(self, timeout: float = 20.0) -> None:
        """Start it again with the same command, environment and log; wait as `wait_ready` did, if it did.

        `ServiceError` if a file it `requires` is gone, if it dies during start-up or is not ready in time.
        """
        missing = [str(path) for path in self.requires if not path.exists()]
        if missing:
            raise ServiceError(f"its data is gone: {', '.join(missing)}")
        self.start()
        if self._ready is not None:
            self.wait_ready(self._ready[0], timeout=min(timeout, self._ready[1]))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Wait until `check()` is true; fail with the log tail if the process dies or time runs out."""
        self._ready = (check, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(f"{self.name} exited during start-up; last log lines:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        raise ServiceError(
            f"{self.name} was not ready after {timeout:.0f} s; last log lines:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would, by whoever holds it (a test that restarts it itself): a supervisor
        leaves it down. A crash a supervisor should see is a SIGKILL sent to `pid` from outside."""
        self.stopped_on_purpose = True
        if self.alive() and self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
        stop_all([self], grace)


def stop_all(procs: Sequence[ManagedProcess], grace: float = 15.0) -> None:
    """Stop several processes at once: SIGTERM to all, then SIGKILL to those still there after `grace`."""
    for proc in procs:
        proc.stopped_on_purpose = True
        if proc.alive() and proc.proc is not None:
            proc.proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        if proc.proc is None:
            continue
        try:
            proc.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.proc.kill()
            proc.proc.wait()


_NOTABLE = re.compile(r"ERROR|FATAL|CRITICAL|Error\b|Exception\b|Traceback|[Kk]illed")


def one_line_tail(text: str, lines: int = 3, width: int = 200) -> str:
    """The end of a log as one line: its last notable lines (errors, exceptions) if its end has any, else
    its last lines; white space collapsed, each cut at `width`, joined with ` | `."""
    recent = [" ".join(line.split()) for line in text.splitlines()[-80:] if line.strip()]
    notable = [line for line in recent if _NOTABLE.search(line)]
    chosen = [
        line if len(line) <= width else line[: width - 1] + "…" for line in (notable or recent)[-lines:]
    ]
    return " | ".join(chosen) or "(empty)"


class Service(Protocol):
    """What a `Supervisor` watches: a `ManagedProcess`, or the broker a run started (`popsync.broker`)."""

    @property
    def name(self) -> str: ...

    @property
    def stopped_on_purpose(self) -> bool: ...

    @property
    def log_path(self) -> Path | None: ...

    def alive(self) -> bool: ...

    def exit_status(self) -> str: ...

    def log_tail(self, lines: int = 20) -> str: ...

    def restart(self, timeout: float = 20.0) -> None: ...


@dataclass
class _Watched:
    service: Service
    limit: int
    essential: bool
    restarts: int = 0
    given_up: bool = False


@dataclass
class _Reachable:
    name: str
    check: Callable[[], bool]
    bound_s: float
    down_since: float | None = None


class Supervisor:
    """Watches a run's services from one thread that lives as long as the run.

    A service that dies on its own (not `stop`ped or `kill`ed by whoever holds it) is restarted, at most
    `limit` times, with one line through `say` each time. Workers wait while an essential service (the
    broker, the NDXP) is down, so its outage does not use up their restarts. When an essential service
    cannot be restarted, a given broker has not answered for its bound, or the last worker is past its
    limit, `failure` gets one line saying so, `on_failure` is called once (from the supervisor's thread),
    and the supervisor does nothing more. `check()` raises that failure as a `ServiceError`.

    What it restarts gets the death signal: its thread lives until `close()`, after the run stopped them.
    """

    def __init__(
        self,
        say: Callable[[str], None],
        *,
        interval_s: float = 0.5,
        restart_timeout_s: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say = say
        self._clock = clock
        self.on_failure: Callable[[str], None] | None = None
        self.failure: str | None = None
        self.restart_timeout_s = restart_timeout_s
        self._interval = interval_s
        self._watched: dict[str, _Watched] = {}
        self._reachable: list[_Reachable] = []
        self._lock = threading.Lock()
        self._paused = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="popsync-supervisor", daemon=True)
        self._quiet_until = 0.0

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def watch(self, service: Service, *, limit: int = 5, essential: bool = False) -> None:
        """Restart `service` when it dies, at most `limit` times; a service of the same name replaces the
        one watched so far (a worker started again by hand) and keeps its count."""
        with self._lock:
            entry = self._watched.get(service.name)
            if entry is None:
                self._watched[service.name] = _Watched(service, limit, essential)
            else:
                entry.service, entry.given_up = service, False

    def watch_reachable(self, name: str, check: Callable[[], bool], bound_s: float = 30.0) -> None:
        """Fail the run when `check()` (does a service popsync did not start answer?) stays false over
        `bound_s` seconds."""
        with self._lock:
            self._reachable.append(_Reachable(name, check, bound_s))

    def restarts(self) -> dict[str, int]:
        """How often each watched service was restarted so far."""
        with self._lock:
            return {name: entry.restarts for name, entry in self._watched.items()}

    def check(self) -> None:
        """Raise the failure, if there is one, as a `ServiceError` (for waits that poll)."""
        if self.failure is not None:
            raise ServiceError(self.failure)

    def pause(self) -> None:
        """Restart nothing more (the run is stopping its services); waits for a restart under way."""
        with self._lock:
            self._paused = True

    def close(self) -> None:
        """Pause, then end the thread: call it after the services it restarted were stopped."""
        self.pause()
        self._closing.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        _LASTING.add(threading.get_ident())
        try:
            while not self._closing.wait(self._interval):
                self.tick()
        except Exception as exc:  # a bug here must still end the run with a line, not a silent thread
            self._fail(f"the supervisor of the run's services failed: {exc!r}")
        finally:
            _LASTING.discard(threading.get_ident())

    def tick(self) -> None:
        """One round: restart what died, check what must answer (its thread does it every interval)."""
        with self._lock:
            if not self._paused and self.failure is None:
                self._tick()

    def _tick(self) -> None:
        now = self._clock()
        for watch in self._reachable:
            if watch.check():
                watch.down_since = None
            elif watch.down_since is None:
                watch.down_since = now
            elif now - watch.down_since > watch.bound_s:
                self._fail(f"{watch.name} has not answered for {watch.bound_s:.0f} s; the run cannot go on")
                return
        entries = sorted(self._watched.values(), key=lambda e: not e.essential)  # the broker first
        for entry in entries:
            service = entry.service
            if entry.given_up or service.stopped_on_purpose or service.alive():
                continue
            essential_down = any(
                e.essential and not e.service.alive() and not e.service.stopped_on_purpose for e in entries
            )
            if not entry.essential and essential_down:
                continue  # a worker waits for the broker and the NDXP to be back
            self._revive(entry, [e for e in entries if not e.essential])
            if self.failure is not None:
                return

    def _revive(self, entry: _Watched, workers: list[_Watched]) -> None:
        service, status = entry.service, entry.service.exit_status()
        if entry.restarts >= entry.limit:
            entry.given_up = True
            if entry.essential:
                self._fail(f"{service.name} died ({status}) after {entry.limit} restarts; {_tail(service)}")
            elif not any(w.service.alive() for w in workers):
                self._fail(
                    f"no worker is left: {service.name} died ({status}) after {entry.limit} restarts; "
                    f"{_tail(service)}"
                )
            else:
                self.say(f"{service.name} died ({status}) after {entry.limit} restarts; it stays down")
            return
        entry.restarts += 1
        self.say(f"{service.name} died ({status}); restarting it ({entry.restarts} of {entry.limit})")
        if entry.essential:
            self._quiet_until = float("inf")
        try:
            service.restart(timeout=self.restart_timeout_s)
            if entry.essential:  # clients take a few seconds to notice it is back
                self._quiet_until = self._clock() + QUIET_AFTER_RESTART_S
        except Exception as exc:
            cause = next((line for line in str(exc).splitlines() if line.strip()), repr(exc)).rstrip(".:")
            self._fail(
                f"{service.name} died ({status}) and could not be restarted: {cause}; {_tail(service)}"
            )

    def quiet(self) -> bool:
        """True while a watched service is down or just back: its clients' connection errors say nothing
        the supervisor's lines do not (see `QuietClients`)."""
        if self._clock() < self._quiet_until or any(r.down_since is not None for r in self._reachable):
            return True
        return any(
            e.essential and not e.service.stopped_on_purpose and not e.service.alive()
            for e in list(self._watched.values())
        )

    def _fail(self, message: str) -> None:
        self.failure = message
        if self.on_failure is not None:
            self.on_failure(message)


def _tail(service: Service) -> str:
    where = f" {service.log_path}" if service.log_path is not None else ""
    return f"its log{where} ends: {one_line_tail(service.log_tail(200))}"


class QuietClients(logging.Filter):
    """Keeps Kafka clients' errors from burying the run's own lines: a broker restart made kafka-python log
    a connection error every 50 ms per client, with tracebacks. While the supervisor knows a service to be
    down or just back, their records are dropped (its one line says it); otherwise each client logger
    says at most one line a minute, without the traceback (the first one of an outage comes before the
    supervisor can know: a JVM closes its sockets before it is seen dead)."""

    NOISY = ("kafka", "aiokafka", "popsync.lagwatch", "popsync.collector", "connectors")
    EVERY_S = 60.0

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__()
        self.supervisor = supervisor
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.NOISY) or record.levelno >= logging.CRITICAL:
            return True
        if self.supervisor.quiet():
            return False
        now = time.monotonic()
        if now - self._last.get(record.name, -self.EVERY_S) < self.EVERY_S:
            return False
        self._last[record.name] = now
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {exc})", None
            record.exc_info, record.exc_text = None, None
        return True


class ServiceDown(BaseException):
    """Raised in the main thread when its supervisor failed. A BaseException, like KeyboardInterrupt, so
    that no `except Exception` of a client library on the way swallows it; `supervised` turns it into
    the supervisor's `ServiceError`."""


@contextlib.contextmanager
def supervised(supervisor: Supervisor) -> Iterator[Supervisor]:
    """Run the block with `supervisor` watching, and stop the block when it fails, wherever the main
    thread waits (publishing, a producer's flush, polling): SIGUSR1 wakes it and raises `ServiceDown`.

    Outside the main thread no signal can reach the block; its waits call `supervisor.check()` instead.
    On the way out the supervisor is closed, after the block stopped what it started.
    """
    previous: Any = None
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        main = threading.get_ident()

        def interrupt(signum: int, frame: FrameType | None) -> None:
            if supervisor.failure is not None:  # a SIGUSR1 from elsewhere changes nothing
                raise ServiceDown(supervisor.failure)

        previous = signal.signal(signal.SIGUSR1, interrupt)
        supervisor.on_failure = lambda _message: signal.pthread_kill(main, signal.SIGUSR1)
    quiet = QuietClients(supervisor)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(quiet)
    supervisor.start()
    try:
        yield supervisor
    except ServiceDown:
        raise ServiceError(supervisor.failure or "a service of the run died") from None
    finally:
        supervisor.close()
        if on_main:
            signal.signal(signal.SIGUSR1, signal.SIG_DFL if previous is None else previous)
        for handler in handlers:
            handler.removeFilter(quiet)
