"""What the dashboard shows: `RunView` samples a results collector once a second into a JSON-able snapshot.

Reading is incremental. The collector's `results` dict only ever gains keys (a replayed result overwrites its
key in place), so the records decided since the last sample are the last `len(results) - seen` entries:
`reversed(results.items())` walks exactly those, and a sample costs O(new records), not O(757,543).
The headline figures (reconciled, synced) are the collector's own exact counters; the outcome breakdown and
the lag percentiles come from the new entries. The figures are turned into text by pure functions
(`source_view`, `chain_view`, `cleansing_view`, `build_snapshot`) with `popsync.report`, so the page shows
what the report lines say.

Two things change in place and are followed without walking everything:

- A corrected re-publication (the cleansing loop) overwrites its record's key with a later version. Only
  a record whose outcome is of a kind fixable by re-publishing (`connectors.cleansing.FIXABLE`:
  `unsynced/missing_fields`, `unsynced/mismatch`) can get one, so the view keeps those it has counted (a
  "watch list": keys and result objects) and each sample looks them up again by key and compares the
  objects by identity (C-level `map`s, no Python loop). A changed one moves its outcome count and adds its
  re-publication (and its fix, unsynced → synced) to the cleansing figures; one no longer fixable leaves
  the list. Cost: O(watched records) under the collector's lock, 5 to 15 ms per 50,000 of them.
- A linked-procedure chain's state (the collector's `chains`) is replaced by a new dict at every step;
  chain IDs only ever join the dict, so a state's position is stable. Each sample copies the states (a
  list of references) and compares them by identity with the last sample's; only the changed ones move
  the counts per province and kind. Cost: O(chains), a few ms per 100,000.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from itertools import compress, islice, repeat
from operator import attrgetter, is_not, ne, or_
from typing import Any, Protocol

from connectors.cleansing import FIXABLE
from popsync.collector import RecordResult
from popsync.report import (
    OUTCOME_LABELS,
    SECTOR_LABELS,
    chain_report_line,
    cleansing_report_line,
    report_line,
    seconds,
    vn_int,
    vn_percent,
)
from popsync.report_md import VI
from popsync.summary import percentile, spread_s
from schemas.outcomes import RECORD_OUTCOMES, is_synced
from streams.chain_steps import duration_ms

__all__ = [
    "CHAIN_NAMES",
    "CollectorLike",
    "Figures",
    "LagMonitorLike",
    "RunView",
    "Sample",
    "build_snapshot",
    "chain_view",
    "cleansing_view",
    "source_view",
]

log = logging.getLogger(__name__)

Source = tuple[str, str]  # (sector, province)

# Lag percentiles of one interval are taken from at most this many of its records (evenly spread).
MAX_LAG_SAMPLE = 20_000
# "Recent" rates and lags on the page cover this many samples.
RECENT_SAMPLES = 10
# Consumer statuses, least severe first (Burrow's order, as popsync.lag.SEVERITY); the page colours them.
CONSUMER_STATUSES = ("OK", "WARN", "STOP", "STALL", "REWIND")
_PARTITION_FIELDS = (
    "group",
    "topic",
    "partition",
    "committed",
    "end",
    "lag",
    "records",
    "seconds_behind",
    "status",
)
# The seeds' names of the two groups of linked procedures ("DVC liên thông"), as the Markdown report has them.
CHAIN_NAMES: Mapping[str, str] = VI.chain_names
CHAIN_STATUSES = ("completed", "stalled", "in_progress")
UNSYNCED = "unsynced/"
# The outcomes a re-publication can supersede: a correction task of one of these kinds can be fixed.
_REPUBLISHABLE = frozenset(f"{UNSYNCED}{kind}" for kind in FIXABLE)


class CollectorLike(Protocol):
    """What `RunView` reads of `popsync.collector.Collector` (a fake one in the unit tests).

    Also read when present: `chains` (chain ID → state, `streams.chain_steps`) and `chains_due` (synced
    births and deaths, each starts a chain); a collector without them has no linked procedures.
    """

    @property
    def lock(self) -> AbstractContextManager[Any]: ...
    @property
    def results(self) -> dict[str, RecordResult]: ...
    @property
    def per_source(self) -> Mapping[Source, int]: ...
    @property
    def synced_per_source(self) -> Mapping[Source, int]: ...
    @property
    def rejected(self) -> Sized: ...


class LagMonitorLike(Protocol):
    """Anything with `snapshot()` returning `popsync.lagwatch.PartitionLag`-like rows."""

    def snapshot(self) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class Sample:
    """One second of the run: how many records were decided, how fast, how late."""

    t: float  # seconds since the view started
    ts_ms: int  # wall clock, for the page's time labels
    decided: int
    records_per_s: float
    lag_p50_ms: int | None  # None when nothing was decided in the interval
    lag_p95_ms: int | None
    consumer_lag: int | None  # summed over every partition the lag monitor reports; None without one


@dataclass(frozen=True)
class Figures:
    """The counts of a run at one moment, as the collector and the publisher know them."""

    reconciled: Mapping[Source, int] = field(default_factory=dict)
    synced: Mapping[Source, int] = field(default_factory=dict)
    outcomes: Mapping[Source, Mapping[str, int]] = field(default_factory=dict)
    published: Mapping[Source, int] = field(default_factory=dict)  # only the sources whose total is known
    rejected: int = 0
    made: Mapping[Source, int] = field(default_factory=dict)  # records a chain made (a child's card)


def _vn_seconds(value: float) -> str:
    return f"{seconds(value)} giây"


def source_view(source: Source, figures: Figures) -> dict[str, Any]:
    """One (sector, province): figures, the seeds' texts and the shares for the progress bars.

    The seeds' denominator is every record of the source: the published total once known (so the
    percentage climbs to its final value) plus the records chains made so far, else the records
    reconciled so far. A source of records chains made (children's cards) whose total nobody published
    is `open`: its total is not known in advance, so the page shows its counts without a progress bar.
    """
    sector, province = source
    reconciled = figures.reconciled.get(source, 0)
    synced = min(figures.synced.get(source, 0), reconciled)
    unsynced = reconciled - synced
    made = min(figures.made.get(source, 0), reconciled)
    published = figures.published.get(source)
    open_total = published is None and made > 0
    total = reconciled if published is None else max(published + made, reconciled)
    pending = None if published is None else total - reconciled
    counts = figures.outcomes.get(source, {})
    line = {"sector": sector, "province": province, "total": total, "synced": synced, "unsynced": unsynced}
    label = SECTOR_LABELS.get(sector, sector)
    return {
        "id": f"{sector}-{province}",
        "sector": sector,
        "province": province,
        "sector_label": label,
        "label": f"{label} ({province})",
        "published": published,
        "total": total,
        "reconciled": reconciled,
        "synced": synced,
        "unsynced": unsynced,
        "pending": pending,
        "made": made,
        "open": open_total,
        "done": published is not None and pending == 0,
        "texts": {
            "published": "—" if published is None else vn_int(published),
            "made": vn_int(made),
            "total": vn_int(total),
            "reconciled": vn_int(reconciled),
            "synced": vn_int(synced),
            "unsynced": vn_int(unsynced),
            "pending": "—" if pending is None else vn_int(pending),
            "ratio": f"{vn_int(synced)}/{vn_int(total)}",
            "percent": vn_percent(synced, total),
            "unsynced_percent": vn_percent(unsynced, total),
            "progress_percent": vn_percent(reconciled, total),
            "report_line": report_line(line),
        },
        "shares": {
            "synced": synced / total if total else 0.0,
            "unsynced": unsynced / total if total else 0.0,
            "reconciled": reconciled / total if total else 0.0,
        },
        "outcomes": [
            {
                "outcome": o.value,
                "label": OUTCOME_LABELS[o.value],
                "count": counts.get(o.value, 0),
                "count_text": vn_int(counts.get(o.value, 0)),
                "share_text": vn_percent(counts.get(o.value, 0), reconciled),
                "share": counts.get(o.value, 0) / reconciled if reconciled else 0.0,
            }
            for o in RECORD_OUTCOMES
        ],
    }


def chain_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One (province, kind) of linked procedures, an entry shaped as `popsync.summary.chain_entries` makes.

    Adds the seeds' group name, the texts and the shares of the progress bar (of the chains started).
    """
    province, kind = str(entry["province"]), str(entry["kind"])
    started, completed = int(entry["started"]), int(entry["completed"])
    stalled, in_progress = int(entry["stalled"]), int(entry["in_progress"])
    times = entry.get("duration_s") or {}
    finished = completed > 0
    return {
        "id": f"{province}-{kind}",
        "province": province,
        "kind": kind,
        "name": CHAIN_NAMES.get(kind, kind),
        "started": started,
        "completed": completed,
        "stalled": stalled,
        "in_progress": in_progress,
        "duration_s": dict(times),
        "texts": {
            "started": vn_int(started),
            "completed": vn_int(completed),
            "stalled": vn_int(stalled),
            "in_progress": vn_int(in_progress),
            "ratio": f"{vn_int(completed)}/{vn_int(started)}",
            "percent": vn_percent(completed, started),
            "median": _vn_seconds(float(times.get("p50", 0))) if finished else "—",
            "p95": _vn_seconds(float(times.get("p95", 0))) if finished else "—",
            "max": _vn_seconds(float(times.get("max", 0))) if finished else "—",
            "report_line": chain_report_line(entry),
        },
        "shares": {name: int(entry[name]) / started if started else 0.0 for name in CHAIN_STATUSES},
    }


def cleansing_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One source's cleansing loop, an entry shaped as `build_summary`'s `cleansing` list (times aside).

    `tasks`: records whose first outcome was unsynced (each got a correction task); `republished`: records
    re-published with a later version; `fixed`: of those, the ones moved from unsynced to synced. The
    kinds listed are those with a fix.
    """
    sector, province = str(entry["sector"]), str(entry["province"])
    tasks, fixed, republished = int(entry["tasks"]), int(entry["fixed"]), int(entry["republished"])
    by_task = entry.get("tasks_by_outcome", {})
    label = SECTOR_LABELS.get(sector, sector)
    return {
        "id": f"{sector}-{province}",
        "sector": sector,
        "province": province,
        "sector_label": label,
        "label": f"{label} ({province})",
        "tasks": tasks,
        "republished": republished,
        "fixed": fixed,
        "tasks_by_outcome": dict(by_task),
        "fixed_by_outcome": dict(entry.get("fixed_by_outcome", {})),
        "texts": {
            "tasks": vn_int(tasks),
            "republished": vn_int(republished),
            "fixed": vn_int(fixed),
            "ratio": f"{vn_int(fixed)}/{vn_int(tasks)}",
            "percent": vn_percent(fixed, tasks),
            "report_line": cleansing_report_line(entry),
        },
        "shares": {
            "fixed": fixed / tasks if tasks else 0.0,
            "republished": republished / tasks if tasks else 0.0,
        },
        "kinds": [
            {
                "outcome": outcome,
                "label": OUTCOME_LABELS.get(outcome, outcome),
                "fixed": int(n),
                "tasks": int(by_task.get(outcome, 0)),
                "fixed_text": vn_int(int(n)),
                "tasks_text": vn_int(int(by_task.get(outcome, 0))),
                "percent": vn_percent(int(n), int(by_task.get(outcome, 0))),
            }
            for outcome, n in sorted(entry.get("fixed_by_outcome", {}).items())
            if n > 0
        ],
    }


def _rates(samples: Sequence[Sample]) -> dict[str, Any]:
    """Throughput over the last few samples and over the active part of the history; the latest lags."""
    if not samples:
        return {"records_per_s": 0.0, "avg_records_per_s": 0.0, "lag_p50_ms": None, "lag_p95_ms": None}
    recent = list(samples)[-RECENT_SAMPLES:]
    before = samples[-RECENT_SAMPLES - 1].t if len(samples) > RECENT_SAMPLES else 0.0  # 0: the view's start
    span = recent[-1].t - before
    # The average runs from the sample before the first record to the last sample that had one, so
    # waiting before the run and idling after it do not dilute it.
    active = [i for i, s in enumerate(samples) if s.decided]
    avg = 0.0
    if active:
        start = samples[active[0] - 1].t if active[0] > 0 else 0.0
        active_span = samples[active[-1]].t - start
        avg = sum(s.decided for s in samples) / active_span if active_span > 0 else 0.0
    last = next((s for s in reversed(samples) if s.lag_p50_ms is not None), None)
    return {
        "records_per_s": sum(s.decided for s in recent) / span if span > 0 else 0.0,
        "avg_records_per_s": avg,
        "lag_p50_ms": last.lag_p50_ms if last else None,
        "lag_p95_ms": last.lag_p95_ms if last else None,
    }


def build_snapshot(
    sources: Iterable[Source],
    figures: Figures,
    samples: Sequence[Sample],
    consumers: Sequence[Mapping[str, Any]] | None,
    *,
    consumer_error: str | None = None,
    collector_error: str | None = None,
    elapsed_s: float = 0.0,
    interval_s: float = 1.0,
    history_s: float = 600.0,
    chains: Sequence[Mapping[str, Any]] = (),
    chains_due: int = 0,
    chains_begun: int | None = None,
    cleansing: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The whole page's data as plain JSON types.

    `chains` are `chain_entries`-shaped entries, `cleansing` the summary's `cleansing` entries (times
    aside); `chains_due` counts the synced births and deaths (each starts a chain) and `chains_begun` the
    chains that have started (their registration step is in; None: every chain known). The run is done
    once every published record has an outcome and every due chain has started and ended. `published`
    (the run's) counts the records to reconcile: those published plus those chains made so far.
    """
    views = [source_view(s, figures) for s in sources]
    reconciled = sum(v["reconciled"] for v in views)
    synced = sum(v["synced"] for v in views)
    closed = [v for v in views if not v["open"]]
    known = bool(closed) and all(v["pending"] is not None for v in closed)
    pending = sum(v["pending"] for v in closed) if known else None
    published = None if pending is None else sum(v["total"] for v in views)
    recent = _rates(samples)
    chain_views = [chain_view(e) for e in chains]
    in_progress = sum(c["in_progress"] for c in chain_views)
    begun = sum(c["started"] for c in chain_views) if chains_begun is None else chains_begun
    chains_settled = in_progress == 0 and begun >= chains_due
    if reconciled == 0 and figures.rejected == 0:
        status = "waiting"
    elif pending == 0 and chains_settled:
        status = "done"
    elif len(samples) >= RECENT_SAMPLES and recent["records_per_s"] == 0:
        status = "idle"
    else:
        status = "running"
    status_counts = Counter(str(row.get("status")) for row in consumers or ())
    return {
        "status": status,
        "elapsed_s": round(elapsed_s, 1),
        "interval_s": interval_s,
        "history_s": history_s,
        "generated_at_ms": int(time.time() * 1000),
        "sources": views,
        "run": {
            "published": published,
            "reconciled": reconciled,
            "synced": synced,
            "unsynced": reconciled - synced,
            "pending": pending,
            "rejected": figures.rejected,
            "records_per_s": round(recent["records_per_s"], 1),
            "avg_records_per_s": round(recent["avg_records_per_s"], 1),
            "lag_p50_ms": recent["lag_p50_ms"],
            "lag_p95_ms": recent["lag_p95_ms"],
            "texts": {
                "published": "—" if published is None else vn_int(published),
                "reconciled": vn_int(reconciled),
                "synced": vn_int(synced),
                "unsynced": vn_int(reconciled - synced),
                "pending": "—" if pending is None else vn_int(pending),
                "rejected": vn_int(figures.rejected),
                "percent": vn_percent(synced, reconciled if published is None else published),
                "records_per_s": vn_int(round(recent["records_per_s"])),
                "avg_records_per_s": vn_int(round(recent["avg_records_per_s"])),
            },
        },
        "chains": chain_views,
        "chains_run": {
            "due": chains_due,
            "begun": begun,
            "in_progress": in_progress,
            "not_begun": max(chains_due - begun, 0),
            "settled": chains_settled,
        },
        "cleansing": [cleansing_view(e) for e in cleansing],
        "history": [asdict(s) for s in samples],
        "consumers": {
            "available": consumers is not None,
            "error": consumer_error,
            "partitions": list(consumers or ()),
            "counts": {s: status_counts.get(s, 0) for s in CONSUMER_STATUSES},
        },
        "collector_error": collector_error,
    }


def _partition_row(row: Any) -> dict[str, Any]:
    """A `PartitionLag` (dataclass, named tuple or mapping) as plain JSON types."""
    if isinstance(row, Mapping):
        out = {name: row.get(name) for name in _PARTITION_FIELDS}
    else:
        out = {name: getattr(row, name, None) for name in _PARTITION_FIELDS}
    status = out["status"]
    out["status"] = str(getattr(status, "value", status) or "")
    if isinstance(out["seconds_behind"], float):
        out["seconds_behind"] = round(out["seconds_behind"], 1)
    return out


_outcome = attrgetter("outcome")
_lag_ms = attrgetter("lag_ms")
_version = attrgetter("version")
_chain = attrgetter("chain")


def _source_of(key: str) -> Source:
    """`insurance|008|R-1` → `("insurance", "008")`."""
    sector, _, rest = key.partition("|")
    return sector, rest.partition("|")[0]


def _lag_percentiles(lags: list[int]) -> tuple[int | None, int | None]:
    if not lags:
        return None, None
    if len(lags) > MAX_LAG_SAMPLE:
        lags = lags[:: -(-len(lags) // MAX_LAG_SAMPLE)]
    lags.sort()
    return percentile(lags, 0.50), percentile(lags, 0.95)


def _first_outcome(result: RecordResult) -> str | None:
    """The outcome of a record's first version, as `build_summary` reads it."""
    return result.first_outcome if result.version > 1 else result.outcome


class _Cleansing:
    """The cleansing figures per source, kept incrementally as records are counted and superseded."""

    def __init__(self) -> None:
        self.tasks: dict[Source, Counter[str]] = {}  # unsynced first outcomes
        self.republished: Counter[Source] = Counter()
        self.fixed: dict[Source, Counter[str]] = {}  # by first outcome

    def first_seen(self, source: Source, result: RecordResult) -> None:
        first = _first_outcome(result)
        if first is not None and first.startswith(UNSYNCED):
            self.tasks.setdefault(source, Counter())[first] += 1
        self.count(source, result, 1)

    def count(self, source: Source, result: RecordResult, sign: int) -> None:
        """Add (`sign` 1) or take away (-1) what one record's result says of re-publication and fixing."""
        if result.version <= 1:
            return
        self.republished[source] += sign
        first = result.first_outcome
        if first is not None and first.startswith(UNSYNCED) and is_synced(result.outcome):
            self.fixed.setdefault(source, Counter())[first] += sign

    def entries(self, planned: Iterable[Source]) -> list[dict[str, Any]]:
        """`build_summary`'s `cleansing` entries (times aside) of the sources with a plan and tasks, and
        of every source with a re-published record."""
        shown = {s for s in planned if sum(self.tasks.get(s, Counter()).values())}
        shown |= {s for s, n in self.republished.items() if n > 0}
        out = []
        for source in sorted(shown):
            tasks = {k: n for k, n in sorted(self.tasks.get(source, Counter()).items()) if n}
            fixed = {k: n for k, n in sorted(self.fixed.get(source, Counter()).items()) if n}
            out.append(
                {
                    "sector": source[0],
                    "province": source[1],
                    "tasks": sum(tasks.values()),
                    "tasks_by_outcome": tasks,
                    "republished": self.republished[source],
                    "fixed": sum(fixed.values()),
                    "fixed_by_outcome": fixed,
                }
            )
        return out


class _Chains:
    """`chain_entries` of the collector's chains, kept incrementally: only the states that changed count.

    The collector replaces a chain's state dict at each step and only ever adds chain IDs, so a state's
    position in `chains.values()` is stable and an unchanged chain is the very same object.
    """

    def __init__(self) -> None:
        self.states: list[Mapping[str, Any]] = []  # as last seen, by position
        self.counts: dict[tuple[str, str], Counter[str]] = {}  # statuses, and "begun" (registered)
        self.took: dict[tuple[str, str], dict[int, int]] = {}  # position -> ms, of completed chains
        self.times: dict[tuple[str, str], dict[str, float]] = {}
        self.dirty: set[tuple[str, str]] = set()

    def update(self, states: list[Mapping[str, Any]]) -> None:
        """Count what changed since the last call; `states` is `list(collector.chains.values())`."""
        old = self.states
        if len(states) < len(old):  # chains never leave the collector: a new one, count from nothing
            self.counts, self.took, self.times, self.dirty = {}, {}, {}, set()
            old = []
        for i in compress(range(len(old)), map(is_not, states, old)):
            self._count(i, old[i], -1)
            self._count(i, states[i], 1)
        for i in range(len(old), len(states)):
            self._count(i, states[i], 1)
        self.states = states

    def _count(self, i: int, state: Mapping[str, Any], sign: int) -> None:
        where = (str(state["province"]), str(state["kind"]))
        counts = self.counts.setdefault(where, Counter())
        counts[str(state["status"])] += sign
        counts["begun"] += sign * ("registered" in state.get("steps", ()))
        took_ms = duration_ms(state)
        if took_ms is not None and state["status"] == "completed":
            took = self.took.setdefault(where, {})
            if sign > 0:
                took[i] = took_ms
            else:
                took.pop(i, None)
            self.dirty.add(where)

    @property
    def begun(self) -> int:
        return sum(c["begun"] for c in self.counts.values())

    def entries(self) -> list[dict[str, Any]]:
        """As `popsync.summary.chain_entries` makes them from the same states."""
        for where in self.dirty:
            self.times[where] = spread_s(sorted(self.took.get(where, {}).values()))
        self.dirty.clear()
        out = []
        for (province, kind), c in sorted(self.counts.items()):
            started = sum(n for name, n in c.items() if name != "begun")
            if started <= 0:
                continue
            out.append(
                {
                    "province": province,
                    "kind": kind,
                    "started": started,
                    "completed": c["completed"],
                    "stalled": c["stalled"],
                    "in_progress": c["in_progress"],
                    "duration_s": dict(
                        self.times.get((province, kind), {"p50": 0.0, "p95": 0.0, "max": 0.0})
                    ),
                }
            )
        return out


class RunView:
    """The live state of one run, sampled from `collector` every `interval_s` by a background thread.

    `totals` returns the published count of each (sector, province) once known (an empty mapping before);
    `lag_monitor` is any object with `snapshot()` (`popsync.lagwatch.LagMonitor`), or None; `sources` lists
    the sources to show before their first result arrives; `cleansing` the sources with a cleansing plan
    (their panel shows once they have tasks; any other source's once it has a re-published record).
    `snapshot()` is safe from any thread.
    """

    def __init__(
        self,
        collector: CollectorLike,
        *,
        totals: Callable[[], Mapping[Source, int]] | None = None,
        lag_monitor: LagMonitorLike | None = None,
        history_s: float = 600,
        interval_s: float = 1.0,
        sources: Iterable[Source] = (),
        cleansing: Iterable[Source] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collector = collector
        self.totals = totals
        self.lag_monitor = lag_monitor
        self.history_s = history_s
        self.interval_s = interval_s
        self._clock = clock
        self._started = self._last = clock()
        self._samples: deque[Sample] = deque(maxlen=max(1, round(history_s / interval_s)))
        self._seen = 0  # results entries already counted
        self._outcomes: dict[Source, Counter[str]] = {}
        self._made: Counter[Source] = Counter()  # records chains made
        self._sources: dict[Source, None] = dict.fromkeys(sources)  # an ordered set
        self._planned = tuple(dict.fromkeys(cleansing))
        # The counted records a re-publication may still supersede, as aligned lists.
        self._watch_keys: list[str] = []
        self._watch_results: list[RecordResult] = []
        self._cleansing = _Cleansing()
        self._chains = _Chains()
        self._sample_lock = threading.Lock()  # one sample at a time: the thread, or a caller of sample()
        self._state_lock = threading.Lock()  # guards _snapshot between the sampler and the server
        self._snapshot = self._build(Figures(), None, None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RunView:
        """Sample now, then every `interval_s` in a daemon thread (a second call does nothing)."""
        if self._thread is None:
            self._stop.clear()
            self.sample()
            self._thread = threading.Thread(target=self._run, name="popsync-dashboard-view", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a bad sample must not end the page's updates
                log.exception("dashboard: sampling the run failed")

    def snapshot(self) -> dict[str, Any]:
        """The latest sample's JSON-able state (shared: do not modify it)."""
        with self._state_lock:
            return self._snapshot

    def sample(self) -> None:
        """Read what was decided since the last sample and rebuild the snapshot."""
        with self._sample_lock:
            self._sample()

    def _sample(self) -> None:
        now = self._clock()
        c = self.collector
        chains = getattr(c, "chains", None)
        with c.lock:  # copies and lookups only: the collector's reader waits on this lock
            size = len(c.results)
            fresh = max(size - self._seen, 0)
            # Keys and values as two lists of references: no tuple per entry, so copying 20,000 entries
            # stays around a millisecond (a list of item tuples takes 100 times longer, mostly in the GC).
            keys = list(islice(reversed(c.results), fresh))
            results = list(islice(reversed(c.results.values()), fresh))
            watched = list(map(c.results.__getitem__, self._watch_keys))
            reconciled = dict(c.per_source)
            synced = dict(c.synced_per_source)
            rejected = len(c.rejected)
            chain_states = list(chains.values()) if chains else []
            chains_due = int(getattr(c, "chains_due", 0))
        self._seen = max(self._seen, size)
        self._superseded(watched)
        self._count_new(keys, results)
        self._chains.update(chain_states)
        lags = list(map(_lag_ms, results))
        published = dict(self.totals() if self.totals is not None else {})
        for source in sorted({*reconciled, *published} - self._sources.keys()):
            self._sources[source] = None
        consumers, consumer_error = self._consumers()
        p50, p95 = _lag_percentiles(lags)
        dt = now - self._last
        self._last = now
        self._samples.append(
            Sample(
                t=round(now - self._started, 3),
                ts_ms=int(time.time() * 1000),
                decided=fresh,
                records_per_s=round(fresh / dt, 1) if dt > 0 else 0.0,
                lag_p50_ms=p50,
                lag_p95_ms=p95,
                consumer_lag=None if consumers is None else sum(int(r["lag"] or 0) for r in consumers),
            )
        )
        figures = Figures(
            reconciled=reconciled,
            synced=synced,
            outcomes={s: dict(c) for s, c in self._outcomes.items()},
            published=published,
            rejected=rejected,
            made=dict(self._made),
        )
        snapshot = self._build(figures, consumers, consumer_error, chains_due=chains_due)
        with self._state_lock:
            self._snapshot = snapshot

    def _count_new(self, keys: list[str], results: list[RecordResult]) -> None:
        """Count the records decided since the last sample; watch the ones a re-publication may supersede."""
        sources = list(map(_source_of, keys))
        outcomes = list(map(_outcome, results))
        for (source, outcome), n in Counter(zip(sources, outcomes, strict=True)).items():
            self._outcomes.setdefault(source, Counter())[outcome] += n
        self._made.update(compress(sources, map(_chain, results)))
        # Unsynced or re-published: the few that matter to the cleansing figures.
        unsynced = map(str.startswith, outcomes, repeat(UNSYNCED))
        later = map(ne, map(_version, results), repeat(1))
        for i in compress(range(len(keys)), map(or_, unsynced, later)):
            result = results[i]
            self._cleansing.first_seen(sources[i], result)
            if result.outcome in _REPUBLISHABLE:
                self._watch_keys.append(keys[i])
                self._watch_results.append(result)

    def _superseded(self, watched: list[RecordResult]) -> None:
        """Move the counts of the watched records a later result replaced (a re-publication)."""
        old = self._watch_results
        changed = list(compress(range(len(watched)), map(is_not, watched, old)))
        if not changed:
            return
        for i in changed:
            before, after = old[i], watched[i]
            source = _source_of(self._watch_keys[i])
            counts = self._outcomes.setdefault(source, Counter())
            counts[before.outcome] -= 1
            counts[after.outcome] += 1
            self._cleansing.count(source, before, -1)
            self._cleansing.count(source, after, 1)
            old[i] = after
        # A record synced, or unsynced in a way no re-publication fixes, gets no later version.
        keep = [i for i in changed if old[i].outcome in _REPUBLISHABLE]
        if len(keep) < len(changed):
            done = set(changed) - set(keep)
            self._watch_keys = [k for i, k in enumerate(self._watch_keys) if i not in done]
            self._watch_results = [r for i, r in enumerate(old) if i not in done]

    def _consumers(self) -> tuple[list[dict[str, Any]] | None, str | None]:
        if self.lag_monitor is None:
            return None, None
        try:
            rows = [_partition_row(r) for r in self.lag_monitor.snapshot()]
        except Exception as exc:  # shown on the page; the figures go on updating
            return [], f"{type(exc).__name__}: {exc}"
        rows.sort(key=lambda r: (str(r["group"]), str(r["topic"]), r["partition"] or 0))
        # LagMonitor keeps its last good snapshot when a poll fails, and says why in `last_error`.
        error = getattr(self.lag_monitor, "last_error", None)
        return rows, None if error is None else str(error)

    def _build(
        self,
        figures: Figures,
        consumers: list[dict[str, Any]] | None,
        consumer_error: str | None,
        *,
        chains_due: int = 0,
    ) -> dict[str, Any]:
        error = getattr(self.collector, "error", None)
        return build_snapshot(
            list(self._sources),
            figures,
            self._samples,
            consumers,
            consumer_error=consumer_error,
            collector_error=None if error is None else repr(error),
            elapsed_s=self._clock() - self._started,
            interval_s=self.interval_s,
            history_s=self.history_s,
            chains=self._chains.entries(),
            chains_due=chains_due,
            chains_begun=self._chains.begun,
            cleansing=self._cleansing.entries(self._planned),
        )
