"""`civil-batch`: the mock NDXP's civil-status registrations by batches of 1000 against one per request.

The records are one month of a province's civil-status registry (`connectors.civil_gen.build_civil`): births
(some registered late), deaths and marriages, with the generator's usual share of records that end
`corrected` or `unsynced` (about one in eight, as a registry publishes them). Registrations change the NPD
(a birth adds a citizen, a death or a marriage updates one), so each side gets its own database: the
population is generated once and loaded into two SQLite files, each served by its own `NdxpServer` (same
settings, in this process), and both sides register **the same records in the same order**. Two identical
NPDs given identical records is the fairest comparison there is: every registration takes the same
decision, makes the same writes and issues the same personal ID on both sides, which the benchmark checks
(both answers must be equal, and each outcome the one `build_civil` says the rules must reach). Different
records would compare different work. The only difference left is how the records travel: `POST
/v1/civil-status/registrations` with 1000 records a call (one transaction, one audit write per call) against
the same endpoint with one record a call, each over one keep-alive `httpx.Client` holding one OAuth bearer
token (scopes `civil.register` and `citizen.identity`). Before timing, each server is warmed up with records
that are left `unsynced/missing_fields` (they change no citizen). Both servers run at once and the sides
alternate, one batch of 1000 on the first NPD, then the same 1000 records one per request on the second,
so that a machine busy with something else for a while slows both sides alike. The ratio is
registrations/s by batch ÷ registrations/s one per request.

Target: ratio ≥ 5. The civil-status agent registers only by batch, so the endpoint's batch exists to spread
what each request costs (HTTP, the token check, routing and validation of the body, a thread-pool hop, a
write transaction's BEGIN IMMEDIATE/COMMIT on a WAL file, a separate audit commit) over 1000 records. A
registration costs much more per record than a look-up (`ndxp-batch`'s target is 10): it reads the
citizens it names, decides, upserts one or two citizen rows and a registration row and audits each citizen
it touches, so per-record work is a larger share of a batch than in a look-up, and the bar is set lower
than a look-up's. At ≥ 5 the per-request cost is at least four fifths of what one-by-one
registration costs, and the batch removes it; below it either something per record has grown as expensive
as a whole request (a query per record that is not indexed, a commit per record) or the batch path has
started paying per-request costs per record, and the civil agent's throughput, which bounds how fast the
NPD learns of births and deaths, falls with it. Measured on the 2-core development machine (busy with other
work): 7.1–10.5 (1,330–1,930 registrations/s by batch, 0.5–0.75 s a batch, against 130–270/s, 3.7–7.7
ms a request), so 5 leaves room for a noisy machine while still catching a per-record cost that doubles.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_load import load_tuned
from benchmarks.harness import BenchContext, BenchmarkError, BenchResult, Rate, step, timed
from connectors.civil_gen import CivilBatch, CivilGenerateSpec, build_civil
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.server import NdxpServer

__all__ = ["TARGET", "civil_spec", "run"]

NAME = "civil-batch"
TARGET = 5.0
CITIZENS = 50_000  # the NPD each side starts from
REGISTRATIONS = 10_000  # records each side registers; one per request they take a few ms each
BATCH = 1000  # the endpoint's limit
SEED = 8
PROVINCE = "008"  # the registry whose records are sent; the NPD also holds citizens of OTHER
OTHER = "052"
AS_OF = date(2024, 1, 1)  # the population ends 2023-12-31; the records fall in December 2023
PURPOSE = "civil-status registration"
WARM_UP = 100  # records of each warm-up batch (left unsynced: no registration_no)
CLIENT_ID = "popsync-bench"
SYNCED = ("cleaned", "corrected")
SCOPES = ("citizen.identity", "civil.register")

# Share (per 10,000) of each kind of record, near the proportions of a registry's month: mostly births,
# a quarter deaths, an eighth marriages, and the generator's defects. Births take what rounding leaves.
_MIX: dict[str, int] = {
    "late_births": 500,
    "deaths": 2500,
    "marriages": 1200,
    "corrected.no_diacritics": 150,
    "corrected.legacy_id": 150,
    "unsynced.missing_fields": 200,
    "unsynced.duplicate": 200,
    "unsynced.not_found": 200,
    "unsynced.malformed_id": 150,
    "unsynced.mismatch": 200,
    "unsynced.deceased": 50,
}


def civil_spec(records: int) -> CivilGenerateSpec:
    """The generate spec of `records` civil-status records in `_MIX`'s proportions (births the rest)."""
    counts = {kind: records * share // 10_000 for kind, share in _MIX.items()}
    spec: dict[str, Any] = {"births": records - sum(counts.values()), "corrected": {}, "unsynced": {}}
    for kind, n in counts.items():
        block, _, name = kind.rpartition(".")
        (spec[block] if block else spec)[name] = n
    return CivilGenerateSpec.model_validate(spec)


def register_batches(client: httpx.Client, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Register the records `BATCH` a call, in order; returns the results in record order."""
    results: list[dict[str, Any]] = []
    for at in range(0, len(records), BATCH):
        body = {"registrations": list(records[at : at + BATCH]), "purpose": PURPOSE}
        response = client.post("/v1/civil-status/registrations", json=body)
        response.raise_for_status()
        results += response.json()["results"]
    return results


def register_singly(client: httpx.Client, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Register the records one per call, in order; returns the results in record order."""
    results: list[dict[str, Any]] = []
    for record in records:
        response = client.post(
            "/v1/civil-status/registrations", json={"registrations": [record], "purpose": PURPOSE}
        )
        response.raise_for_status()
        results += response.json()["results"]
    return results


def check_outcomes(what: str, results: Sequence[dict[str, Any]], batch: CivilBatch) -> None:
    """Every record answered, in order, with the outcome the rules must reach (`build_civil` knows it)."""
    got = [(r["record_id"], r["outcome"]) for r in results]
    want = [(rec["record_id"], batch.outcomes[rec["record_id"]]) for rec in batch.records]
    if got != want:
        wrong = sum(1 for g, w in zip(got, want, strict=False) if g != w) + abs(len(got) - len(want))
        raise BenchmarkError(
            f"{NAME}: {what} answered {wrong:,} of {len(want):,} registrations otherwise than the rules say"
        )


def _warm_up_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the first records without their registration_no: `unsynced/missing_fields`, no change."""
    copies = []
    for n, rec in enumerate(records[:WARM_UP]):
        copy = {k: v for k, v in rec.items() if k != "registration_no"}
        copies.append({**copy, "record_id": f"WARM-{n:04d}"})
    return copies


def _settings(db_path: Path, client_secret: str, token_secret: str) -> NdxpSettings:
    options: dict[str, Any] = {
        "database_url": f"sqlite:///{db_path}",
        "clients": {CLIENT_ID: {"secret": client_secret, "scopes": list(SCOPES)}},
        "token_secret": token_secret,
        "token_ttl_s": 3600,  # one token outlasts the slower side
        "api_keys": {},
        "auditor_keys": {},
        "access_log": False,
        "log_level": "warning",
    }
    return NdxpSettings(**options)


def _bearer(base_url: str, client_secret: str) -> str:
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, client_secret),
        timeout=30.0,
    )
    if response.status_code != httpx.codes.OK:
        raise BenchmarkError(f"{NAME}: the NDXP refused the benchmark's token: {response.status_code}")
    token: str = response.json()["access_token"]
    return token


@contextlib.contextmanager
def _serving(db_path: Path, records: Sequence[dict[str, Any]]) -> Iterator[httpx.Client]:
    """A server on `db_path` and a warmed-up client holding a bearer token with the two scopes."""
    client_secret, token_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    with NdxpServer(_settings(db_path, client_secret, token_secret)) as server:
        headers = {"Authorization": f"Bearer {_bearer(server.base_url, client_secret)}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=120.0) as client:
            # Warm-up: the connection, the app's first-call paths; these records change no citizen.
            warm = _warm_up_records(records)
            answered = register_batches(client, warm) + register_singly(client, warm[:20])
            if any(r["outcome"] != "unsynced/missing_fields" for r in answered):
                raise BenchmarkError(f"{NAME}: a warm-up record was not left unsynced/missing_fields")
            yield client


def run(ctx: BenchContext) -> BenchResult:
    n_citizens, n_records = ctx.size(CITIZENS), ctx.size(REGISTRATIONS)
    here = n_citizens * 4 // 5
    groups = ctx.population(SEED, {PROVINCE: here, OTHER: n_citizens - here})
    citizens = [c for group in groups.values() for c in group]
    with step(ctx.log, f"{NAME}: generating {n_records:,} civil-status records"):
        batch = build_civil(
            civil_spec(n_records), seed=SEED, province=PROVINCE, citizens=citizens, as_of=AS_OF
        )
    with tempfile.TemporaryDirectory(prefix="popsync-bench-civil-") as tmp:
        paths = Path(tmp) / "npd-batch.sqlite", Path(tmp) / "npd-single.sqlite"
        with step(ctx.log, f"{NAME}: loading {len(citizens):,} citizens into two NPDs"):
            for path in paths:
                load_tuned(path, citizens)
        by_batch: list[dict[str, Any]] = []
        singly: list[dict[str, Any]] = []
        batch_s = single_s = 0.0
        with (
            _serving(paths[0], batch.records) as batch_client,
            _serving(paths[1], batch.records) as single_client,
            step(ctx.log, f"{NAME}: {n_records:,} registrations by batch and one per request, alternating"),
        ):
            # One batch, then the same records one per request on the other NPD, and so on: a machine
            # busy with something else for a while slows both sides alike.
            for at in range(0, n_records, BATCH):
                chunk = batch.records[at : at + BATCH]
                answers, seconds = timed(partial(register_batches, batch_client, chunk))
                by_batch += answers
                batch_s += seconds
                answers, seconds = timed(partial(register_singly, single_client, chunk))
                singly += answers
                single_s += seconds
    check_outcomes(f"by batch of {BATCH}", by_batch, batch)
    check_outcomes("one per request", singly, batch)
    if by_batch != singly:
        raise BenchmarkError(f"{NAME}: the two NPDs answered the same registrations differently")
    events = batch.counts()
    return BenchResult(
        NAME,
        f"civil registrations ({BATCH}/call) vs 1/call",
        Rate(f"registrations/s by POST /v1/civil-status/registrations ({BATCH}/call)", n_records, batch_s),
        Rate("registrations/s by POST /v1/civil-status/registrations (1/call)", n_records, single_s),
        TARGET,
        {
            "citizens": len(citizens),
            "registrations": n_records,
            "births": sum(n for (event, _), n in events.items() if event == "birth"),
            "deaths": sum(n for (event, _), n in events.items() if event == "death"),
            "marriages": sum(n for (event, _), n in events.items() if event == "marriage"),
            "synced": sum(1 for r in by_batch if r["outcome"] in SYNCED),
            "batch_ms_per_call": round(1000 * batch_s * BATCH / n_records, 1),
            "single_ms_per_call": round(1000 * single_s / n_records, 2),
        },
    )
