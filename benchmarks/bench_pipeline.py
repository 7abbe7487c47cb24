"""`pipeline`: records/s of `run_scenario` end to end, against the raw Kafka path of the same records.

A generated scenario (the benchmark workload: an insurance and a labour source) runs through
`popsync.simulate.run_scenario` on the run's broker with one faust worker. The rate is the summary's
(records ÷ seconds from the first publish to the last outcome). Publishing waits until the worker owns
its partitions, so a worker's start-up and group join (seconds, paid once) do not dilute a throughput
figure; they are reported apart as `worker_ready_s`.

The baseline is the true ceiling, measured in the same run on the same broker (`benchmarks.ceiling`):
the same records (same bytes, keys and partition count) from a kafka-python producer to an aiokafka
consumer, nothing done with them. Alongside: sync-lag p50/p95/p99 and the CPU seconds per 1,000 records
of each process (worker, NDXP, broker, simulate itself).

Target: ratio ≥ 0.25 of the ceiling with one worker (issue "Throughput"). A worker reads records in
envelopes and writes results in record batches (README "Envelopes"), so faust's per-message cost
(FACTS.md: ~140 µs) is paid once per envelope and digest, not once or twice per record; what remains per
record is parsing, the NDXP answer's decoding, the rules and one produced result. At 0.25 of the
~30k messages/s ceiling, Tuyên Quang's month (757,543 records) takes one worker under two minutes.
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
from benchmarks.ceiling import CpuWatch, broker_pid, raw_ceiling
from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step
from connectors.lgsp import partition_key
from popsync.simulate import Run, RunOptions, run_scenario
from streams.messages import dumps

__all__ = ["TARGET", "run"]

NAME = "pipeline"
TARGET = 0.25
RECORDS = 100_000
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


def _wait_for_workers(run: Run, ready: dict[str, float], cpu: CpuWatch) -> None:
    """Block until the workers' progress snapshots cover every results partition (they own them all);
    then start counting the CPU of the run's processes."""
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        run.collector.check()
        with run.collector.lock:
            owned = len(run.collector.progress)
        if owned >= run.scenario.partitions:
            ready["seconds"] = time.monotonic() - started
            for i, worker in enumerate(run.workers, start=1):
                cpu.watch(f"worker-{i}", worker.pid)
            cpu.watch("ndxp", run.ndxp.pid if run.ndxp else None)
            cpu.watch("broker", broker_pid(run.bootstrap_servers))
            cpu.watch("simulate", os.getpid())
            cpu.start()
            return
        if not any(w.alive() for w in run.workers):
            tails = "\n".join(w.log_tail() for w in run.workers)
            raise BenchmarkError(f"pipeline: the worker exited before it was ready:\n{tails}")
        time.sleep(0.2)  # polling the collector: it offers no ready event
    raise BenchmarkError(f"pipeline: the worker did not own its partitions within {READY_TIMEOUT_S:.0f} s")


def run(ctx: BenchContext) -> BenchResult:
    bootstrap = ctx.bootstrap()
    n = ctx.size(RECORDS)
    with step(ctx.log, f"pipeline: generating {n:,} records for the ceiling"):
        records, _ = workload.generate(ctx, n)
        messages = [(partition_key(r["record_id"], r).encode(), dumps(r)) for r in records]
    baseline = raw_ceiling(ctx, messages, PARTITIONS)
    ready: dict[str, float] = {}
    cpu = CpuWatch()
    with tempfile.TemporaryDirectory(prefix="popsync-bench-pipeline-") as tmp:
        path = Path(tmp) / "bench-pipeline.yaml"
        path.write_text(yaml.safe_dump(scenario(n), sort_keys=False), encoding="utf-8")
        options = RunOptions(
            bootstrap_servers=bootstrap,
            timeout_s=1800.0,
            on_running=lambda r: _wait_for_workers(r, ready, cpu),
        )
        with open(os.devnull, "w") as devnull, step(ctx.log, f"pipeline: simulate {n:,} records"):
            started = time.perf_counter()
            outcome = run_scenario(path, options, Console(file=devnull))
            wall_s = time.perf_counter() - started
    spent = cpu.stop()
    if outcome.problems:
        raise BenchmarkError("pipeline: the scenario's figures are wrong: " + "; ".join(outcome.problems))
    summary = outcome.summary
    lag = summary["sync_lag_ms"]
    cpu_notes = {f"cpu_s_per_1000_{name}": round(seconds * 1000 / n, 3) for name, seconds in spent.items()}
    return BenchResult(
        NAME,
        "simulate end to end vs raw Kafka path",
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
            **cpu_notes,
        },
    )
