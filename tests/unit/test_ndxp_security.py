"""Agency security of the NDXP mock, in process (no sockets): tokens, scopes, rate limits, the audit,
and the streams client's side of it (token cache and refresh, Retry-After, withheld fields)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from mocks.common.ratelimit import Rate, RateLimiter, TokenBucket, retry_after
from mocks.common.security import (
    OAuthClient,
    OAuthError,
    TokenService,
    authenticate_client,
    basic_credentials,
    bearer_token,
    grant_scopes,
    parse_scope,
)
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.main import create_app
from mocks.ndxp.scopes import CITIZEN_SCOPES, KNOWN_SCOPES, field_scope, split_fields
from schemas.citizen import Citizen
from streams.exceptions import ConfigurationError
from streams.metrics import WorkerMetrics
from streams.ndxp_auth import ClientCredentials, TokenSource, retry_after_s
from streams.ndxp_client import REQUIRED_SCOPES, NdxpClient

pytestmark = pytest.mark.unit

SECRET = b"s" * 32
STREAMS = ("citizen.identity", "citizen.residence", "citizen.status")
CLIENTS = {
    "streams": {"secret": "streams-secret", "scopes": list(STREAMS)},
    "narrow": {"secret": "narrow-secret", "scopes": ["citizen.residence"]},
    "slow": {"secret": "slow-secret", "scopes": ["citizen.identity"], "rate_per_s": 1, "burst": 2},
    "auditor": {"secret": "auditor-secret", "scopes": "audit.read"},
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
        "father_id": "008060000001",
    }
)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- mocks.common: tokens, clients, scopes, buckets ------------------------------------------------


def test_token_round_trip_expiry_and_forgery() -> None:
    clock = Clock()
    service = TokenService(SECRET, issuer="ndxp", audience="ndxp", ttl_s=60, clock=clock)
    token, issued = service.issue("lgsp-008", ["citizen.identity", "citizen.status"])
    claims = service.verify(token)
    assert claims == issued and claims.scope == "citizen.identity citizen.status"
    assert claims.expires_at - claims.issued_at == 60 and len(claims.token_id) == 32
    forged = TokenService(b"x" * 32, issuer="ndxp", audience="ndxp", ttl_s=60, clock=clock).issue("a", [])[0]
    header, payload, _ = token.split(".")
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=") + f".{payload}."
    for bad in (forged, unsigned, f"{header}.{payload}.AAAA", "not-a-jwt", ""):
        with pytest.raises(OAuthError) as refused:
            service.verify(bad)
        assert (refused.value.error, refused.value.status_code) == ("invalid_token", 401)
    other_audience = TokenService(SECRET, issuer="ndxp", audience="vneid", ttl_s=60, clock=clock)
    with pytest.raises(OAuthError):
        other_audience.verify(token)
    clock.now += 66  # past the 5 s leeway
    with pytest.raises(OAuthError, match="expired"):
        service.verify(token)
    with pytest.raises(ValueError, match="32 bytes"):
        TokenService(b"short", issuer="i", audience="a", ttl_s=1)


def test_client_authentication_and_scope_grants() -> None:
    clients = {"a": OAuthClient(secret=SecretStr("right"), scopes=("x", "y"))}
    assert authenticate_client(clients, "a", "right") is clients["a"]
    for client_id, secret in (("a", "wrong"), ("a", ""), ("nobody", "right")):
        with pytest.raises(OAuthError) as refused:
            authenticate_client(clients, client_id, secret)
        assert refused.value.error == "invalid_client" and refused.value.status_code == 401
    assert grant_scopes(clients["a"], ()) == ("x", "y")
    assert grant_scopes(clients["a"], ("y",)) == ("y",)
    with pytest.raises(OAuthError, match="z are not registered") as refused:
        grant_scopes(clients["a"], ("y", "z"))
    assert refused.value.error == "invalid_scope"
    assert (
        parse_scope(" x  y x ") == ("x", "y")
        and parse_scope(None) == ()
        and parse_scope(["x y", "z"])
        == (
            "x",
            "y",
            "z",
        )
    )
    encoded = base64.b64encode(b"lgsp%3A008:p%2Bss+word").decode()
    assert basic_credentials(f"Basic {encoded}") == ("lgsp:008", "p+ss word")  # RFC 6749 §2.3.1
    assert basic_credentials("Bearer abc") is None and basic_credentials(None) is None
    with pytest.raises(OAuthError):
        basic_credentials("Basic !!!")
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token("Bearer ") is None
    with pytest.raises(ValidationError):
        OAuthClient(secret=SecretStr(""), scopes=("x",))


def test_token_bucket_bursts_then_paces() -> None:
    bucket = TokenBucket(Rate(per_s=2.0, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # refused, nothing taken
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.6) == pytest.approx(0.4)
    assert bucket.take(100.0) == 0.0  # refilled, capped at the burst
    assert [bucket.take(100.0) for _ in range(3)][-1] > 0
    clock = Clock(0.0)
    limiter = RateLimiter(clock=clock)
    assert all(limiter.check("free") == 0.0 for _ in range(100))  # no rate, no default: unlimited
    assert limiter.check("a", Rate(1.0, 1)) == 0.0 and limiter.check("a", Rate(1.0, 1)) > 0
    assert limiter.check("b", Rate(1.0, 1)) == 0.0  # buckets are per key
    assert (retry_after(0.01), retry_after(1.0), retry_after(1.2)) == ("1", "1", "2")
    with pytest.raises(ValueError):
        Rate(0.0, 1)


def test_scopes_map_fields_and_unknown_fields_are_other() -> None:
    assert field_scope("full_name") == "citizen.identity" and field_scope("date_of_death") == "citizen.status"
    assert field_scope("father_id") == "citizen.family" and field_scope("some_new_field") == "citizen.other"
    shown, withheld = split_fields(["personal_id", "permanent_province", "religion"], frozenset(STREAMS))
    assert (shown, withheld) == (["personal_id", "permanent_province"], ["religion"])


# --- settings ----------------------------------------------------------------------------------------


def test_settings_clients_from_env_and_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NDXP_CLIENTS", json.dumps(CLIENTS))
    monkeypatch.setenv("NDXP_RATE_LIMIT_PER_S", "5")
    settings = NdxpSettings()
    assert settings.oauth_clients["streams"].scopes == STREAMS
    assert settings.oauth_clients["auditor"].scopes == ("audit.read",)
    assert settings.rate_of("slow") == Rate(1.0, 2)  # its own
    assert settings.rate_of("streams") == Rate(5.0, 5)  # the default, burst one second's worth
    assert NdxpSettings(clients={}, rate_limit_per_s=None).rate_of("x") is None
    assert "streams-secret" not in repr(settings)
    assert "popsync-streams" in NdxpSettings(clients=None).oauth_clients  # built-ins in development


def test_production_refuses_built_in_and_weak_secrets() -> None:
    strong = {"lgsp-008": {"secret": "a-long-enough-secret-1", "scopes": ["citizen.identity"]}}
    keys = {"api_keys": {}, "auditor_keys": {}}
    with pytest.raises(ValidationError, match="built-in development or short"):
        NdxpSettings(
            environment="production",
            clients={"x": {"secret": "dev-secret-lgsp-008", "scopes": ["citizen.identity"]}},
            **keys,
        )
    with pytest.raises(ValidationError, match="built-in development or short"):
        NdxpSettings(
            environment="production",
            clients={"x": {"secret": "short", "scopes": ["citizen.identity"]}},
            **keys,
        )
    with pytest.raises(ValidationError, match="NDXP_TOKEN_SECRET"):
        NdxpSettings(environment="production", clients=strong, **keys)
    with pytest.raises(ValidationError, match="no agency can call"):
        NdxpSettings(environment="production", **keys)  # built-in clients are development only
    ok = NdxpSettings(environment="production", clients=strong, token_secret="t" * 32, **keys)
    assert set(ok.oauth_clients) == {"lgsp-008"}
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        NdxpSettings(token_secret="too-short")


def test_settings_refuse_unknown_scopes_auditors_with_citizen_scopes_and_half_tls(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown scopes"):
        NdxpSettings(clients={"a": {"secret": "s", "scopes": ["citizen.everything"]}})
    with pytest.raises(ValidationError, match="give the auditor its own client"):
        NdxpSettings(clients={"a": {"secret": "s", "scopes": ["audit.read", "citizen.identity"]}})
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="both NDXP_TLS_CERTFILE and NDXP_TLS_KEYFILE"):
        NdxpSettings(tls_certfile=cert)
    with pytest.raises(ValidationError, match="not a readable file"):
        NdxpSettings(tls_certfile=cert, tls_keyfile=tmp_path / "missing.pem")


# --- the app, in process ------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    path = tmp_path / "npd.sqlite3"
    db = PopulationDB.create(path)
    try:
        db.load([DUC])
    finally:
        db.close()
    settings = NdxpSettings(
        database_url=f"sqlite:///{path}",
        clients=CLIENTS,
        api_keys={"lgsp-008": "unit-key-008"},
        auditor_keys={},
        access_log=False,
    )
    return create_app(settings)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ndxp.test") as client:
            yield client


async def bearer(client: httpx.AsyncClient, client_id: str, **form: str) -> dict[str, str]:
    secret = CLIENTS[client_id]["secret"]
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials", **form}, auth=(client_id, str(secret))
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def run(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Any]) -> Any:
    async def go() -> Any:
        async with serving(app) as client:
            return await scenario(client)

    return asyncio.run(go())


def test_token_endpoint_grants_and_refuses(app: FastAPI) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        grant = {"grant_type": "client_credentials"}
        basic = await c.post("/oauth/token", data=grant, auth=("streams", "streams-secret"))
        assert basic.status_code == 200 and basic.headers["Cache-Control"] == "no-store"
        body = basic.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 300
        assert body["scope"] == " ".join(sorted(STREAMS))
        posted = await c.post(
            "/oauth/token", data={**grant, "client_id": "streams", "client_secret": "streams-secret",
                                  "scope": "citizen.status"},
        )  # fmt: skip
        assert posted.json()["scope"] == "citizen.status"
        refusals = [
            (await c.post("/oauth/token", data=grant, auth=("streams", "wrong")), 401, "invalid_client"),
            (await c.post("/oauth/token", data=grant), 401, "invalid_client"),
            (await c.post("/oauth/token", data={"grant_type": "password"}), 400, "unsupported_grant_type"),
            (
                await c.post(
                    "/oauth/token",
                    data={**grant, "scope": "citizen.family"},
                    auth=("streams", "streams-secret"),
                ),
                400,
                "invalid_scope",
            ),
            (
                await c.post(
                    "/oauth/token", data={**grant, "client_id": "streams"}, auth=("streams", "streams-secret")
                ),
                400,
                "invalid_request",
            ),
        ]
        for response, status, error in refusals:
            assert (response.status_code, response.json()["error"]) == (status, error), response.text
            assert "streams-secret" not in response.text
        assert refusals[0][0].headers["WWW-Authenticate"].startswith("Basic ")
        assert app.state.audit.count() == 0  # issuing tokens discloses nobody

    run(app, scenario)


def test_v1_needs_credentials_and_says_how(app: FastAPI) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        purpose = {"purpose": "p"}
        none = await c.get(f"/v1/citizens/{DUC.personal_id}", params=purpose)
        assert none.status_code == 401 and none.headers["WWW-Authenticate"].startswith("Bearer")
        assert "/oauth/token" in none.json()["detail"]
        bad = await c.get(
            f"/v1/citizens/{DUC.personal_id}", params=purpose, headers={"Authorization": "Bearer x.y.z"}
        )
        assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
        keyed = await c.get(
            f"/v1/citizens/{DUC.personal_id}", params=purpose, headers={"X-API-Key": "unit-key-008"}
        )
        assert keyed.status_code == 200 and keyed.headers["Deprecation"] == "true"  # still works, deprecated
        assert keyed.json()["withheld"] == []  # a key carries every citizen scope
        token = await c.get(
            f"/v1/citizens/{DUC.personal_id}", params=purpose, headers=await bearer(c, "streams")
        )
        assert token.status_code == 200 and "Deprecation" not in token.headers

    run(app, scenario)


def test_scopes_withhold_fields_and_the_audit_records_what_was_shown(app: FastAPI) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        narrow = await bearer(c, "narrow")  # citizen.residence only
        batch = await c.post(
            "/v1/citizens/verify-batch", json={"ids": [DUC.personal_id, "000000000"], "purpose": "p"},
            headers={**narrow, "X-Request-ID": "rid-batch"},
        )  # fmt: skip
        first, missing = batch.json()["results"]
        assert first["citizen"] == {"birth_province": "008", "permanent_province": "008"}
        assert first["withheld"] == [
            "personal_id", "legacy_id", "full_name", "date_of_birth", "gender", "status", "date_of_death",
            "ethnicity", "father_id",
        ]  # fmt: skip
        assert (missing["found"], missing["withheld"]) == (False, [])
        single = await c.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "p"}, headers=narrow)
        assert single.json() == {
            "birth_province": "008",
            "permanent_province": "008",
            **{"withheld": first["withheld"]},
        }
        verify = await c.post(
            "/v1/citizens/verify", json={"id": DUC.personal_id, "gender": "male", "purpose": "p"},
            headers={**narrow, "X-Request-ID": "rid-verify"},
        )  # fmt: skip
        assert verify.json() == {
            "found": True, "fields": {}, "permanent_province": "008",
            "withheld": ["personal_id", "deceased", "gender"],
        }  # fmt: skip
        legacy = await c.get(f"/v1/legacy/{DUC.legacy_id}", params={"purpose": "p"}, headers=narrow)
        assert (
            legacy.status_code == 403 and 'error="insufficient_scope"' in legacy.headers["WWW-Authenticate"]
        )
        auditor = await bearer(c, "auditor")
        entries = (await c.get("/v1/audit", params={"agency": "narrow"}, headers=auditor)).json()["entries"]
        by_request = {e["request_id"]: e["fields"] for e in entries}
        assert by_request["rid-batch"] == ["birth_province", "permanent_province"]
        assert by_request["rid-verify"] == ["permanent_province"]
        assert len(entries) == 3  # batch, read, verify: one citizen each; the refused legacy call none
        assert (await c.get("/v1/audit", headers=narrow)).status_code == 403
        citizens = await c.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "p"}, headers=auditor)
        assert citizens.status_code == 403 and "auditor" in citizens.json()["detail"]

    run(app, scenario)


def test_over_the_rate_limit_is_429_with_retry_after(app: FastAPI) -> None:
    clock = Clock(0.0)
    app.state.limiter = RateLimiter(clock=clock)

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        slow = await bearer(c, "slow")  # 1/s, burst 2
        ask = {"ids": [DUC.personal_id], "purpose": "p"}
        answers = [await c.post("/v1/citizens/verify-batch", json=ask, headers=slow) for _ in range(3)]
        clock.now += 1.0
        answers.append(await c.post("/v1/citizens/verify-batch", json=ask, headers=slow))
        assert app.state.audit.count() == 3  # the refused request disclosed nothing
        return answers

    answers = run(app, scenario)
    assert [a.status_code for a in answers] == [200, 200, 429, 200]
    assert answers[2].headers["Retry-After"] == "1"
    assert "over its rate limit" in answers[2].json()["detail"]
    registry = app.state.metrics.registry
    assert registry.get_sample_value("ndxp_rate_limited_total", {"agency": "slow"}) == 1


def test_only_disclosures_write_the_audit(app: FastAPI) -> None:
    """The route inventory is closed: every route that can write the audit is a disclosure or an NPD
    write (each behind its write scope), and the audit route itself is GET only. Calling everything
    else, or a write without its scope, leaves the audit as it was."""
    # FastAPI keeps included routers apart from `app.routes`: the OpenAPI paths list every API route.
    routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    routes |= {(m, r.path) for r in app.routes for m in (getattr(r, "methods", None) or ()) if m != "HEAD"}
    disclosing = {
        ("GET", "/v1/citizens/{personal_id}"), ("POST", "/v1/citizens/verify"),
        ("POST", "/v1/citizens/verify-batch"), ("GET", "/v1/legacy/{legacy_id}"),
    }  # fmt: skip
    # NPD writes: route → (the scope it takes, a valid body).
    writing: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        ("POST", "/v1/civil-status/registrations"): ("civil.register", {
            "registrations": [{
                "record_id": "d1", "sector": "civil_status", "province": "008", "event": "death",
                "event_date": "2024-01-15", "registration_no": "KT-1", "personal_id": DUC.personal_id,
                "full_name": DUC.full_name, "date_of_birth": "1990-05-17", "gender": "male",
            }],
            "purpose": "p",
        }),
        ("POST", "/v1/residence/registrations"): ("residence.write", {
            "personal_id": DUC.personal_id, "province": "052", "since": "2024-01-01", "reference": "r1",
        }),
        ("POST", "/v1/residence/deregistrations"): ("residence.write", {
            "personal_id": DUC.personal_id, "on": "2024-01-01", "reference": "r2",
        }),
    }  # fmt: skip
    others = {
        ("GET", "/health"), ("GET", "/metrics"), ("POST", "/oauth/token"), ("GET", "/v1/audit"),
        ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"), ("GET", "/openapi.json"),
    }  # fmt: skip
    assert routes == disclosing | set(writing) | others
    # The OpenAPI document offers every scope a client can be given, the write scopes included.
    flows = app.openapi()["components"]["securitySchemes"]["OAuth2"]["flows"]
    assert set(flows["clientCredentials"]["scopes"]) == KNOWN_SCOPES

    async def scenario(c: httpx.AsyncClient) -> None:
        auditor = await bearer(c, "auditor")
        for method, path in sorted(others):
            await c.request(method, path, headers=auditor)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert (await c.request(method, "/v1/audit", headers=auditor)).status_code == 405
        streams = await bearer(c, "streams")  # every citizen scope it reads, neither write scope
        for (method, path), (scope, body) in sorted(writing.items()):
            for headers in (auditor, streams):
                refused = await c.request(method, path, json=body, headers=headers)
                assert refused.status_code == 403, (path, refused.text)
            assert scope in refused.json()["detail"], path
            assert f'scope="{scope}"' in refused.headers["WWW-Authenticate"], path
        assert app.state.audit.count() == 0

    run(app, scenario)


# --- the streams client -------------------------------------------------------------------------------


def test_client_fetches_caches_and_uses_tokens_against_the_app(app: FastAPI) -> None:
    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            metrics = WorkerMetrics("w", "a")
            client = NdxpClient(
                "http://ndxp.test",
                credentials=ClientCredentials("streams", SecretStr("streams-secret"), " ".join(STREAMS)),
                transport=httpx.ASGITransport(app=app),
                metrics=metrics,
            )
            for _ in range(3):
                found = await client.lookup_many([DUC.personal_id, DUC.legacy_id or ""], request_id="rid-1")
            assert found[DUC.personal_id] == found[DUC.legacy_id or ""]
            assert found[DUC.personal_id].full_name == DUC.full_name
            assert client.tokens is not None and client.tokens.fetched == 1  # cached
            await client.aclose()
            entries = app.state.audit.read(request_id="rid-1")
            assert len(entries) == 3  # one per call, one citizen each (asked by two IDs)
            assert entries[0].agency == "streams" and entries[0].fields == [
                "personal_id", "legacy_id", "full_name", "date_of_birth", "gender",
                "birth_province", "permanent_province", "status", "date_of_death",
            ]  # fmt: skip

    asyncio.run(scenario())


def test_client_refuses_to_decide_on_withheld_fields(app: FastAPI) -> None:
    async def scenario(scope: str) -> None:
        async with app.router.lifespan_context(app):
            client = NdxpClient(
                "http://ndxp.test",
                credentials=ClientCredentials("streams", SecretStr("streams-secret"), scope),
                transport=httpx.ASGITransport(app=app),
            )
            try:
                await client.lookup_many([DUC.personal_id])
            finally:
                await client.aclose()

    with pytest.raises(ConfigurationError, match=r"without \['citizen.status'\]"):
        asyncio.run(scenario("citizen.identity citizen.residence"))
    withheld = {"results": [{"query_id": "1", "found": True, "citizen": {}, "withheld": ["gender"]}]}
    with pytest.raises(ConfigurationError, match="withheld gender, which the outcome rules need"):
        NdxpClient._parse(withheld)
    with pytest.raises(ConfigurationError, match="refused client 'streams' a token"):
        asyncio.run(scenario_with_secret(app, "wrong"))


async def scenario_with_secret(app: FastAPI, secret: str) -> None:
    async with app.router.lifespan_context(app):
        credentials = ClientCredentials("streams", SecretStr(secret), "")
        client = NdxpClient(
            "http://ndxp.test", credentials=credentials, transport=httpx.ASGITransport(app=app)
        )
        try:
            await client.lookup_many([DUC.personal_id])
        finally:
            await client.aclose()


def scripted(
    steps: list[httpx.Response | Callable[[httpx.Request], httpx.Response]], seen: list[httpx.Request]
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps.pop(0)
        return step(request) if callable(step) else step

    return httpx.MockTransport(handler)


def token_answer(token: str, expires_in: int = 300) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "expires_in": expires_in, "scope": " ".join(STREAMS)}
    )


def empty_batch(request: httpx.Request) -> httpx.Response:
    ids = json.loads(request.content)["ids"]
    return httpx.Response(200, json={"results": [{"query_id": i, "found": False} for i in ids]})


def test_client_refreshes_once_on_401_and_honours_retry_after() -> None:
    seen: list[httpx.Request] = []
    steps: list[Any] = [
        token_answer("t1"),
        httpx.Response(401, json={"detail": "expired"}),
        token_answer("t2"),
        httpx.Response(429, headers={"Retry-After": "0.3"}, json={"detail": "slow down"}),
        empty_batch,
    ]
    metrics = WorkerMetrics("w", "a")
    client = NdxpClient(
        "http://ndxp.test",
        credentials=ClientCredentials("streams", SecretStr("s"), " ".join(STREAMS)),
        max_backoff_s=0.01,  # so only Retry-After can explain a 0.3 s wait
        transport=scripted(steps, seen),
        metrics=metrics,
    )

    async def go() -> float:
        started = time.perf_counter()
        await client.lookup_many(["008090123456"])
        await client.aclose()
        return time.perf_counter() - started

    assert asyncio.run(go()) >= 0.3
    assert [r.url.path for r in seen] == [
        "/oauth/token", "/v1/citizens/verify-batch", "/oauth/token", "/v1/citizens/verify-batch",
        "/v1/citizens/verify-batch",
    ]  # fmt: skip
    batches = [r for r in seen if r.url.path == "/v1/citizens/verify-batch"]
    assert [r.headers["Authorization"] for r in batches] == ["Bearer t1", "Bearer t2", "Bearer t2"]
    assert seen[0].headers["Authorization"].startswith("Basic ")
    assert seen[0].content == b"grant_type=client_credentials&scope=" + "+".join(STREAMS).encode()
    reg = metrics.registry
    assert reg.get_sample_value("popsync_ndxp_errors_total", {"kind": "401"}) == 1
    assert reg.get_sample_value("popsync_ndxp_errors_total", {"kind": "429"}) == 1
    assert reg.get_sample_value("popsync_ndxp_retries_total") == 1


def test_token_source_refreshes_before_expiry() -> None:
    seen: list[httpx.Request] = []
    clock = Clock(0.0)

    async def go() -> list[str]:
        async with httpx.AsyncClient(base_url="http://ndxp.test", transport=scripted(
            [token_answer("t1", 100), token_answer("t2", 100)], seen)) as http:  # fmt: skip
            source = TokenSource(http, ClientCredentials("c", SecretStr("s")), clock=clock)
            tokens = [await source.token()]
            clock.now = 79.0  # 100 s token, refreshed 20 s (a fifth) early
            tokens.append(await source.token())
            clock.now = 80.0
            tokens += await asyncio.gather(source.token(), source.token())  # one fetch for both
            return tokens

    assert asyncio.run(go()) == ["t1", "t1", "t2", "t2"]
    assert len(seen) == 2


def test_api_key_alone_still_works_and_credentials_come_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[httpx.Request] = []
    client = NdxpClient("http://ndxp.test", "legacy-key", transport=scripted([empty_batch], seen))
    asyncio.run(client.lookup_many(["008090123456"]))
    assert seen[0].headers["X-API-Key"] == "legacy-key" and "Authorization" not in seen[0].headers
    assert client.tokens is None

    from streams import config

    monkeypatch.setenv("STREAMS_NDXP_CLIENT_ID", "streams")
    monkeypatch.setenv("STREAMS_NDXP_CLIENT_SECRET", "from-env")
    config.get_settings.cache_clear()
    try:
        built = NdxpClient("http://ndxp.test", "")  # how streams.worker builds it with no API key set
        assert built.tokens is not None
        assert NdxpClient.from_settings(config.get_settings()).tokens is not None
        monkeypatch.delenv("STREAMS_NDXP_CLIENT_ID")
        config.get_settings.cache_clear()
        with pytest.raises(ConfigurationError, match="no NDXP credentials"):
            NdxpClient("http://ndxp.test", "")
    finally:
        config.get_settings.cache_clear()
    assert REQUIRED_SCOPES == STREAMS and set(STREAMS) <= set(CITIZEN_SCOPES)


def test_retry_after_values() -> None:
    assert retry_after_s("3") == 3.0 and retry_after_s("0.5") == 0.5 and retry_after_s("-1") == 0.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None
    from datetime import UTC, datetime

    fixed = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert retry_after_s("Mon, 01 Jan 2024 00:00:07 GMT", now=lambda: fixed) == 7.0
