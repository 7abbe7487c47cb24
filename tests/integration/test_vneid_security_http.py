"""Agency security of the VNeID mock on a real socket: no token → 401, scopes withhold fields, a tight rate
limit → 429 with Retry-After, one audit entry per disclosure with the request ID, auditors only, TLS."""

from __future__ import annotations

import sqlite3
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tls_helpers import self_signed

from mocks.vneid.config import VneidSettings
from mocks.vneid.server import VneidServer
from schemas.citizen import Citizen
from schemas.personal_id import make_personal_id

pytestmark = pytest.mark.integration

CLIENTS: dict[str, dict[str, Any]] = {
    "lgsp-008": {"secret": "lgsp-secret-008", "scopes": ["account.status", "account.identity"]},
    "bhxh-008": {"secret": "bhxh-secret-008", "scopes": ["account.status"], "rate_per_s": 0.5, "burst": 2},
    # Its own bucket for the rate-limit test: no other test's requests may have spent it.
    "limited-008": {
        "secret": "limited-secret-008",
        "scopes": ["account.status"],
        "rate_per_s": 0.5,
        "burst": 2,
    },
    "police-008": {"secret": "police-secret-008", "scopes": ["account.officer"]},
    "c06-audit": {"secret": "audit-secret-c06", "scopes": ["audit.read"]},
}
CITIZENS = [
    Citizen(
        personal_id=make_personal_id("008", "male", 1980, 700 + n), full_name=f"Lý Văn Minh {n}",
        date_of_birth="1980-01-02", gender="male", permanent_province="008",
    )
    for n in range(3)
]  # fmt: skip
NPD = {c.personal_id: c for c in CITIZENS}


def settings_for(tmp: Path, **overrides: Any) -> VneidSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'vneid.sqlite3'}",
        "clients": CLIENTS,
        "api_keys": {},
        "officer_keys": {},
        "access_log": False,
    }
    return VneidSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VneidServer]:
    tmp = tmp_path_factory.mktemp("vneid-security")
    with VneidServer(settings_for(tmp), citizens=lambda ids: {i: NPD[i] for i in ids if i in NPD}) as running:
        yield running


def bearer(base_url: str, client_id: str, verify: Any = True) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, CLIENTS[client_id]["secret"]),
        verify=verify,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def open_account(base_url: str, citizen: Citizen) -> None:
    police = bearer(base_url, "police-008")
    body = {
        "personal_id": citizen.personal_id, "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth.isoformat(), "gender": citizen.gender,
        "province": "008", "level": 1,
    }  # fmt: skip
    assert httpx.post(f"{base_url}/v1/accounts", json=body, headers=police).status_code == 201
    assert httpx.post(f"{base_url}/v1/accounts/{citizen.personal_id}/approve", headers=police).is_success


def audit(base_url: str, **filters: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/v1/audit", params=filters, headers=bearer(base_url, "c06-audit"))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_no_token_is_401_and_the_wrong_scope_withholds_or_refuses(server: VneidServer) -> None:
    citizen = CITIZENS[0]
    open_account(server.base_url, citizen)
    url = f"{server.base_url}/v1/accounts/{citizen.personal_id}"
    anonymous = httpx.get(url, params={"purpose": "p"})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert httpx.post(f"{url}/lock", json={"reason": "r"}).status_code == 401

    sector = httpx.get(url, params={"purpose": "p"}, headers=bearer(server.base_url, "bhxh-008"))
    assert sector.status_code == 200
    assert sector.json()["withheld"] == ["personal_id"] and "personal_id" not in sector.json()
    province = httpx.get(url, params={"purpose": "p"}, headers=bearer(server.base_url, "lgsp-008"))
    assert province.json()["personal_id"] == citizen.personal_id and province.json()["withheld"] == []

    not_police = httpx.post(f"{url}/lock", json={"reason": "r"}, headers=bearer(server.base_url, "lgsp-008"))
    assert not_police.status_code == 403 and "insufficient_scope" in not_police.headers["www-authenticate"]
    assert (
        httpx.get(f"{server.base_url}/v1/audit", headers=bearer(server.base_url, "lgsp-008")).status_code
        == 403
    )


def test_every_disclosure_is_one_entry_with_its_request_id(server: VneidServer, tmp_path: Path) -> None:
    citizen = CITIZENS[1]
    open_account(server.base_url, citizen)
    url = f"{server.base_url}/v1/accounts/{citizen.personal_id}"
    agency = bearer(server.base_url, "lgsp-008")
    for n in range(3):
        answer = httpx.get(url, params={"purpose": "hồ sơ"}, headers={**agency, "X-Request-ID": f"trace-{n}"})
        assert answer.headers["x-request-id"] == f"trace-{n}"
    httpx.get(url, params={"purpose": "p"})  # 401: audited nowhere
    entries = audit(server.base_url, personal_id=citizen.personal_id)
    assert [(e["agency"], e["endpoint"], e["request_id"]) for e in entries] == [
        ("lgsp-008", "accounts.read", "trace-2"),
        ("lgsp-008", "accounts.read", "trace-1"),
        ("lgsp-008", "accounts.read", "trace-0"),
        ("police-008", "accounts.approve", entries[3]["request_id"]),
        ("police-008", "accounts.apply", entries[4]["request_id"]),
    ]
    assert audit(server.base_url, request_id="trace-1", agency="lgsp-008")[0]["purpose"] == "hồ sơ"

    # Nothing but the disclosures writes the audit: the database itself refuses changes.
    conn = sqlite3.connect(server.settings.database_url.removeprefix("sqlite:///"))
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET personal_id = '000000000000'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit WHERE request_id = 'trace-0'")
    finally:
        conn.close()
    assert len(audit(server.base_url, personal_id=citizen.personal_id)) == 5


def test_over_the_limit_is_429_with_retry_after(server: VneidServer) -> None:
    citizen = CITIZENS[2]
    open_account(server.base_url, citizen)
    url = f"{server.base_url}/v1/accounts/{citizen.personal_id}"
    sector = bearer(server.base_url, "limited-008")  # 0.5 requests/s, burst 2
    before = len(audit(server.base_url, agency="limited-008", personal_id=citizen.personal_id))
    codes = [httpx.get(url, params={"purpose": "p"}, headers=sector) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].headers["retry-after"] == "2" and "rate limit" in codes[2].json()["detail"]
    after = audit(server.base_url, agency="limited-008", personal_id=citizen.personal_id)
    assert len(after) == before + 2  # the refused request disclosed nothing


def test_tls_on(tmp_path: Path) -> None:
    ca, certfile, keyfile = self_signed(tmp_path)
    with VneidServer(settings_for(tmp_path, tls_certfile=certfile, tls_keyfile=keyfile)) as secure:
        url = secure.base_url
        assert url.startswith("https://")
        verify = ssl.create_default_context(cafile=str(ca))
        headers = bearer(url, "lgsp-008", verify=verify)
        missing = httpx.get(
            f"{url}/v1/accounts/008080000001", params={"purpose": "p"}, headers=headers, verify=verify
        )
        assert missing.status_code == 404
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/health")  # the system's CAs do not know this server
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url.replace("https://", "http://") + "/health")  # no plain HTTP on the TLS port
