"""`ndxp-batch`: the mock NDXP's verify-batch (1000 IDs a call) against a plain SQLite read of the same rows.

The candidate asks the NDXP (`NdxpServer`, SQLite, in this process) for 10,000 loaded IDs by verify-batch
calls over one keep-alive `httpx.Client`, encoding and decoding with orjson as the workers' client does:
HTTP, the key check, validation, the look-up, one audit row per citizen, the JSON answer. The baseline
fetches the same rows for the same IDs with one `SELECT … WHERE personal_id IN (…)` per 1000 IDs on a
plain `sqlite3` connection to the same file: the database work alone, nothing else. The two take turns,
round by round (7 rounds of the 10,000 IDs each); each side's fastest round counts, as `timeit` counts,
since other work on the machine only ever slows a round down. The ratio is IDs/s by verify-batch ÷ IDs/s
by the plain read.

Target: ratio ≥ 0.23, which is verify-batch at ≥ 60k IDs/s (issue 8: one 1000-ID call in at most
16.7 ms, client included) on the 2-core development machine. There the plain read ran at 240k–272k IDs/s
in this benchmark (3.7–4.2 ms per 1000 rows; 253k–287k, median 276k, on its own), typically 260k: 0.23
of 260k is 60k. As a ratio the target says that everything the NDXP does around the rows (HTTP, audit,
JSON) costs at most about 3.3 times fetching them, which carries over to a faster or slower machine
where a fixed 60k IDs/s would not. Measured there: 61k–71k IDs/s, ratio 0.24–0.30 (before one
statement per batch and JSON from SQLite: 34k–36k, 0.13). Below the target the workers' look-up rate,
which bounds the pipeline, falls with it. A few IDs asked one `GET /v1/citizens/{id}` each are printed
for the record (the per-request cost a batch spreads over 1000 IDs).
"""

from __future__ import annotations

import contextlib
import random
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.bench_load import load_tuned
from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step, timed
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import COLUMNS
from mocks.ndxp.server import NdxpServer

__all__ = ["TARGET", "ask_batch", "ask_singly", "read_plain", "run"]

NAME = "ndxp-batch"
TARGET = 0.23
CITIZENS = 50_000
QUERIED = 10_000  # distinct IDs, asked ROUNDS times by each side
ROUNDS = 7
SINGLY = 1000  # IDs asked one GET each, for the record (a few ms each)
BATCH = 1000  # the endpoint's limit
SEED = 6
PURPOSE = "popsync benchmark"
_JSON = {"Content-Type": "application/json"}
_PLAIN = (  # the same columns the NDXP reads; a plain IN list, as one would write it first
    f"SELECT {', '.join(COLUMNS)}, extra FROM citizens WHERE personal_id IN ({{marks}})"  # noqa: S608
)


def ask_batch(client: httpx.Client, ids: Sequence[str]) -> int:
    """One verify-batch call for `ids` (at most `BATCH`); returns how many were found."""
    response = client.post(
        "/v1/citizens/verify-batch", content=orjson.dumps({"ids": ids, "purpose": PURPOSE}), headers=_JSON
    )
    response.raise_for_status()
    return sum(1 for item in orjson.loads(response.content)["results"] if item["found"])


def read_plain(conn: sqlite3.Connection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows of `ids` (personal IDs) by one plain SELECT."""
    return conn.execute(_PLAIN.format(marks=",".join("?" * len(ids))), list(ids)).fetchall()


def ask_singly(client: httpx.Client, ids: Sequence[str]) -> int:
    """Look every ID up with one `GET /v1/citizens/{id}` each; returns how many were found."""
    found = 0
    for personal_id in ids:
        response = client.get(f"/v1/citizens/{personal_id}", params={"purpose": PURPOSE})
        if response.status_code != httpx.codes.NOT_FOUND:
            response.raise_for_status()
            found += 1
    return found


def _expect_all(what: str, found: int, ids: Sequence[str]) -> None:
    if found != len(ids):
        raise BenchmarkError(f"{NAME}: {what} found {found:,} of {len(ids):,} IDs that are all loaded")


def _alternate(client: httpx.Client, conn: sqlite3.Connection, ids: Sequence[str]) -> tuple[float, float]:
    """Seconds of the fastest of `ROUNDS` rounds of `ids` by verify-batch and by the plain read, a round
    of one and a round of the other in turn (call by call, the answer's encoding would slow the plain read
    that follows it: caches, the server thread finishing its response). The fastest round, as `timeit`
    takes it: other work on the machine only ever slows a round down."""
    batch_s = plain_s = float("inf")
    chunks = [ids[at : at + BATCH] for at in range(0, len(ids), BATCH)]
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for chunk in chunks:
            _expect_all("verify-batch", ask_batch(client, chunk), chunk)
        middle = time.perf_counter()
        for chunk in chunks:
            _expect_all("the plain read", len(read_plain(conn, chunk)), chunk)
        batch_s = min(batch_s, middle - started)
        plain_s = min(plain_s, time.perf_counter() - middle)
    return batch_s, plain_s


def run(ctx: BenchContext) -> BenchResult:
    # The same NPD and IDs under --quick (the whole measurement takes a few seconds): a smaller NPD would
    # fit the plain read's page cache and change what the ratio compares. Only the GETs are fewer.
    n_citizens, n_ids, n_singly = CITIZENS, QUERIED, ctx.size(SINGLY)
    half = n_citizens // 2
    citizens = [
        c for group in ctx.population(SEED, {"008": half, "052": n_citizens - half}).values() for c in group
    ]
    ids = random.Random(SEED).sample([c.personal_id for c in citizens], n_ids)
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="popsync-bench-ndxp-") as tmp:
        db_path = Path(tmp) / "npd.sqlite"
        with step(ctx.log, f"{NAME}: loading {len(citizens):,} citizens"):
            load_tuned(db_path, citizens)
        settings = NdxpSettings(
            database_url=f"sqlite:///{db_path}",
            api_keys={"popsync-bench": key},
            access_log=False,
            log_level="warning",
        )
        with (
            NdxpServer(settings) as server,
            httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}, timeout=60.0) as client,
            contextlib.closing(sqlite3.connect(db_path)) as conn,
        ):
            # Warm-up: the connection, the app's first-call paths, the database pages of these IDs.
            _alternate(client, conn, ids[: 2 * BATCH])
            with step(ctx.log, f"{NAME}: {ROUNDS} × {n_ids:,} IDs, verify-batch and plain read in turn"):
                batch_s, plain_s = _alternate(client, conn, ids)
            with step(ctx.log, f"{NAME}: {n_singly:,} IDs one GET each"):
                singly = ids[:n_singly]
                _, single_s = timed(lambda: _expect_all("GET per ID", ask_singly(client, singly), singly))
    candidate = Rate(f"IDs/s by POST verify-batch ({BATCH}/call)", n_ids, batch_s)
    return BenchResult(
        NAME,
        f"verify-batch ({BATCH} IDs/call) vs a plain SQLite read of the rows",
        candidate,
        Rate("IDs/s by SELECT … WHERE personal_id IN (…)", n_ids, plain_s),
        TARGET,
        {
            "citizens": len(citizens),
            "ids": n_ids,
            "rounds": ROUNDS,
            "verify_batch_ids_per_s": round(candidate.per_s),
            "batch_ms_per_call": round(1000 * batch_s * BATCH / n_ids, 1),
            "get_per_id_ids_per_s": round(n_singly / single_s),
        },
    )
