"""What every benchmark shares: its result (a rate against a same-run baseline), the run context, timing.

A benchmark measures a candidate and a baseline in the same run, on the same data, and is judged by the
ratio candidate rate ÷ baseline rate against its target. Ratios, unlike absolute rates, carry over from
one machine to another well enough to be worth a target; absolute rates are printed for the record only.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mocks.ndxp.population import generate_population
from schemas.citizen import Citizen

__all__ = ["BenchContext", "BenchResult", "BenchmarkError", "Rate", "step", "timed"]

T = TypeVar("T")
QUICK_FACTOR = 5  # --quick divides every size by this


class BenchmarkError(Exception):
    """A benchmark could not measure what it claims (a wrong answer, a service that did not start)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """`items` done in `seconds`: one side (candidate or baseline) of a benchmark."""

    what: str
    items: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class BenchResult:
    """A candidate rate, its baseline measured in the same run, and the ratio the target applies to."""

    name: str
    what: str  # one short line for the table: "candidate vs baseline"
    candidate: Rate
    baseline: Rate
    target: float  # the lowest acceptable candidate ÷ baseline ratio
    notes: Mapping[str, Any] = field(default_factory=dict)
    # Figures that must also hold, name → (measured, lowest acceptable): a quality a rate cannot show
    # (the name matcher's precision and recall).
    floors: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.candidate.per_s / self.baseline.per_s if self.baseline.per_s else 0.0

    @property
    def meets_target(self) -> bool:
        return self.ratio >= self.target and all(value >= low for value, low in self.floors.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, rates rounded to what the measurement can tell."""

        def side(rate: Rate) -> dict[str, Any]:
            return {
                "what": rate.what,
                "items": rate.items,
                "seconds": round(rate.seconds, 4),
                "per_s": round(rate.per_s, 1),
            }

        return {
            "name": self.name,
            "what": self.what,
            "candidate": side(self.candidate),
            "baseline": side(self.baseline),
            "ratio": round(self.ratio, 4),
            "target": self.target,
            "meets_target": self.meets_target,
            "notes": dict(self.notes),
            **(
                {"floors": {k: {"measured": v, "floor": f} for k, (v, f) in self.floors.items()}}
                if self.floors
                else {}
            ),
        }


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """`fn()`'s result and the seconds it took, by `time.perf_counter`."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


class BenchContext:
    """One run's shared parts: its size, the one Kafka broker (started on first use), cached data.

    `size(n)` is how benchmarks scale with --quick; `bootstrap()` starts the broker only when a selected
    benchmark needs one; `memo` keeps measurements a later benchmark reuses (the bare producer rate).
    """

    def __init__(self, *, quick: bool, stack: contextlib.ExitStack, log: Callable[[str], None]) -> None:
        self.quick = quick
        self.log = log
        self.memo: dict[str, Any] = {}
        self._stack = stack
        self._bootstrap: str | None = None
        self._population: dict[tuple[int, tuple[tuple[str, int], ...]], dict[str, list[Citizen]]] = {}

    def size(self, full: int) -> int:
        """`full` items, or a fifth of them under --quick."""
        return max(1, full // QUICK_FACTOR) if self.quick else full

    def bootstrap(self) -> str:
        """Bootstrap servers of the run's one broker (`kafka_broker()`: env, Docker, or local Java)."""
        if self._bootstrap is None:
            from popsync.kafka_local import kafka_broker

            self._bootstrap = self._stack.enter_context(kafka_broker(log=self.log))
        return self._bootstrap

    def population(self, seed: int, by_province: Mapping[str, int]) -> dict[str, list[Citizen]]:
        """Generated citizens grouped by permanent province; generated once per (seed, counts)."""
        key = (seed, tuple(sorted(by_province.items())))
        if key not in self._population:
            groups: dict[str, list[Citizen]] = defaultdict(list)
            for citizen in generate_population(seed, by_province):
                groups[citizen.permanent_province].append(citizen)
            self._population[key] = dict(groups)
        return self._population[key]


@contextlib.contextmanager
def step(log: Callable[[str], None], what: str) -> Iterator[None]:
    """Log what is being measured and how long it took (progress on stderr, not a result)."""
    started = time.perf_counter()
    log(f"{what} …")
    yield
    log(f"{what}: {time.perf_counter() - started:.1f} s")
