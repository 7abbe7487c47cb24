"""Keeping a local broker's JVM from outliving popsync, and sweeping the data dirs of those that did.

The JVM never outlives popsync: it runs in its own process group (Ctrl-C reaches only Python, which stops
it in order), gets SIGKILL from the kernel if the forking thread dies (`PR_SET_PDEATHSIG`, so even a
SIGKILLed parent leaves no orphan), and is stopped by atexit and a SIGTERM handler. `kafka_up` is the
exception: a detached broker for `popsync kafka up|down|status`, tracked in a state file (see `detached`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Protocol

from popsync.broker.probe import process_alive

__all__ = [
    "DATA_PREFIX",
    "RUN_FILE",
    "die_with_parent",
    "install_hooks",
    "keep_detached",
    "remove_stale_data_dirs",
    "track",
    "untrack",
]

DATA_PREFIX = "popsync-kafka-"  # of a broker's temp data dir
RUN_FILE = "popsync-run.json"  # in a data dir: who owns it, the JVM's pid, whether to keep it
_PR_SET_PDEATHSIG = 1


class _Stoppable(Protocol):
    def stop(self) -> None: ...


# The one registry of this process's running (non-detached) brokers, stopped at exit or on SIGTERM.
_LIVE: set[_Stoppable] = set()
_DETACHED: list[subprocess.Popen[bytes]] = []  # kept so no ResourceWarning fires for a broker left running
_hooks_installed = False


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn: the kernel SIGKILLs the child when the thread that forked it dies, even by SIGKILL.

    None where there is no prctl (not Linux): there only atexit and the signal handler stop the JVM.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: no dlopen in the child
    except (AttributeError, OSError):
        return None

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def remove_stale_data_dirs() -> list[Path]:
    """Remove temp data dirs of brokers whose owner and JVM are both gone (e.g. after a SIGKILL)."""
    removed = []
    for run_file in Path(tempfile.gettempdir()).glob(f"{DATA_PREFIX}*/{RUN_FILE}"):
        with contextlib.suppress(OSError, ValueError, TypeError):
            run = json.loads(run_file.read_text())
            pids = [p for p in (run.get("owner_pid"), run.get("jvm_pid")) if p]
            if not run.get("keep") and not any(process_alive(int(p)) for p in pids):
                shutil.rmtree(run_file.parent, ignore_errors=True)
                removed.append(run_file.parent)
    return removed


def track(broker: _Stoppable) -> None:
    """Stop `broker` when this process exits or gets SIGTERM (see `install_hooks`)."""
    _LIVE.add(broker)


def untrack(broker: _Stoppable) -> None:
    """Forget `broker`: it stopped, or was released to outlive this process."""
    _LIVE.discard(broker)


def keep_detached(proc: subprocess.Popen[bytes]) -> None:
    """Hold a released broker's process for good, so no ResourceWarning fires for it."""
    _DETACHED.append(proc)


def _stop_all() -> None:
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # die as SIGTERM would have, now that the broker is down


def install_hooks() -> None:
    """Once per process: stop the tracked brokers at exit, and on SIGTERM if nobody else handles it."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all)
    # Only take SIGTERM if nobody else did (faust, uvicorn install their own and exit through atexit).
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)
