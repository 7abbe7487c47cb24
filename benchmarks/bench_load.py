"""`npd-load`: `PopulationDB.load` (the mock NPD's bulk load) against a plain one-transaction insert, and
the NDXP's peak memory once it has loaded 1.5 million citizens and answers verify-batch calls.

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

Memory (issue 8: the NDXP's RSS ≤ 2 GB with 1.5 million citizens; printed, not a ratio): a population
file of 1.5 million generated citizens (300,000 under --quick) is written as it is generated, an NDXP is
started as the deployments start it (`popsync ndxp serve --population FILE`: the NDXP process itself
loads the file, then serves), asked 50,000 of those IDs by verify-batch, and its peak resident set is
read from the kernel (`VmHWM` in `/proc/<pid>/status`). The load's page cache (up to the database's
size, about 390 MB here) is most of it; serving adds a page cache of 8 MiB per thread. Measured on the
2-core development machine: 580 MiB. Before, each connection also mapped the database file and the map
counted again in the resident set per thread: 790 MiB with one client, 1,021 MiB for an NDXP that had
not even loaded the file once eight clients asked at once (179 MiB now).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import orjson

from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step, timed
from mocks.ndxp import db as npd
from mocks.ndxp.population import generate_population, write_population
from popsync.services import ManagedProcess, free_port, popsync_command
from schemas.citizen import Citizen

__all__ = ["TARGET", "load_tuned", "peak_rss_mib", "run"]

NAME = "npd-load"
TARGET = 1.1
CITIZENS = 800_000
SEED = 6
SERVED = 1_500_000  # citizens the NDXP loads and serves for the memory reading
SERVED_IDS = 50_000  # of them, asked by verify-batch before the reading
RSS_LIMIT_MIB = 2048
BATCH = 1000


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
        conn.executemany(npd._INSERT, (npd.citizen_row(c) for c in citizens))
        conn.execute("COMMIT")
        return int(conn.execute("SELECT COUNT(*) FROM citizens").fetchone()[0])
    finally:
        conn.close()


def peak_rss_mib(pid: int) -> int | None:
    """The process's peak resident set (`VmHWM`) in MiB; None where the kernel does not tell (no /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024  # kB
    return None


def _write_served(path: Path, n: int) -> list[str]:
    """Write `n` generated citizens to a population file as they are made; returns every k-th personal ID
    (`SERVED_IDS` of them): nothing else of the population is kept in this process."""
    every = max(1, n // SERVED_IDS)
    sample: list[str] = []

    def citizens() -> Iterator[Citizen]:
        for i, citizen in enumerate(generate_population(SEED + 1, {"008": n // 2, "052": n - n // 2})):
            if i % every == 0 and len(sample) < SERVED_IDS:
                sample.append(citizen.personal_id)
            yield citizen

    write_population(path, citizens())
    return sample


def serve_and_measure(ctx: BenchContext, tmp: Path) -> dict[str, object]:
    """Peak RSS of an NDXP that loads a population file of `SERVED` citizens and answers verify-batch
    calls for `SERVED_IDS` of them (the notes printed under the table)."""
    n = ctx.size(SERVED)
    population = tmp / "served.jsonl"
    with step(ctx.log, f"{NAME}: writing a population file of {n:,} citizens"):
        ids = _write_served(population, n)
    key, port = secrets.token_urlsafe(24), free_port()
    env = {
        "NDXP_DATABASE_URL": f"sqlite:///{tmp / 'served.sqlite'}",
        "NDXP_API_KEYS": json.dumps({"popsync-bench": key}),
        "NDXP_ACCESS_LOG": "false",
        "NDXP_LOG_LEVEL": "warning",
    }
    command = popsync_command("ndxp", "serve", "--port", str(port), "--population", str(population))
    ndxp = ManagedProcess("ndxp", command, env, tmp / "ndxp.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        with step(ctx.log, f"{NAME}: the NDXP loads {n:,} citizens (popsync ndxp serve --population)"):
            ndxp.wait_ready(lambda: httpx.get(f"{url}/health", timeout=1.0).status_code == 200, timeout=900)
        with (
            step(ctx.log, f"{NAME}: {len(ids):,} of them by verify-batch"),
            httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60.0) as client,
        ):
            started = time.perf_counter()
            for at in range(0, len(ids), BATCH):
                chunk = ids[at : at + BATCH]
                body = orjson.dumps({"ids": chunk, "purpose": "popsync benchmark"})
                answer = client.post(
                    "/v1/citizens/verify-batch", content=body, headers={"Content-Type": "application/json"}
                )
                answer.raise_for_status()
                found = sum(1 for item in orjson.loads(answer.content)["results"] if item["found"])
                if found != len(chunk):
                    raise BenchmarkError(f"{NAME}: the NDXP found {found} of {len(chunk)} loaded IDs")
            asked_s = time.perf_counter() - started
        peak = peak_rss_mib(ndxp.pid) if ndxp.pid is not None else None
    finally:
        ndxp.stop()
    verdict = "unknown (no /proc)" if peak is None else "within" if peak <= RSS_LIMIT_MIB else "OVER"
    return {
        "ndxp_citizens": n,
        "ndxp_peak_rss_mib": peak if peak is not None else "unknown",
        "ndxp_rss_limit_mib": f"{RSS_LIMIT_MIB:,} ({verdict})",
        "ndxp_verify_batch_ids_per_s": round(len(ids) / asked_s),
    }


def run(ctx: BenchContext) -> BenchResult:
    n = ctx.size(CITIZENS)
    half = n // 2
    citizens = [c for group in ctx.population(SEED, {"008": half, "052": n - half}).values() for c in group]
    with tempfile.TemporaryDirectory(prefix="popsync-bench-load-") as tmp:
        with step(ctx.log, f"{NAME}: {len(citizens):,} citizens, plain insert"):
            plain, plain_s = timed(lambda: load_plain(Path(tmp) / "plain.sqlite", citizens))
        with step(ctx.log, f"{NAME}: {len(citizens):,} citizens, PopulationDB.load"):
            tuned, tuned_s = timed(lambda: load_tuned(Path(tmp) / "npd.sqlite", citizens))
        served = serve_and_measure(ctx, Path(tmp))
    for what, held in (("the plain insert", plain), ("PopulationDB.load", tuned)):
        if held != len(citizens):
            raise BenchmarkError(f"{NAME}: {what} holds {held:,} of {len(citizens):,} citizens")
    return BenchResult(
        NAME,
        "PopulationDB.load vs one plain executemany",
        Rate("citizens/s by PopulationDB.load", len(citizens), tuned_s),
        Rate("citizens/s by a plain executemany", len(citizens), plain_s),
        TARGET,
        {"citizens": len(citizens), **served},
    )
