"""Two NDXP replicas over one PostgreSQL database: the same answers and one audit (issue 12)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import open_population
from mocks.ndxp.population import generate_population
from mocks.ndxp.server import NdxpServer
from popsync.postgres import LocalPostgres
from schemas.citizen import Citizen

pytestmark = pytest.mark.integration

AGENCY_KEY = "replica-key-lgsp-008"
AUDITOR_KEY = "replica-key-c06-audit"
CITIZENS = list(generate_population(21, {"008": 1500, "052": 500}))


@pytest.fixture(scope="module")
def npd_url(postgres_server: LocalPostgres) -> str:
    url = postgres_server.create_database("replicas")
    db = open_population(url)
    try:
        db.load(CITIZENS)
    finally:
        db.close()
    return url


@pytest.fixture(scope="module")
def replicas(npd_url: str) -> Iterator[list[NdxpServer]]:
    settings = NdxpSettings(
        database_url=npd_url,
        api_keys={"lgsp-008": AGENCY_KEY},
        auditor_keys={"c06-audit": AUDITOR_KEY},
        access_log=False,
    )
    with NdxpServer(settings) as first, NdxpServer(settings) as second:
        yield [first, second]


def _batch(server: NdxpServer, ids: list[str], request_id: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/citizens/verify-batch",
        json={"ids": ids, "purpose": "replicas"},
        headers={"X-API-Key": AGENCY_KEY, "X-Request-ID": request_id},
        timeout=30,
    )


def _audit(server: NdxpServer, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.base_url}/v1/audit",
        params={"limit": 10_000, **params},
        headers={"X-API-Key": AUDITOR_KEY},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def _ids(citizens: list[Citizen]) -> list[str]:
    legacy = [c.legacy_id for c in citizens if c.legacy_id]
    return [c.personal_id for c in citizens] + legacy[:50] + ["999999999999", "12345"]


def test_both_replicas_give_the_same_answers(replicas: list[NdxpServer]) -> None:
    ids = _ids(CITIZENS[:900])
    first, second = (_batch(server, ids, f"same-{n}") for n, server in enumerate(replicas))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    results = first.json()["results"]
    assert [r["query_id"] for r in results] == ids
    assert sum(r["found"] for r in results) == len(ids) - 2  # all but the unknown ID and the non-ID
    by_id = {c.personal_id: c for c in CITIZENS}
    assert all(
        Citizen.model_validate(r["citizen"]) == by_id[r["citizen"]["personal_id"]]
        for r in results
        if r["found"]
    )


def test_one_audit_for_both_replicas(replicas: list[NdxpServer]) -> None:
    # Many requests at once, spread over the two replicas: every disclosure lands in the one audit.
    chunks = [CITIZENS[i : i + 100] for i in range(0, 2000, 100)]
    jobs = list(zip(itertools.cycle(replicas), chunks, strict=False))
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda job: _batch(job[0], [c.personal_id for c in job[1]], f"spread-{id(job[1])}"), jobs
            )
        )
    assert all(a.status_code == 200 for a in answers)
    request_ids = {f"spread-{id(chunk)}" for chunk in chunks}
    for server in replicas:  # either replica reads the whole audit
        entries = [e for e in _audit(server, agency="lgsp-008") if e["request_id"] in request_ids]
        assert len(entries) == 2000
        assert sorted(e["personal_id"] for e in entries) == sorted(c.personal_id for c in CITIZENS)
        assert len({e["seq"] for e in entries}) == 2000  # one sequence for both replicas
    assert _audit(replicas[0]) == _audit(replicas[1])


def test_replicas_starting_together_create_the_tables_once(postgres_server: LocalPostgres) -> None:
    # Every store creates its tables when it opens; replicas starting at the same moment take turns (an
    # advisory lock), where two bare CREATE TABLE IF NOT EXISTS could both try and one fail.
    url = postgres_server.create_database("together")
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def open_one() -> None:
        start.wait()
        try:
            store = open_population(url)
            try:
                store.audit_log().count()
                assert store.count() == 0
            finally:
                store.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
