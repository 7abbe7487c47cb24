"""Consumer status judged the Burrow way, and seconds behind estimated the kafka-lag-exporter way (pure).

Burrow (linkedin/Burrow, `evaluator/caching.go`, v1.9) keeps, per group and partition, a ring of the last
`window` offset commits — each with its time and the lag when it was seen — and judges the ring. The rules,
first match wins:

1. no lag now (log-end offset ≤ last committed offset)                      → OK
2. no commit for longer than the window spans (`now - last > last - first`,
   and longer than `stop_after`), unless the log end was at the last committed
   offset in one of the recent end-offset samples (caught up a moment ago)   → STOP
3. an offset went backwards and the later commits never got back to it      → REWIND
4. lag was zero at some commit of the window                                → OK
5. fewer commits than the window holds (not enough history to judge)        → OK
6. every commit of the window has the same offset                           → STALL
7. the lag never decreased from one commit to the next                      → WARN
8. otherwise (the lag went down somewhere: the consumer is catching up)     → OK

Seconds behind: a table of (log-end offset, time) samples per partition; the time at which the log end
was at the consumer's committed offset is interpolated from it (extrapolated along the table's overall
trend outside it), and seconds behind is `now` minus that time; 0 when there is no lag.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

__all__ = [
    "SEVERITY",
    "EndOffsetTable",
    "Observation",
    "PartitionLag",
    "PartitionWindow",
    "Status",
    "evaluate",
    "group_statuses",
    "worst",
]


class Status(StrEnum):
    """A partition's (or a group's) status, Burrow's vocabulary."""

    OK = "OK"
    WARN = "WARN"
    STOP = "STOP"
    STALL = "STALL"
    REWIND = "REWIND"


# Burrow's own order of its status constants, least severe first; a group is its worst partition.
SEVERITY: tuple[Status, ...] = (Status.OK, Status.WARN, Status.STOP, Status.STALL, Status.REWIND)


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of `statuses`; OK when there are none."""
    return max(statuses, key=SEVERITY.index, default=Status.OK)


@dataclass(frozen=True, slots=True)
class Observation:
    """One commit as the monitor saw it: when, the committed offset, and the log-end offset at that time."""

    timestamp: float
    offset: int
    end: int

    @property
    def lag(self) -> int:
        """Messages behind at that time; 0 when the end offset was sampled before the commit."""
        return max(self.end - self.offset, 0)


def _stopped(commits: Sequence[Observation], now: float, stop_after: float) -> bool:
    first, last = commits[0].timestamp, commits[-1].timestamp
    return now - last > max(last - first, stop_after)


def _unrecovered_rewind(commits: Sequence[Observation]) -> bool:
    """An offset lower than the one before it, and no later commit back at (or past) the higher one."""
    offsets = [c.offset for c in commits]  # the window is a deque, which takes no slice
    for i in range(1, len(offsets)):
        before = offsets[i - 1]
        if offsets[i] < before and all(o < before for o in offsets[i:]):
            return True
    return False


def evaluate(
    commits: Sequence[Observation],
    *,
    end: int,
    now: float,
    recent_ends: Sequence[int] = (),
    window: int | None = None,
    stop_after: float = 0.0,
) -> Status:
    """A partition's status from its commit window (oldest first), its log-end offset now, and the time now.

    `recent_ends` are the last log-end offsets sampled (Burrow's broker-offset ring); `window` is the number
    of commits a full window holds (None: judge whatever is there); `stop_after` is the least silence that
    counts as STOP, so that a window of one or two commits does not stop after a single quiet instant.
    """
    if not commits:
        return Status.OK
    last = commits[-1]
    if end <= last.offset:
        return Status.OK
    if _stopped(commits, now, stop_after) and not any(e <= last.offset for e in recent_ends):
        return Status.STOP
    if _unrecovered_rewind(commits):
        return Status.REWIND
    if any(c.lag == 0 for c in commits):
        return Status.OK
    if window is not None and len(commits) < window:
        return Status.OK
    if all(c.offset == last.offset for c in commits):
        return Status.STALL
    if all(b.lag >= a.lag for a, b in pairwise(commits)):
        return Status.WARN
    return Status.OK


class EndOffsetTable:
    """(log-end offset, time) samples of one partition, to tell when the log end was at a given offset.

    Like kafka-lag-exporter's lookup table: a sample not newer than the last is ignored, a log end that went
    backwards (topic recreated) restarts the table, and an idle log end is kept as one flat segment — its
    first and last sample — so idle time neither fills the table nor bends the slopes around it.
    """

    def __init__(self, size: int = 120) -> None:
        if size < 2:
            raise ValueError(f"an end-offset table needs at least 2 samples, not {size}")
        self.points: deque[tuple[int, float]] = deque(maxlen=size)

    def add(self, end: int, timestamp: float) -> None:
        """Record that the log end was `end` at `timestamp`."""
        if self.points:
            last_end, last_time = self.points[-1]
            if timestamp <= last_time:
                return
            if end < last_end:
                self.points.clear()
            elif end == last_end and len(self.points) >= 2 and self.points[-2][0] == end:
                self.points[-1] = (end, timestamp)  # stretch the flat segment instead of adding to it
                return
        self.points.append((end, timestamp))

    def time_at(self, offset: int) -> float | None:
        """The latest time the log end was at `offset`; None with fewer than two samples to go by."""
        points = self.points
        if len(points) < 2:
            return None
        newest_end, newest_time = points[-1]
        if offset >= newest_end:
            return newest_time
        pts = list(points)
        # The last pair with left end <= offset < right end: on a flat segment, the latest time wins.
        for i in range(len(pts) - 2, -1, -1):
            (left_end, left_time), (right_end, right_time) = pts[i], pts[i + 1]
            if left_end <= offset < right_end:
                return left_time + (offset - left_end) * (right_time - left_time) / (right_end - left_end)
        # Older than the table: follow the table's overall trend back in time.
        oldest_end, oldest_time = pts[0]
        if newest_end == oldest_end:  # no trend to follow: "before the oldest sample" is all we know
            return oldest_time
        slope = (newest_time - oldest_time) / (newest_end - oldest_end)
        return oldest_time - (oldest_end - offset) * slope

    def seconds_behind(self, committed: int, now: float) -> float | None:
        """Seconds between `now` and when the log end was at `committed`: 0 without lag, None if unknown."""
        if self.points and committed >= self.points[-1][0]:
            return 0.0
        at = self.time_at(committed)
        return None if at is None else max(now - at, 0.0)


class PartitionWindow:
    """What is remembered of one group's partition: Burrow's commit ring and its recent end offsets.

    The committed offset is polled, not read from the commit log, so a poll counts as a commit when the
    offset moved since the last counted commit, or when `committing` says a live member of the group owns
    the partition (a live consumer commits periodically: faust about every second). A partition nobody owns
    whose offset does not move gets no commits, and its silence is what STOP measures.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a window holds at least 1 commit, not {size}")
        self.size = size
        self.commits: deque[Observation] = deque(maxlen=size)
        self.recent_ends: deque[int] = deque(maxlen=size)
        self.committed = 0
        self.end = 0

    def observe(self, timestamp: float, committed: int, end: int, *, committing: bool) -> None:
        """Record one poll: the group's committed offset and the partition's log-end offset."""
        self.committed, self.end = committed, end
        self.recent_ends.append(end)
        if committing or not self.commits or self.commits[-1].offset != committed:
            self.commits.append(Observation(timestamp, committed, end))

    def status(self, now: float, *, stop_after: float = 0.0) -> Status:
        """The partition's status now (see `evaluate`)."""
        return evaluate(
            self.commits,
            end=self.end,
            now=now,
            recent_ends=self.recent_ends,
            window=self.size,
            stop_after=stop_after,
        )


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of one consumer group as judged now; `seconds_behind` is None until estimable."""

    group: str
    topic: str
    partition: int
    committed: int
    end: int
    lag: int
    seconds_behind: float | None
    status: Status
    # Records at the lagging offsets, on popsync's record topics (an envelope counts its records); None
    # elsewhere, or while they are still being counted (`popsync.lag_records`).
    records: int | None = None


def group_statuses(partitions: Iterable[PartitionLag]) -> dict[str, Status]:
    """Each group's status: the worst of its partitions'."""
    by_group: dict[str, list[Status]] = {}
    for p in partitions:
        by_group.setdefault(p.group, []).append(p.status)
    return {group: worst(statuses) for group, statuses in by_group.items()}
