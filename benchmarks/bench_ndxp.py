"""`ndxp-batch`: the mock NDXP's verify-batch (1000 IDs a call) against one `GET /v1/citizens/{id}` per ID.

Both sides ask the same server (`NdxpServer`, SQLite, in this process) for the same IDs over one
keep-alive `httpx.Client`; the ratio is IDs/s by batch ÷ IDs/s one by one.

Target: ratio ≥ 10. The workers look citizens up only by batch, so the batch endpoint exists to spread
what every request costs (HTTP, key check, routing, a thread-pool hop, an audit commit) over 1000 IDs.
At ≥ 10× the per-request cost is amortised and per-ID work (the indexed look-up, validation, audit rows,
JSON) dominates; below it something per ID has become as expensive as a whole request, and the workers'
look-up rate, which bounds the pipeline, falls with it.
"""

from __future__ import annotations

import random
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from benchmarks.bench_load import load_tuned
from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step, timed
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.server import NdxpServer

__all__ = ["TARGET", "run"]

NAME = "ndxp-batch"
TARGET = 10.0
CITIZENS = 50_000
QUERIED = 10_000  # IDs asked for by each side; one at a time they take a few ms each
BATCH = 1000  # the endpoint's limit
SEED = 6
PURPOSE = "popsync benchmark"


def ask_batches(client: httpx.Client, ids: Sequence[str]) -> int:
    """Look every ID up with verify-batch calls of `BATCH` IDs; returns how many were found."""
    found = 0
    for at in range(0, len(ids), BATCH):
        response = client.post(
            "/v1/citizens/verify-batch", json={"ids": list(ids[at : at + BATCH]), "purpose": PURPOSE}
        )
        response.raise_for_status()
        found += sum(1 for item in response.json()["results"] if item["found"])
    return found


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
        raise BenchmarkError(f"ndxp-batch: {what} found {found:,} of {len(ids):,} IDs that are all loaded")


def run(ctx: BenchContext) -> BenchResult:
    n_citizens, n_ids = ctx.size(CITIZENS), ctx.size(QUERIED)
    half = n_citizens // 2
    citizens = [
        c for group in ctx.population(SEED, {"008": half, "052": n_citizens - half}).values() for c in group
    ]
    ids = random.Random(SEED).sample([c.personal_id for c in citizens], n_ids)
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="popsync-bench-ndxp-") as tmp:
        db_path = Path(tmp) / "npd.sqlite"
        with step(ctx.log, f"ndxp-batch: loading {len(citizens):,} citizens"):
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
        ):
            # Warm-up: the connection, the app's first-call paths, and the database pages of these IDs.
            _expect_all("the warm-up batches", ask_batches(client, ids), ids)
            ask_singly(client, ids[:100])
            with step(ctx.log, f"ndxp-batch: {n_ids:,} IDs by batch"):
                _, batch_s = timed(lambda: _expect_all("verify-batch", ask_batches(client, ids), ids))
            with step(ctx.log, f"ndxp-batch: {n_ids:,} IDs one GET each"):
                _, single_s = timed(lambda: _expect_all("GET per ID", ask_singly(client, ids), ids))
    return BenchResult(
        NAME,
        f"verify-batch ({BATCH} IDs/call) vs GET per ID",
        Rate(f"IDs/s by POST verify-batch ({BATCH}/call)", n_ids, batch_s),
        Rate("IDs/s by GET /v1/citizens/{id}", n_ids, single_s),
        TARGET,
        {
            "citizens": len(citizens),
            "ids": n_ids,
            "batch_ms_per_call": round(1000 * batch_s * BATCH / n_ids, 1),
        },
    )
