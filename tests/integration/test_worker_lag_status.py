"""A faust worker stops mid-run: its partitions go STALL/STOP within the window, then OK after restart.

After the restart no partition is STALL or STOP any more, and every partition's committed offset moves
past where the killed worker left it. While records still arrive, a partition whose small lag did not
shrink over the last commits is WARN ("moves but does not gain"), which a loaded machine shows between two
of the restarted worker's commits. (Where faust skipped messages around the restart, streams/gaps.py
reads them back; faust's own commits of such a partition may then stop short of its end: see the
session notes. The records are all decided: `outcome.problems` is empty.)
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from popsync.lag import Status
from popsync.lagwatch import LagMonitor
from popsync.simulate import Run, RunOptions, run_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = """\
name: lag-status
seed: 5
population:
  generate: {"008": 16000}
sources:
  - sector: insurance
    province: "008"
    rate: 500  # 30 s of publishing: the kill, the restart and the catch-up all happen mid-run
    generate:
      records: 15000
      unsynced: {mismatch: 20, not_found: 10}
expect:
  - {sector: insurance, province: "008", total: 15000, unsynced: 30}
"""


def test_stopped_worker_goes_stall_or_stop_then_ok(kafka_bootstrap: str, tmp_path: Path) -> None:
    scenario = tmp_path / "lag.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    seen: dict[str, list[str]] = {"down": [], "up": []}
    errors: list[BaseException] = []
    watch: dict[str, LagMonitor] = {}
    killed_at: dict[int, int] = {}  # partition -> committed offset when the worker was killed

    def statuses(monitor: LagMonitor, run: Run) -> set[str]:
        monitor.poll_once()
        topic = run.topics.records("insurance")
        return {p.status for p in monitor.snapshot() if p.topic == topic and p.lag > 0} or {
            p.status for p in monitor.snapshot() if p.topic == topic
        }

    def chaos(run: Run) -> None:
        def drive() -> None:
            # A fast window (6 polls, 0.5 s apart) so STOP comes within seconds of the last commit.
            monitor = watch["monitor"] = LagMonitor(
                run.bootstrap_servers, groups=[f"popsync-{run.topics.prefix}"], window=6, interval_s=0.5
            )
            try:
                deadline = time.monotonic() + 300
                topic = run.topics.records("insurance")
                # Kill once the worker has committed offsets (faust commits every second), mid-run.
                while time.monotonic() < deadline and not (
                    len(run.collector.results) >= 1500
                    and any(p.topic == topic and p.committed > 0 for p in monitor.poll_once())
                ):
                    time.sleep(0.2)
                run.workers[0].kill()
                killed_at.update({p.partition: p.committed for p in monitor.poll_once() if p.topic == topic})
                # simulate gives up when no worker has run for 20 s; judge within 15 s
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    now = statuses(monitor, run)
                    seen["down"].append(",".join(sorted(now)))
                    if now and now <= {Status.STALL.value, Status.STOP.value}:
                        break
                    time.sleep(0.5)
                run.start_worker(1)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and len(run.collector.results) < 15000:
                    now = statuses(monitor, run)
                    seen["up"].append(",".join(sorted(now)))
                    if now == {Status.OK.value}:
                        break
                    time.sleep(0.5)
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        threading.Thread(target=drive, daemon=True).start()

    options = RunOptions(bootstrap_servers=kafka_bootstrap, on_running=chaos, timeout_s=600)
    try:
        outcome = run_scenario(scenario, options, Console(file=io.StringIO()))
        assert errors == [], errors
        assert outcome.problems == []
        down = seen["down"][-1].split(",")
        assert set(down) <= {"STALL", "STOP"} and down != [""], seen["down"]
        assert seen["up"] and set(seen["up"][-1].split(",")) <= {"OK", "WARN"}, seen["up"]
        # The run is over: the restarted worker committed every partition past where the killed one left it.
        rows = [p for p in watch["monitor"].poll_once() if p.topic.endswith(".records.insurance")]
        assert sorted(p.partition for p in rows) == sorted(killed_at), (rows, killed_at)
        assert all(p.committed > killed_at[p.partition] for p in rows), (rows, killed_at)
    finally:
        if "monitor" in watch:
            watch["monitor"].close()
