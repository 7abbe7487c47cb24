"""What the dashboard shows: `RunView` samples a results collector once a second into a JSON-able snapshot.

Reading is incremental. The collector's `results` dict only ever gains keys (a replayed result overwrites its
key in place), so the records decided since the last sample are the last `len(results) - seen` entries:
`reversed(results.items())` walks exactly those, and a sample costs O(new records), not O(757,543).
The headline figures (reconciled, synced) are the collector's own exact counters; the outcome breakdown and
the lag percentiles come from the new entries. The figures are turned into text by pure functions
(`source_view`, `build_snapshot`) with `popsync.report`, so the page shows what the report lines say.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from itertools import islice
from operator import attrgetter
from typing import Any, Protocol

from popsync.collector import RecordResult
from popsync.report import OUTCOME_LABELS, SECTOR_LABELS, report_line, vn_int, vn_percent
from popsync.summary import percentile
from schemas.outcomes import RECORD_OUTCOMES

__all__ = [
    "CollectorLike",
    "Figures",
    "LagMonitorLike",
    "RunView",
    "Sample",
    "build_snapshot",
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
_PARTITION_FIELDS = ("group", "topic", "partition", "committed", "end", "lag", "seconds_behind", "status")


class CollectorLike(Protocol):
    """What `RunView` reads of `popsync.collector.Collector` (a fake one in the unit tests)."""

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


def source_view(source: Source, figures: Figures) -> dict[str, Any]:
    """One (sector, province): figures, the seeds' texts and the shares for the progress bars.

    The seeds' denominator is every record of the source: the published total once known (so the
    percentage climbs to its final value), else the records reconciled so far.
    """
    sector, province = source
    reconciled = figures.reconciled.get(source, 0)
    synced = min(figures.synced.get(source, 0), reconciled)
    unsynced = reconciled - synced
    published = figures.published.get(source)
    total = reconciled if published is None else max(published, reconciled)
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
        "done": published is not None and pending == 0,
        "texts": {
            "published": "—" if published is None else vn_int(published),
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
) -> dict[str, Any]:
    """The whole page's data as plain JSON types."""
    views = [source_view(s, figures) for s in sources]
    reconciled = sum(v["reconciled"] for v in views)
    synced = sum(v["synced"] for v in views)
    known = bool(views) and all(v["pending"] is not None for v in views)
    pending = sum(v["pending"] for v in views) if known else None
    published = None if pending is None else sum(v["published"] for v in views)
    recent = _rates(samples)
    if reconciled == 0 and figures.rejected == 0:
        status = "waiting"
    elif pending == 0:
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


class RunView:
    """The live state of one run, sampled from `collector` every `interval_s` by a background thread.

    `totals` returns the published count of each (sector, province) once known (an empty mapping before);
    `lag_monitor` is any object with `snapshot()` (`popsync.lagwatch.LagMonitor`), or None; `sources` lists
    the sources to show before their first result arrives. `snapshot()` is safe from any thread.
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
        self._sources: dict[Source, None] = dict.fromkeys(sources)  # an ordered set
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
        with c.lock:  # copies only: the collector's reader waits on this lock
            size = len(c.results)
            fresh = max(size - self._seen, 0)
            # Keys and values as two lists of references: no tuple per entry, so copying 20,000 entries
            # stays around a millisecond (a list of item tuples takes 100 times longer, mostly in the GC).
            keys = list(islice(reversed(c.results), fresh))
            results = list(islice(reversed(c.results.values()), fresh))
            reconciled = dict(c.per_source)
            synced = dict(c.synced_per_source)
            rejected = len(c.rejected)
        self._seen = max(self._seen, size)
        pairs = zip(map(_source_of, keys), map(_outcome, results), strict=True)
        for (source, outcome), n in Counter(pairs).items():
            self._outcomes.setdefault(source, Counter())[outcome] += n
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
        )
        snapshot = self._build(figures, consumers, consumer_error)
        with self._state_lock:
            self._snapshot = snapshot

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
        self, figures: Figures, consumers: list[dict[str, Any]] | None, consumer_error: str | None
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
        )
