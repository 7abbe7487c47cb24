"""The NPD on PostgreSQL against SQLite: bulk load of a population file, and verify-batch IDs/s (issue 12).

    .venv/bin/python -m benchmarks.bench_postgres [--citizens 1500000] [--ids 10000] [--rounds 5]

One population file is written (generated, seeded), then loaded into a new SQLite file
(`PopulationDB.load_file`: batched INSERTs) and into a new PostgreSQL database
(`PostgresPopulation.load_file`: COPY), each timed from opening the file to the commit. Both read and
validate every line the same way (most of the time: see the in-memory figures), so the difference is the
database's. The same citizens, held in memory, are then loaded again into a new file and a new database
(`load`: no parsing, only the rows' encoding and the database). Then an `NdxpServer` in this
process serves each store in turn and is asked for the same random loaded IDs by verify-batch (1000 a
call, one keep-alive client, as `benchmarks/bench_ndxp.py` asks); the fastest of the rounds counts, as
`timeit` counts; the two NDXPs run side by side and take turns round by round. The PostgreSQL server is
a throwaway one (popsync/postgres/local.py: fsync off) on the
same machine and cores as the NDXP and the client; its connections are local TCP.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from benchmarks.bench_ndxp import BATCH, ask_batch
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import open_population
from mocks.ndxp.population import generate_population, write_population
from mocks.ndxp.server import NdxpServer
from popsync.postgres import local_postgres
from schemas.citizen import Citizen

__all__ = ["main"]

SEED = 12
PROVINCES = ("001", "008", "019", "052", "079")


def _load(url: str, source: Path | list[Citizen]) -> tuple[int, float]:
    db = open_population(url)
    try:
        started = time.perf_counter()
        loaded = db.load_file(source) if isinstance(source, Path) else db.load(source)
        return loaded, time.perf_counter() - started
    finally:
        db.close()


def _verify_rates(urls: dict[str, str], ids: Sequence[str], rounds: int) -> dict[str, float]:
    """IDs/s by verify-batch of each store's NDXP, the fastest of `rounds` rounds; the servers run side by
    side and take turns round by round, so other work on the machine slows both alike."""
    key = secrets.token_urlsafe(24)
    chunks = [ids[at : at + BATCH] for at in range(0, len(ids), BATCH)]
    best = dict.fromkeys(urls, float("inf"))
    with contextlib.ExitStack() as stack:
        clients = {}
        for name, url in urls.items():
            settings = NdxpSettings(
                database_url=url, api_keys={"popsync-bench": key}, access_log=False, log_level="warning"
            )
            server = stack.enter_context(NdxpServer(settings))
            clients[name] = stack.enter_context(
                httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}, timeout=60.0)
            )
            for chunk in chunks[:2]:  # warm-up: connections, first-call paths
                ask_batch(clients[name], chunk)
        for _ in range(rounds):
            for name, client in clients.items():
                started = time.perf_counter()
                found = sum(ask_batch(client, chunk) for chunk in chunks)
                best[name] = min(best[name], time.perf_counter() - started)
                if found != len(ids):
                    raise SystemExit(f"verify-batch found {found:,} of {len(ids):,} loaded IDs on {name}")
    return {name: len(ids) / seconds for name, seconds in best.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1_500_000)
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    per = args.citizens // len(PROVINCES)
    counts = {p: per + (1 if i < args.citizens % len(PROVINCES) else 0) for i, p in enumerate(PROVINCES)}
    with tempfile.TemporaryDirectory(prefix="popsync-bench-pg-") as tmp, local_postgres() as server:
        path = Path(tmp) / "population.jsonl"
        started = time.perf_counter()
        people: list[Citizen] = []

        def kept(citizens: Iterator[Citizen]) -> Iterator[Citizen]:
            for c in citizens:
                people.append(c)  # for the in-memory loads and the IDs to ask for
                yield c

        written = write_population(path, kept(generate_population(SEED, counts)))
        print(f"population file: {written:,} citizens, {path.stat().st_size / 2**20:,.0f} MiB "
              f"in {time.perf_counter() - started:,.1f} s")  # fmt: skip
        sqlite_url = f"sqlite:///{Path(tmp) / 'npd.sqlite3'}"
        pg_url = server.create_database("bench")
        figures: dict[str, tuple[int, float]] = {}
        for name, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
            figures[name] = _load(url, path)
            loaded, seconds = figures[name]
            print(
                f"load_file {name:>10}: {loaded:,} citizens in {seconds:,.1f} s "
                f"= {loaded / seconds:,.0f} citizens/s"
            )
        memory: dict[str, tuple[int, float]] = {}
        for name, url in (
            ("sqlite", f"sqlite:///{Path(tmp) / 'mem.sqlite3'}"),
            ("postgresql", server.create_database("mem")),
        ):
            loaded, seconds = memory[name] = _load(url, people)
            print(
                f"load (in memory) {name:>10}: {loaded:,} citizens in {seconds:,.1f} s "
                f"= {loaded / seconds:,.0f} citizens/s"
            )
        for what, timings in (("load_file", figures), ("load (in memory)", memory)):
            ratio = timings["sqlite"][1] / timings["postgresql"][1]
            print(f"{what}: PostgreSQL COPY / SQLite INSERTs, citizens/s: {ratio:.2f}")
        ids = random.Random(SEED).sample([c.personal_id for c in people], args.ids)
        people.clear()  # the memory back before the servers start
        rates = _verify_rates({"sqlite": sqlite_url, "postgresql": pg_url}, ids, args.rounds)
        for name, rate in rates.items():
            print(
                f"verify-batch {name:>10}: {rate:,.0f} IDs/s ({BATCH} IDs/call, fastest of {args.rounds} "
                f"rounds of {len(ids):,} IDs over {figures[name][0]:,} citizens)"
            )
        print(f"verify-batch PostgreSQL / SQLite: {rates['postgresql'] / rates['sqlite']:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this process's peak RSS: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
