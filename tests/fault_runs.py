"""What the fault suites share (chaos, the Kafka cluster): one generated data set and its oracle, a scenario
over it, a run of it, the exactness check, and the search for processes a suite left behind.

Importable as `fault_runs`: `tests/conftest.py` puts this folder on `sys.path`.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from simulate_oracle import assert_matches_oracle, oracle, read_results

from connectors.generate import GenerateSpec, generate_records, write_records
from mocks.ndxp.population import generate_population, write_population
from popsync.broker.probe import process_alive
from popsync.simulate import Run, RunOptions, RunOutcome, run_scenario

__all__ = [
    "Data",
    "assert_exact",
    "assert_none_left",
    "await_true",
    "generated_data",
    "marked_environment",
    "processes",
    "run_file_scenario",
    "write_scenario",
]


@dataclass
class Data:
    """One population and one records file for every run, and what a fault-free run makes of them."""

    directory: Path
    expected: dict[str, tuple[str, list[str]]]
    rejected: int


def generated_data(
    directory: Path,
    *,
    people: int,
    population_seed: int,
    records: int,
    records_seed: int,
    defects: Mapping[str, Any],
) -> Data:
    """Tuyên Quang (008) insurance records over a generated population, written to `directory`, with the
    oracle's outcome of each; `defects` are the generator's `unsynced`/`corrected` blocks."""
    citizens = list(generate_population(population_seed, {"008": people}))
    write_population(directory / "population.jsonl", citizens)
    spec = GenerateSpec.model_validate({"records": records, **defects})
    in_008 = [c for c in citizens if c.permanent_province == "008"]
    generated = generate_records(spec, sector="insurance", province="008", citizens=in_008, seed=records_seed)
    write_records(directory / "records.jsonl", generated)
    expected, rejected = oracle(citizens, [directory / "records.jsonl"])
    assert len(expected) == records
    return Data(directory, expected, rejected)


def write_scenario(data: Data, tmp: Path, name: str, rate: float) -> Path:
    """A scenario in `tmp` publishing the data set's records file at `rate` records/s."""
    for file in ("population.jsonl", "records.jsonl"):
        (tmp / file).symlink_to(data.directory / file)
    path = tmp / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nseed: 3\npopulation:\n  file: population.jsonl\nsources:\n"
        f'  - {{sector: insurance, province: "008", file: records.jsonl, rate: {rate}}}\n',
        encoding="utf-8",
    )
    return path


def run_file_scenario(
    scenario: Path, tmp: Path, bootstrap: str | None, on_running: Callable[[Run], None], **options: Any
) -> tuple[RunOutcome, str]:
    """`run_scenario` writing its results to `tmp`; the outcome and what it printed."""
    terminal = io.StringIO()
    run_options = RunOptions(
        bootstrap_servers=bootstrap,
        results=tmp / "results.jsonl",
        workdir=tmp / "run",
        on_running=on_running,
        **{"timeout_s": 600, **options},
    )
    outcome = run_scenario(scenario, run_options, Console(file=terminal, width=200))
    return outcome, terminal.getvalue()


def assert_exact(outcome: RunOutcome, tmp: Path, data: Data) -> None:
    """Every record's outcome as the fault-free oracle has it: none lost, none doubled, none different;
    and the workers' own counts add up to the records, each counted once."""
    lines = read_results(tmp / "results.jsonl")
    keys = Counter(
        f"{r['sector']}|{r['province']}|{r['record_id']}" for r in lines if r["outcome"] != "rejected"
    )
    lost, doubled = len(set(data.expected) - set(keys)), sum(n - 1 for n in keys.values())
    assert (lost, doubled) == (0, 0), f"{lost} records lost, {doubled} doubled"
    assert_matches_oracle(outcome.summary, tmp / "results.jsonl", data.expected, data.rejected)
    assert outcome.problems == []
    assert sum(outcome.stream_counts.values()) == len(data.expected), outcome.stream_counts


def await_true(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until `condition()`; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout:.0f} s: {what}")
        time.sleep(0.05)


def marked_environment(variable: str) -> Iterator[str]:
    """For a module fixture: a fresh mark in `variable` of this process's environment (every process the
    module starts inherits it), the previous value restored after."""
    mark = uuid.uuid4().hex
    previous = os.environ.get(variable)
    os.environ[variable] = mark
    yield mark
    if previous is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = previous


def processes() -> dict[int, str]:
    """pid → command line of every process visible here."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
    return out


def assert_none_left(variable: str, mark: str, wait_s: float = 30.0) -> None:
    """No living process carries `variable=mark` in its environment (within `wait_s`: a killed parent's
    children take a moment to be signalled and reaped)."""

    def marked() -> list[str]:
        left = []
        for pid, cmd in processes().items():
            if pid == os.getpid() or not process_alive(pid):
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if f"{variable}={mark}".encode() in environ.split(b"\0"):
                left.append(f"{pid} {cmd[:120]}")
        return left

    deadline = time.monotonic() + wait_s
    while marked() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked() == []
