"""In-process counters of one worker, for its progress snapshots (not the exact totals)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["WorkerStats"]


@dataclass
class WorkerStats:
    """What this worker decided since it started, and the sync lag of its last interval."""

    decided: Counter[str] = field(default_factory=Counter)
    _lags: list[int] = field(default_factory=list)

    def observe(self, outcome: str, lag_ms: int | None) -> None:
        self.decided[outcome] += 1
        if lag_ms is not None:
            self._lags.append(lag_ms)

    def drain_lag(self) -> dict[str, int]:
        """Percentiles of the lag seen since the previous call (empty when nothing was decided)."""
        lags, self._lags = sorted(self._lags), []
        if not lags:
            return {}

        def pick(q: float) -> int:
            return lags[min(len(lags) - 1, int(q * len(lags)))]

        return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "n": len(lags)}
