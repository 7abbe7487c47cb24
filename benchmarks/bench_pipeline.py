"""`pipeline`: records/s of `run_scenario` end to end, against the bare producer rate of `publish`.

A generated scenario (the benchmark workload: an insurance and a labour source) runs through
`popsync.simulate.run_scenario` on the run's broker with one faust worker. The rate is the summary's
(records ÷ seconds from the first publish to the last outcome). Publishing waits until the worker owns
its partitions, so a worker's start-up and group join (seconds, paid once) do not dilute a throughput
figure; they are reported apart as `worker_ready_s`. The baseline is the bare kafka-python producer rate
`publish` measured in this run (measured here if `publish` was not run): how much of the broker's raw
intake the whole reconciliation (consume, NDXP batch look-up, rules, results, counting) sustains.

Target: ratio ≥ 0.05: one worker process sustains at least a twentieth of what a bare producer pushes
into the broker. Per record a worker consumes it, shares an NDXP batch call, runs the rules, produces a
result, writes up to two table entries (each with a changelog message) and counts it: four to five messages
of Kafka client work in one Python process plus the rules, so about a tenth of the bare rate is the
most to expect, and half of that is the floor. At 0.05 of the ~16–50k messages/s a bare producer does,
Tuyên Quang's month (757,543 records) is reconciled by one worker in 5–16 minutes; more workers (up to
the partition count) divide that. The summary's sync-lag p50/p95 are reported alongside: with the
records published faster than one worker reconciles them, the lag is mostly the backlog's queueing.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from benchmarks import workload
from benchmarks.bench_publish import bare_producer_rate
from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step
from popsync.simulate import Run, RunOptions, run_scenario

__all__ = ["TARGET", "run"]

NAME = "pipeline"
TARGET = 0.05
RECORDS = 20_000
PARTITIONS = 6
READY_TIMEOUT_S = 180.0


def scenario(records: int) -> dict[str, Any]:
    """The scenario file's content for `records` records of the benchmark workload."""
    return {
        "name": "bench-pipeline",
        "seed": workload.SEED,
        "partitions": PARTITIONS,
        "population": {"generate": workload.population_counts(records)},
        "sources": [
            {"sector": sector, "province": province, "generate": workload.spec_for(sector, n).model_dump()}
            for sector, province, n in workload.split(records)
        ],
        "expect": [
            {"sector": sector, "province": province, "total": n}
            for sector, province, n in workload.split(records)
        ],
    }


def _wait_for_workers(run: Run, ready: dict[str, float]) -> None:
    """Block until the workers' progress snapshots cover every results partition (they own them all)."""
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        run.collector.check()
        with run.collector.lock:
            owned = len(run.collector.progress)
        if owned >= run.scenario.partitions:
            ready["seconds"] = time.monotonic() - started
            return
        if not any(w.alive() for w in run.workers):
            tails = "\n".join(w.log_tail() for w in run.workers)
            raise BenchmarkError(f"pipeline: the worker exited before it was ready:\n{tails}")
        time.sleep(0.2)  # polling the collector: it offers no ready event
    raise BenchmarkError(f"pipeline: the worker did not own its partitions within {READY_TIMEOUT_S:.0f} s")


def run(ctx: BenchContext) -> BenchResult:
    bootstrap = ctx.bootstrap()
    baseline = bare_producer_rate(ctx)
    n = ctx.size(RECORDS)
    ready: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="popsync-bench-pipeline-") as tmp:
        path = Path(tmp) / "bench-pipeline.yaml"
        path.write_text(yaml.safe_dump(scenario(n), sort_keys=False), encoding="utf-8")
        options = RunOptions(
            bootstrap_servers=bootstrap,
            timeout_s=1800.0,
            on_running=lambda r: _wait_for_workers(r, ready),
        )
        with open(os.devnull, "w") as devnull, step(ctx.log, f"pipeline: simulate {n:,} records"):
            started = time.perf_counter()
            outcome = run_scenario(path, options, Console(file=devnull))
            wall_s = time.perf_counter() - started
    if outcome.problems:
        raise BenchmarkError("pipeline: the scenario's figures are wrong: " + "; ".join(outcome.problems))
    summary = outcome.summary
    lag = summary["sync_lag_ms"]
    return BenchResult(
        NAME,
        "simulate end to end vs bare producer",
        Rate("records/s, popsync simulate end to end", n, float(summary["duration_s"])),
        baseline,
        TARGET,
        {
            "records": n,
            "workers": options.workers,
            "sync_lag_p50_ms": lag["p50"],
            "sync_lag_p95_ms": lag["p95"],
            "sync_lag_p99_ms": lag["p99"],
            "worker_ready_s": round(ready.get("seconds", 0.0), 1),
            "wall_s": round(wall_s, 1),
        },
    )
