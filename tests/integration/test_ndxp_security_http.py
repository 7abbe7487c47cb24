"""Agency security of the NDXP on real sockets: tokens, scopes, rate limits, the audit, TLS, and a whole
pipeline run squeezed by a tight rate limit that still ends with exact counts."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from rich.console import Console
from tls_helpers import self_signed

from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.server import NdxpServer
from popsync.simulate import Run, RunOptions, run_scenario
from schemas.citizen import Citizen
from streams.messages import envelope_lines
from streams.metrics import WorkerMetrics
from streams.ndxp_auth import ClientCredentials
from streams.ndxp_client import NdxpClient

pytestmark = pytest.mark.integration

STREAMS = "citizen.identity citizen.residence citizen.status"
CLIENTS: dict[str, dict[str, Any]] = {
    "streams": {"secret": "streams-secret-0123456789", "scopes": STREAMS},
    "insurance": {"secret": "insurance-secret-0123456789", "scopes": ["citizen.identity"]},
    "c06-audit": {"secret": "auditor-secret-0123456789", "scopes": ["audit.read"]},
}
DUC = Citizen.model_validate(
    {
        "personal_id": "008090123456",
        "legacy_id": "123456789",
        "full_name": "Nguyễn Văn Đức",
        "date_of_birth": "1990-05-17",
        "gender": "male",
        "permanent_province": "008",
        "ethnicity": "Kinh",
        "religion": "Không",
    }
)
HOA = Citizen.model_validate(
    {
        "personal_id": "019301000001",
        "full_name": "Trần Thị Hoa",
        "date_of_birth": "2001-02-03",
        "gender": "female",
        "permanent_province": "019",
    }
)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ndxp-security") / "npd.sqlite3"
    db = PopulationDB.create(path)
    try:
        db.load([DUC, HOA])
    finally:
        db.close()
    return path


def settings_for(db_path: Path, **overrides: Any) -> NdxpSettings:
    values: dict[str, Any] = {
        "environment": "production",  # every secret explicit, as a level-3 deployment would have them
        "database_url": f"sqlite:///{db_path}",
        "clients": CLIENTS,
        "token_secret": "integration-token-secret-0123456789abcdef",
        "api_keys": {},
        "auditor_keys": {},
        "access_log": False,
        "log_level": "warning",
    }
    values.update(overrides)
    return NdxpSettings(**values)


@pytest.fixture(scope="module")
def server(db_path: Path) -> Iterator[NdxpServer]:
    with NdxpServer(settings_for(db_path)) as running:
        yield running


def token(base_url: str, client_id: str, verify: Any = True, **form: str) -> str:
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, CLIENTS[client_id]["secret"]),
        verify=verify,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(base_url: str, client_id: str, **form: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(base_url, client_id, **form)}"}


def audit(base_url: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/v1/audit", params=params, headers=bearer(base_url, "c06-audit"))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def streams_client(base_url: str, **kwargs: Any) -> NdxpClient:
    credentials = ClientCredentials("streams", SecretStr(CLIENTS["streams"]["secret"]), STREAMS)
    return NdxpClient(base_url, credentials=credentials, **kwargs)


# --- tokens, scopes, the audit ---------------------------------------------------------------------


def test_no_token_is_401_and_api_keys_are_off(server: NdxpServer) -> None:
    url = server.base_url
    ask = {"ids": [DUC.personal_id], "purpose": "p"}
    for headers in ({}, {"X-API-Key": "anything"}, {"Authorization": "Bearer not.a.token"}):
        response = httpx.post(f"{url}/v1/citizens/verify-batch", json=ask, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    refused = httpx.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("streams", "x")
    )
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")


def test_wrong_scope_withholds_fields_and_lists_them(server: NdxpServer) -> None:
    url = server.base_url
    rid = f"scope-{uuid.uuid4().hex}"
    response = httpx.post(
        f"{url}/v1/citizens/verify-batch",
        json={"ids": [DUC.personal_id, HOA.personal_id], "purpose": "insurance card"},
        headers={**bearer(url, "insurance"), "X-Request-ID": rid},
    )
    assert response.status_code == 200
    duc, hoa = response.json()["results"]
    assert duc["citizen"] == {
        "personal_id": DUC.personal_id, "legacy_id": DUC.legacy_id, "full_name": DUC.full_name,
        "date_of_birth": "1990-05-17", "gender": "male",
    }  # fmt: skip
    assert duc["withheld"] == [
        "birth_province", "permanent_province", "status", "date_of_death", "ethnicity", "religion",
    ]  # fmt: skip
    assert "permanent_province" not in hoa["citizen"] and "permanent_province" in hoa["withheld"]
    entries = audit(url, request_id=rid)
    assert sorted(e["personal_id"] for e in entries) == [DUC.personal_id, HOA.personal_id]
    assert all(
        e["fields"] == ["personal_id", "legacy_id", "full_name", "date_of_birth", "gender"] for e in entries
    )
    # A token may ask for fewer scopes than its client has, never more.
    narrower = bearer(url, "streams", scope="citizen.residence")
    single = httpx.get(f"{url}/v1/citizens/{HOA.personal_id}", params={"purpose": "p"}, headers=narrower)
    assert single.json() == {
        "birth_province": "019", "permanent_province": "019",
        "withheld": ["personal_id", "legacy_id", "full_name", "date_of_birth", "gender", "status",
                     "date_of_death"],
    }  # fmt: skip
    too_wide = httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "citizen.other"},
        auth=("streams", CLIENTS["streams"]["secret"]),
    )
    assert (too_wide.status_code, too_wide.json()["error"]) == (400, "invalid_scope")


def test_every_disclosure_is_one_audit_entry_and_nothing_else_writes(
    server: NdxpServer, db_path: Path
) -> None:
    url, headers = server.base_url, bearer(server.base_url, "streams")
    count = len(audit(url, agency="streams", limit="10000"))
    rids = {name: f"{name}-{uuid.uuid4().hex}" for name in ("read", "verify", "batch", "legacy")}
    httpx.get(f"{url}/v1/citizens/{DUC.personal_id}", params={"purpose": "p1"},
              headers={**headers, "X-Request-ID": rids["read"]})  # fmt: skip
    httpx.post(f"{url}/v1/citizens/verify", json={"id": DUC.legacy_id, "full_name": "x", "purpose": "p2"},
               headers={**headers, "X-Request-ID": rids["verify"]})  # fmt: skip
    batch = [DUC.personal_id, DUC.legacy_id, HOA.personal_id, "008099999999"]
    httpx.post(f"{url}/v1/citizens/verify-batch", json={"ids": batch, "purpose": "p3"},
               headers={**headers, "X-Request-ID": rids["batch"]})  # fmt: skip
    httpx.get(f"{url}/v1/legacy/{DUC.legacy_id}", params={"purpose": "p4"},
              headers={**headers, "X-Request-ID": rids["legacy"]})  # fmt: skip
    # Requests that disclose nobody: a token, the audit itself, health, metrics, a 404, a refusal.
    token(url, "streams")
    httpx.get(f"{url}/health")
    httpx.get(f"{url}/metrics")
    httpx.get(f"{url}/v1/citizens/008099999999", params={"purpose": "p"}, headers=headers)
    httpx.get(f"{url}/v1/audit", headers=headers)  # 403: not an auditor
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert httpx.request(method, f"{url}/v1/audit", headers=bearer(url, "c06-audit")).status_code == 405

    entries = audit(url, agency="streams", limit="10000")
    assert len(entries) == count + 1 + 1 + 2 + 1  # read, verify, batch (Đức once, Hoa), legacy
    by_rid = {rid: [e for e in entries if e["request_id"] == rid] for rid in rids.values()}
    (read,) = by_rid[rids["read"]]
    assert (read["endpoint"], read["purpose"], read["personal_id"]) == (
        "citizens.read",
        "p1",
        DUC.personal_id,
    )
    assert read["fields"] == [
        "personal_id", "legacy_id", "full_name", "date_of_birth", "gender", "birth_province",
        "permanent_province", "status", "date_of_death",
    ]  # fmt: skip
    # (ethnicity and religion withheld: not in the streams client's scopes)
    (verified,) = by_rid[rids["verify"]]
    assert verified["fields"] == ["personal_id", "deceased", "permanent_province", "full_name"]
    assert sorted(e["personal_id"] for e in by_rid[rids["batch"]]) == [DUC.personal_id, HOA.personal_id]
    (legacy,) = by_rid[rids["legacy"]]
    assert legacy["fields"] == ["personal_id"]
    assert [e["seq"] for e in audit(url, personal_id=HOA.personal_id, agency="streams", limit="10000")]
    # And the database itself refuses to change a line.
    with sqlite3.connect(db_path) as conn:
        for sql in ("UPDATE audit SET agency = 'nobody'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)


def test_over_the_limit_is_429_with_retry_after(db_path: Path) -> None:
    with NdxpServer(settings_for(db_path, rate_limit_per_s=0.5, rate_limit_burst=2)) as limited:
        url, headers = limited.base_url, bearer(limited.base_url, "insurance")
        ask = {"ids": [HOA.personal_id], "purpose": "p"}
        answers = [httpx.post(f"{url}/v1/citizens/verify-batch", json=ask, headers=headers) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].headers["Retry-After"] == "2"
        assert "over its rate limit" in answers[2].json()["detail"]
        metrics = httpx.get(f"{url}/metrics").text
        assert 'ndxp_rate_limited_total{agency="insurance"} 1.0' in metrics
        # Buckets are per agency: another agency is not held back.
        other = httpx.post(f"{url}/v1/citizens/verify-batch", json=ask, headers=bearer(url, "streams"))
        assert other.status_code == 200


def test_client_refreshes_a_short_lived_token(db_path: Path) -> None:
    with NdxpServer(settings_for(db_path, token_ttl_s=2)) as short:
        metrics = WorkerMetrics("w", "a")
        client = streams_client(short.base_url, metrics=metrics)
        assert client.tokens is not None

        async def go() -> None:
            assert DUC.personal_id in await client.lookup_many([DUC.personal_id])
            await asyncio.sleep(2.1)  # the token's whole life: refreshed before use, not refused
            assert DUC.personal_id in await client.lookup_many([DUC.personal_id])
            assert client.tokens is not None and client.tokens.fetched == 2
            assert metrics.registry.get_sample_value("popsync_ndxp_errors_total", {"kind": "401"}) is None
            await asyncio.sleep(2.1)
            # A clock that lags (a suspended VM): the client believes its token fresh, the NDXP refuses
            # it, and the client gets a new one once and carries on.
            client.tokens._refresh_at = float("inf")  # the stale belief
            assert DUC.personal_id in await client.lookup_many([DUC.personal_id])
            assert client.tokens.fetched == 3
            assert metrics.registry.get_sample_value("popsync_ndxp_errors_total", {"kind": "401"}) == 1
            await client.aclose()

        asyncio.run(go())


# --- TLS -----------------------------------------------------------------------------------------------


def test_tls_on(db_path: Path, tmp_path: Path) -> None:
    ca, certfile, keyfile = self_signed(tmp_path)
    with NdxpServer(settings_for(db_path, tls_certfile=certfile, tls_keyfile=keyfile)) as secure:
        url = secure.base_url
        assert url.startswith("https://")
        client = streams_client(url, ca_file=ca)

        async def go() -> dict[str, Citizen]:
            try:
                return await client.lookup_many([DUC.personal_id])
            finally:
                await client.aclose()

        assert asyncio.run(go())[DUC.personal_id].full_name == DUC.full_name
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/health")  # the system's CAs do not know this server
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url.replace("https://", "http://") + "/health")  # no plain HTTP on the TLS port
        assert token(url, "streams", verify=ssl.create_default_context(cafile=str(ca)))


# --- the pipeline under a tight rate limit ----------------------------------------------------------


def test_pipeline_under_a_tight_rate_limit_ends_with_exact_counts_and_traces(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Passed through to the run's NDXP and workers by their environment: 2 requests/s per agency, and
    # small batches, so the workers ask faster than that and meet 429s.
    monkeypatch.setenv("NDXP_RATE_LIMIT_PER_S", "2")
    monkeypatch.setenv("NDXP_RATE_LIMIT_BURST", "1")
    monkeypatch.setenv("STREAMS_BATCH_SIZE", "40")
    scenario = tmp_path / "limited.yaml"
    scenario.write_text(
        """\
name: rate-limited
seed: 5
population:
  generate: {"008": 3000}
sources:
  - sector: insurance
    province: "008"
    generate:
      records: 500
      unsynced: {mismatch: 8, not_found: 6, malformed_id: 4, missing_fields: 5, deceased: 3, duplicate: 4}
      corrected: {no_diacritics: 6, legacy_id: 2}
expect:
  - {sector: insurance, province: "008", total: 500, synced: 470, unsynced: 30, corrected: 8, deceased: 3}
partitions: 3
""",
        encoding="utf-8",
    )
    runs: list[Run] = []
    options = RunOptions(
        bootstrap_servers=kafka_bootstrap, workdir=tmp_path / "run", timeout_s=600, on_running=runs.append
    )
    outcome = run_scenario(scenario, options, Console(file=io.StringIO(), width=120))
    assert outcome.problems == [], outcome.problems
    (total,) = outcome.summary["totals"]
    assert (total["total"], total["synced"], total["unsynced"]) == (500, 470, 30)
    assert sum(outcome.stream_counts.values()) == 500
    ndxp_log = (tmp_path / "run" / "ndxp.log").read_text(errors="replace")
    assert '"POST /v1/citizens/verify-batch HTTP/1.1" 429' in ndxp_log, ndxp_log[-3000:]
    assert "over its rate limit" in ndxp_log
    worker_log = (tmp_path / "run" / "worker-1.log").read_text(errors="replace")
    assert "429" in worker_log and "Traceback" not in worker_log

    # Trace one record: its message's x-request-id → the worker's NDXP call → the NDXP's audit and log.
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        runs[0].topics.records("insurance"),
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
        group_id=f"trace-{uuid.uuid4().hex[:8]}",
    )
    try:
        messages = [m for _, m in zip(range(100), consumer, strict=False)]
    finally:
        consumer.close()
    traced: list[str] = []
    # A message is an envelope of records (README "Envelopes"), all under the envelope's request ID.
    records = [
        (dict(m.headers)["x-request-id"].decode(), line)
        for m in messages
        for line in envelope_lines(m.value, int(dict(m.headers).get("popsync-envelope", b"1")))
    ][:100]
    with sqlite3.connect(tmp_path / "run" / "npd.sqlite") as conn:
        for request_id, line in records:
            personal_id = str(json.loads(line).get("personal_id") or "").strip()
            rows = conn.execute(
                "SELECT agency, fields, endpoint FROM audit WHERE request_id = ? AND personal_id = ?",
                (request_id, personal_id),
            ).fetchall()
            for agency, fields, endpoint in rows:  # none for an ID the NPD does not hold
                assert (agency, endpoint) == ("popsync-streams", "citizens.verify_batch")
                assert "full_name" in json.loads(fields) and "ethnicity" not in json.loads(fields)
            if rows:
                traced.append(request_id)
    assert len(traced) >= 80, f"only {len(traced)} of {len(records)} records traced to an audit entry"
    # The NDXP's log names the same request (a record whose ID the NPD does not hold has no disclosure line),
    # readable even when the request ID holds a run of digits that looks like a personal ID.
    assert f"request {traced[-1]}: popsync-streams, citizens.verify_batch" in ndxp_log
