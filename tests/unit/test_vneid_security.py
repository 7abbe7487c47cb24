"""Agency security of the VNeID mock, in process (no sockets): settings, scopes, tokens, withheld fields,
rate limits, the append-only audit and who may read it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from mocks.common.ratelimit import Rate, RateLimiter
from mocks.vneid.config import DEV_CLIENTS, VneidSettings
from mocks.vneid.main import create_app
from mocks.vneid.models import AccountStatusPublic
from mocks.vneid.scopes import FIELD_SCOPES, IDENTITY, KNOWN_SCOPES, STATUS, field_scope, split_fields
from schemas.citizen import Citizen
from schemas.personal_id import make_personal_id

pytestmark = pytest.mark.unit

CLIENTS: dict[str, dict[str, Any]] = {
    "lgsp-008": {"secret": "lgsp-secret", "scopes": ["account.status", "account.identity"]},
    "bhxh-008": {"secret": "bhxh-secret", "scopes": ["account.status"]},
    "police-008": {"secret": "police-secret", "scopes": ["account.officer"]},
    "slow": {"secret": "slow-secret", "scopes": ["account.status"], "rate_per_s": 1, "burst": 2},
    "c06-audit": {"secret": "audit-secret", "scopes": "audit.read"},
}
CITIZENS = [
    Citizen(
        personal_id=make_personal_id("008", "female", 1988, n), full_name=f"Hoàng Thị Lan {n}",
        date_of_birth="1988-03-04", gender="female", permanent_province="008",
    )
    for n in range(1, 6)
]  # fmt: skip
NPD = {c.personal_id: c for c in CITIZENS}


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- settings and scopes --------------------------------------------------------------------------------


def test_clients_come_from_the_environment_with_their_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNEID_CLIENTS", json.dumps(CLIENTS))
    monkeypatch.setenv("VNEID_RATE_LIMIT_PER_S", "5")
    settings = VneidSettings()
    assert settings.oauth_clients["c06-audit"].scopes == ("audit.read",)
    assert settings.rate_of("slow") == Rate(1.0, 2)
    assert settings.rate_of("bhxh-008") == Rate(5.0, 5)
    assert VneidSettings(clients={}, rate_limit_per_s=None).rate_of("x") is None
    assert "police-secret" not in repr(settings)
    assert set(VneidSettings(clients=None).oauth_clients) == set(DEV_CLIENTS)  # built-ins in development


def production(**overrides: Any) -> dict[str, Any]:
    from mocks.vneid.config import RelyingParty
    from mocks.vneid.oidc.keys import SigningKey

    values: dict[str, Any] = {
        "environment": "production",
        "api_keys": {},
        "officer_keys": {},
        "clients": {"lgsp-008": {"secret": "a-long-enough-secret-1", "scopes": ["account.status"]}},
        "token_secret": "t" * 32,
        "relying_parties": {"dvc-008": RelyingParty(redirect_uris=["https://dvc.example/cb"])},
        "subject_salt": "a-long-salt",
        "signing_key": SigningKey.generate()._key.as_pem(private=True).decode(),
    }
    values.update(overrides)
    return values


def test_production_with_tokens_only_is_accepted() -> None:
    settings = VneidSettings(**production())
    assert set(settings.oauth_clients) == {"lgsp-008"} and not settings.api_keys


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"clients": {"x": {"secret": "dev-secret-lgsp-008", "scopes": ["account.status"]}}}, "built-in"),
        ({"clients": {"x": {"secret": "short", "scopes": ["account.status"]}}}, "short"),
        ({"token_secret": None}, "VNEID_TOKEN_SECRET"),
        ({"clients": None}, "no agency or police unit can call"),  # built-in clients: development only
        ({"officer_keys": {"police-008": "dev-key-police-008"}}, "built-in development API keys"),
    ],
)
def test_production_refuses_built_in_secrets(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        VneidSettings(**production(**overrides))


def test_settings_refuse_bad_clients_short_keys_half_tls_and_old_relying_parties(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown scopes"):
        VneidSettings(clients={"a": {"secret": "s", "scopes": ["account.everything"]}})
    with pytest.raises(ValidationError, match="give the auditor its own client"):
        VneidSettings(clients={"a": {"secret": "s", "scopes": ["audit.read", "account.status"]}})
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        VneidSettings(token_secret="too-short")
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="both VNEID_TLS_CERTFILE and VNEID_TLS_KEYFILE"):
        VneidSettings(tls_certfile=cert)
    with pytest.raises(ValidationError, match="moved to VNEID_RELYING_PARTIES"):
        VneidSettings(clients={"rp": {"redirect_uris": ["https://rp.example/cb"]}})


def test_scopes_cover_every_look_up_field_and_unknown_fields_need_identity() -> None:
    assert set(AccountStatusPublic.model_fields) <= set(FIELD_SCOPES)
    assert set(FIELD_SCOPES.values()) <= KNOWN_SCOPES
    assert field_scope("full_name") == IDENTITY  # not named: never shown to a status-only agency
    assert split_fields(["personal_id", "status", "level"], frozenset({STATUS})) == (
        ["status", "level"],
        ["personal_id"],
    )


# --- the app, in process ------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = VneidSettings(
        database_url=f"sqlite:///{tmp_path / 'vneid.sqlite3'}",
        clients=CLIENTS,
        api_keys={"dvc-008": "unit-key-dvc"},
        officer_keys={},
        access_log=False,
    )
    return create_app(settings, citizens=lambda ids: {i: NPD[i] for i in ids if i in NPD})


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vneid.test") as client:
            yield client


def run(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Any]) -> Any:
    async def go() -> Any:
        async with serving(app) as client:
            return await scenario(client)

    return asyncio.run(go())


async def bearer(client: httpx.AsyncClient, client_id: str, **form: str) -> dict[str, str]:
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, CLIENTS[client_id]["secret"]),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def open_account(client: httpx.AsyncClient, citizen: Citizen) -> None:
    police = await bearer(client, "police-008")
    body = {
        "personal_id": citizen.personal_id, "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth.isoformat(), "gender": citizen.gender,
        "province": "008", "level": 1,
    }  # fmt: skip
    assert (await client.post("/v1/accounts", json=body, headers=police)).status_code == 201
    approved = await client.post(f"/v1/accounts/{citizen.personal_id}/approve", headers=police)
    assert approved.status_code == 200, approved.text


def lookup_url(citizen: Citizen) -> str:
    return f"/v1/accounts/{citizen.personal_id}?purpose=check"


def test_token_endpoint_grants_and_refuses(app: FastAPI) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        grant = {"grant_type": "client_credentials"}
        ok = await c.post("/oauth/token", data=grant, auth=("bhxh-008", "bhxh-secret"))
        assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
        assert (ok.json()["token_type"], ok.json()["scope"], ok.json()["expires_in"]) == (
            "Bearer",
            "account.status",
            300,
        )
        wrong = await c.post("/oauth/token", data=grant, auth=("bhxh-008", "nope"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert 'realm="vneid"' in wrong.headers["www-authenticate"]
        more = await c.post(
            "/oauth/token", data={**grant, "scope": "account.officer"}, auth=("bhxh-008", "bhxh-secret")
        )
        assert more.status_code == 400 and more.json()["error"] == "invalid_scope"
        assert app.state.audit.count() == 0  # issuing tokens discloses nobody

    run(app, scenario)


def test_v1_needs_credentials_and_says_how(app: FastAPI) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        none = await c.get(lookup_url(CITIZENS[0]))
        assert none.status_code == 401 and "/oauth/token" in none.json()["detail"]
        assert none.headers["www-authenticate"] == 'Bearer realm="vneid"'
        bad = await c.get(lookup_url(CITIZENS[0]), headers={"Authorization": "Bearer not-a-jwt"})
        assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
        officer_op = await c.post(f"/v1/accounts/{CITIZENS[0].personal_id}/unlock")
        assert officer_op.status_code == 401
        assert app.state.audit.count() == 0

    run(app, scenario)


def test_scopes_withhold_fields_and_name_them(app: FastAPI) -> None:
    citizen = CITIZENS[0]

    async def scenario(c: httpx.AsyncClient) -> None:
        await open_account(c, citizen)
        status_only = await c.get(lookup_url(citizen), headers=await bearer(c, "bhxh-008"))
        body = status_only.json()
        assert status_only.status_code == 200 and body["withheld"] == ["personal_id"]
        assert "personal_id" not in body and (body["status"], body["level"]) == ("approved", 1)
        assert body["activated_at"] is None  # shown (not withheld): the account is not activated yet
        everything = (await c.get(lookup_url(citizen), headers=await bearer(c, "lgsp-008"))).json()
        assert everything["withheld"] == [] and everything["personal_id"] == citizen.personal_id
        narrowed = await bearer(c, "lgsp-008", scope="account.identity")
        identity_only = (await c.get(lookup_url(citizen), headers=narrowed)).json()
        assert set(identity_only) == {"personal_id", "withheld"}
        assert identity_only["withheld"] == [
            f for f in AccountStatusPublic.model_fields if f != "personal_id"
        ]
        # The officer's scope is for the police's operations only; an agency's token cannot change accounts.
        refused = await c.post(
            f"/v1/accounts/{citizen.personal_id}/lock",
            json={"reason": "r"},
            headers=await bearer(c, "lgsp-008"),
        )
        assert (
            refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["www-authenticate"]
        )
        no_lookup = await c.get(lookup_url(citizen), headers=await bearer(c, "police-008"))
        assert no_lookup.status_code == 403 and "account.status" in no_lookup.json()["detail"]
        entries = {e.agency: e.fields for e in app.state.audit.read() if e.endpoint == "accounts.read"}
        assert entries["bhxh-008"] == [f for f in AccountStatusPublic.model_fields if f != "personal_id"]

    run(app, scenario)


def test_over_the_rate_limit_is_429_with_retry_after(app: FastAPI) -> None:
    clock = Clock()
    app.state.limiter = RateLimiter(clock=clock)
    citizen = CITIZENS[1]

    async def scenario(c: httpx.AsyncClient) -> None:
        await open_account(c, citizen)
        slow = await bearer(c, "slow")
        before = app.state.audit.count()
        assert [(await c.get(lookup_url(citizen), headers=slow)).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        limited = await c.get(lookup_url(citizen), headers=slow)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        assert "over its rate limit" in limited.json()["detail"]
        assert app.state.audit.count() == before + 2  # refused requests disclosed nothing
        clock.now += 1.0
        assert (await c.get(lookup_url(citizen), headers=slow)).status_code == 200
        # Buckets are per agency: another agency is not slowed by this one.
        assert (await c.get(lookup_url(citizen), headers=await bearer(c, "bhxh-008"))).status_code == 200

    run(app, scenario)


def test_one_audit_entry_per_disclosure_auditors_only_with_request_ids(app: FastAPI) -> None:
    citizen, nobody = CITIZENS[2], CITIZENS[3]

    async def scenario(c: httpx.AsyncClient) -> None:
        await open_account(c, citizen)  # the police saw the account twice: apply, approve
        agency = await bearer(c, "lgsp-008")
        found = await c.get(lookup_url(citizen), headers={**agency, "X-Request-ID": "rid-found"})
        assert found.headers["x-request-id"] == "rid-found"
        missing = await c.get(lookup_url(nobody), headers={**agency, "X-Request-ID": "rid-missing"})
        assert missing.status_code == 404
        await c.get(lookup_url(citizen))  # 401: no entry
        assert app.state.audit.count() == 4

        auditor = await bearer(c, "c06-audit")
        assert (await c.get("/v1/audit", headers=agency)).status_code == 403  # the audited may not read it
        assert (await c.get("/v1/audit")).status_code == 401
        assert (await c.get(lookup_url(citizen), headers=auditor)).status_code == 403  # nor look up
        page = (await c.get("/v1/audit", params={"request_id": "rid-found"}, headers=auditor)).json()
        assert page["count"] == 1
        entry = page["entries"][0]
        assert (entry["agency"], entry["personal_id"], entry["purpose"], entry["endpoint"]) == (
            "lgsp-008",
            citizen.personal_id,
            "check",
            "accounts.read",
        )
        assert entry["fields"] == list(AccountStatusPublic.model_fields)
        mine = (await c.get("/v1/audit", params={"personal_id": citizen.personal_id}, headers=auditor)).json()
        assert [e["endpoint"] for e in mine["entries"]] == [
            "accounts.read",
            "accounts.approve",
            "accounts.apply",
        ]
        assert "activation_code" in mine["entries"][1]["fields"]  # the officer saw the one-time code
        absent = (await c.get("/v1/audit", params={"request_id": "rid-missing"}, headers=auditor)).json()
        assert absent["entries"][0]["fields"] == ["exists"]
        assert app.state.audit.count() == 4  # reading the audit writes nothing

    run(app, scenario)


def test_the_audit_table_refuses_update_and_delete(app: FastAPI, tmp_path: Path) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        await c.get(lookup_url(CITIZENS[4]), headers=await bearer(c, "bhxh-008"))

    run(app, scenario)
    conn = sqlite3.connect(tmp_path / "vneid.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit SET agency = 'someone-else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit")
    finally:
        conn.close()


def test_a_deprecated_api_key_still_looks_up_and_is_told_so(app: FastAPI) -> None:
    citizen = CITIZENS[4]

    async def scenario(c: httpx.AsyncClient) -> None:
        await open_account(c, citizen)
        keyed = await c.get(lookup_url(citizen), headers={"X-API-Key": "unit-key-dvc"})
        assert keyed.status_code == 200 and keyed.json()["withheld"] == []  # what a key saw before scopes
        assert keyed.headers["deprecation"] == "true" and "/oauth/token" in keyed.headers["link"]
        refused = await c.post(
            f"/v1/accounts/{citizen.personal_id}/unlock", headers={"X-API-Key": "unit-key-dvc"}
        )
        assert refused.status_code == 403
        assert (await c.get(lookup_url(citizen), headers={"X-API-Key": "nope"})).status_code == 401

    run(app, scenario)
