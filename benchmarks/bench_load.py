"""`npd-load`: `PopulationDB.load` (the mock NPD's bulk load) against a plain one-transaction insert.

Both sides insert the same generated citizens, as the same rows, into the same schema in a fresh SQLite
file (WAL), in one transaction. The baseline is what one writes first: one `executemany` of the rows as
they come, with SQLite's default settings. The candidate is the NPD's `load`: rows sorted by personal ID
within each chunk of 10,000, `synchronous=OFF` and a page cache that may grow to 1 GiB for the load. The
ratio is citizens/s loaded ÷ citizens/s inserted plainly.

Target: ratio ≥ 1.1 at full size (800,000 citizens, a province's population). Random personal IDs land
all over the primary-key tree; once that tree outgrows SQLite's default 2 MB page cache, the plain
version's inserts read pages back (from the OS cache at best), while the tuned load keeps the tree in
memory and walks it in order. Measured on the 2-core development machine at 800,000 citizens: 1.15–1.50
over five runs (1.25 at 400,000), plain insert 14.9–17.3 s against 11.5–13.0 s. The gain is modest
because converting citizens to rows costs the same on both sides; below 1.1 the load has lost what its
settings are for. Under --quick (160,000 citizens) the tree nearly fits in memory on both sides and the
ratio is near 1: a quick run's verdict says little for this benchmark.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step, timed
from mocks.ndxp import db as npd
from schemas.citizen import Citizen

__all__ = ["TARGET", "load_tuned", "run"]

NAME = "npd-load"
TARGET = 1.1
CITIZENS = 800_000
SEED = 6


def load_tuned(path: Path, citizens: Sequence[Citizen]) -> int:
    """The NPD's own bulk load; returns how many citizens the database then holds."""
    database = npd.PopulationDB.create(path)
    try:
        database.load(citizens)
        return database.count()
    finally:
        database.close()


def load_plain(path: Path, citizens: Sequence[Citizen]) -> int:
    """The same rows in one transaction with SQLite's defaults; returns how many the database then holds."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(npd._SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(npd._INSERT, (npd._row(c) for c in citizens))
        conn.execute("COMMIT")
        return int(conn.execute("SELECT COUNT(*) FROM citizens").fetchone()[0])
    finally:
        conn.close()


def run(ctx: BenchContext) -> BenchResult:
    n = ctx.size(CITIZENS)
    half = n // 2
    citizens = [c for group in ctx.population(SEED, {"008": half, "052": n - half}).values() for c in group]
    with tempfile.TemporaryDirectory(prefix="popsync-bench-load-") as tmp:
        with step(ctx.log, f"{NAME}: {len(citizens):,} citizens, plain insert"):
            plain, plain_s = timed(lambda: load_plain(Path(tmp) / "plain.sqlite", citizens))
        with step(ctx.log, f"{NAME}: {len(citizens):,} citizens, PopulationDB.load"):
            tuned, tuned_s = timed(lambda: load_tuned(Path(tmp) / "npd.sqlite", citizens))
    for what, held in (("the plain insert", plain), ("PopulationDB.load", tuned)):
        if held != len(citizens):
            raise BenchmarkError(f"{NAME}: {what} holds {held:,} of {len(citizens):,} citizens")
    return BenchResult(
        NAME,
        "PopulationDB.load vs one plain executemany",
        Rate("citizens/s by PopulationDB.load", len(citizens), tuned_s),
        Rate("citizens/s by a plain executemany", len(citizens), plain_s),
        TARGET,
        {"citizens": len(citizens)},
    )
