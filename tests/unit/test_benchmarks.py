"""The benchmarks' two sides do the same work: a ratio means nothing if they do not."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from benchmarks import bench_load, bench_ndxp
from benchmarks.run import BENCHMARKS
from mocks.ndxp import db as npd
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.population import generate_population


def test_npd_load_sides_leave_identical_tables(tmp_path: Path) -> None:
    citizens = list(generate_population(3, {"008": 1500, "052": 1500}))
    plain, tuned = tmp_path / "plain.sqlite", tmp_path / "npd.sqlite"
    assert bench_load.load_plain(plain, citizens) == len(citizens)
    assert bench_load.load_tuned(tuned, citizens) == len(citizens)

    def rows(path: Path) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT * FROM citizens ORDER BY personal_id").fetchall()

    assert rows(plain) == rows(tuned)
    assert len(rows(plain)) == len(citizens)


def test_npd_load_is_one_of_the_benchmarks() -> None:
    assert BENCHMARKS[bench_load.NAME] is bench_load.run


def test_ndxp_batch_baseline_reads_the_rows_the_ndxp_reads(tmp_path: Path) -> None:
    citizens = list(generate_population(5, {"008": 1500, "052": 1500}))
    assert bench_load.load_tuned(tmp_path / "npd.sqlite", citizens) == len(citizens)
    ids = [c.personal_id for c in citizens[::3]]
    database = PopulationDB.create(tmp_path / "npd.sqlite")
    try:
        by_ndxp = database.lookup_many(ids)
    finally:
        database.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "npd.sqlite")) as conn:
        plain = bench_ndxp.read_plain(conn, ids)
    assert len(plain) == len(ids)
    assert sorted(plain) == sorted(npd.citizen_row(c) for c in by_ndxp.values())


def test_peak_rss_is_read_from_the_kernel() -> None:
    peak = bench_load.peak_rss_mib(os.getpid())
    if Path("/proc/self/status").exists():
        assert peak is not None and 10 < peak < 100_000
    assert bench_load.peak_rss_mib(2**22 + 1) is None  # above the kernel's pid limit: no such process
