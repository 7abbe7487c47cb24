"""The benchmarks' two sides do the same work: a ratio means nothing if they do not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmarks import bench_load
from benchmarks.run import BENCHMARKS
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
