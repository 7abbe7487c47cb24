"""Run popsync's throughput benchmarks, each against a baseline measured in the same run; print a table.

    python benchmarks/run.py [--quick] [--only NAME ...] [--json out/bench.json] [--strict]

Every benchmark reports a candidate rate, a baseline rate on the same data, and their ratio against a
target ratio (see each `benchmarks/bench_*.py` docstring for why that target). The exit status is 0
whatever the verdicts, unless --strict, which exits 1 when a target is missed. Kafka benchmarks share
one broker from `popsync.kafka_local.kafka_broker()` (POPSYNC_BOOTSTRAP_SERVERS names a running one).
Progress goes to stderr; the table (and the --json file) is the result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/run.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from benchmarks import (
    bench_civil,
    bench_faust,
    bench_load,
    bench_names,
    bench_ndxp,
    bench_pipeline,
    bench_publish,
    bench_rules,
)
from benchmarks.harness import BenchContext, BenchResult

__all__ = ["BENCHMARKS", "main"]

Benchmark = Callable[[BenchContext], BenchResult]
# In run order: `pipeline` reuses the bare producer rate that `publish` measures.
BENCHMARKS: dict[str, Benchmark] = {
    bench_rules.NAME: bench_rules.run,
    bench_names.NAME: bench_names.run,
    bench_ndxp.NAME: bench_ndxp.run,
    bench_load.NAME: bench_load.run,
    bench_civil.NAME: bench_civil.run,
    bench_publish.NAME: bench_publish.run,
    bench_pipeline.NAME: bench_pipeline.run,
    # The floor: what faust costs per consumed message (the reason for envelopes and digests).
    **bench_faust.BENCHMARKS,
}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="every size divided by 5")
    parser.add_argument(
        "--only", action="append", choices=list(BENCHMARKS), metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a benchmark misses its target")
    return parser.parse_args(argv)


def _notes(result: BenchResult) -> str:
    return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in result.notes.items())


def results_table(results: Sequence[BenchResult], quick: bool) -> Table:
    """The results as a rich table, one row per benchmark (its notes are printed under the table)."""
    table = Table(title=f"popsync benchmarks{' (--quick)' if quick else ''}", title_justify="left")
    table.add_column("benchmark", no_wrap=True)
    table.add_column("what (candidate vs baseline)")
    for column in ("rate /s", "baseline /s", "ratio", "target"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for r in results:
        verdict = "[green]meets target[/]" if r.meets_target else "[red]misses target[/]"
        table.add_row(
            r.name,
            r.what,
            f"{r.candidate.per_s:,.0f}",
            f"{r.baseline.per_s:,.0f}",
            f"{r.ratio:.3f}",
            f"≥ {r.target:g}" + "".join(f", {k} ≥ {low:g}" for k, (_, low) in r.floors.items()),
            verdict,
        )
    return table


def _write_json(path: Path, results: Sequence[BenchResult], quick: bool, started: str) -> None:
    document = {
        "quick": quick,
        "started": started,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "results": [r.to_dict() for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks in order; returns the exit status."""
    args = _parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out, err = Console(), Console(stderr=True)
    if not out.is_terminal:  # rich would wrap a redirected table at 80 columns
        out = Console(width=120)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A fresh topic answers NotLeaderForPartition until its leaders are elected; the producer retries, and a
    # message it finally fails to deliver still fails the benchmark. The retry warnings are noise here.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    results: list[BenchResult] = []
    with contextlib.ExitStack() as stack:
        ctx = BenchContext(quick=args.quick, stack=stack, log=lambda m: err.print(f"[dim]{m}[/]"))
        for name in selected:
            results.append(BENCHMARKS[name](ctx))
    out.print(results_table(results, args.quick))
    for r in results:
        out.print(f"[bold]{r.name}[/]: {_notes(r)}", highlight=False)
    if args.json is not None:
        _write_json(args.json, results, args.quick, started)
        out.print(f"results written to {args.json}")
    missed = [r.name for r in results if not r.meets_target]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
