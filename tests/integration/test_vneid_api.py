"""The mock VNeID's account API on a real socket: lifecycle over HTTP, tokens and scopes, the audited
look-up, logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks.common.audit import AuditLog
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.sqlite import SqliteConnections
from mocks.vneid.config import RelyingParty, VneidSettings
from mocks.vneid.exceptions import ServerStartError
from mocks.vneid.oidc.pkce import s256
from mocks.vneid.server import VneidServer
from schemas.citizen import Citizen
from schemas.personal_id import make_personal_id

pytestmark = pytest.mark.integration

CLIENTS = {
    "police-052": {"secret": "test-police-052", "scopes": ["account.officer"]},
    "dvc-052": {"secret": "test-dvc-052", "scopes": ["account.status", "account.identity"]},
}
REDIRECT = "http://127.0.0.1:9/callback"
CITIZENS = [
    Citizen(
        personal_id=make_personal_id("052", "male", 1975, 500 + n), full_name=f"Phạm Văn Bình {n}",
        date_of_birth=f"1975-07-{n + 1:02d}", gender="male", permanent_province="052",
    )
    for n in range(12)
]  # fmt: skip


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vneid-api")
    npd = PopulationDB.create(path / "npd.sqlite3")
    npd.load(CITIZENS)
    npd.close()
    return path


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[VneidServer]:
    settings = VneidSettings(
        database_url=f"sqlite:///{tmp / 'vneid.sqlite3'}",
        population_url=f"sqlite:///{tmp / 'npd.sqlite3'}",
        clients=CLIENTS,
        api_keys={},
        officer_keys={},
        relying_parties={"dvc-052": RelyingParty(redirect_uris=[REDIRECT])},
    )
    with VneidServer(settings) as running:
        yield running


def bearer(server: VneidServer, client_id: str) -> dict[str, str]:
    """An `Authorization` header with a fresh token of `client_id` (client credentials)."""
    response = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, str(CLIENTS[client_id]["secret"])),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def officer(server: VneidServer) -> dict[str, str]:
    return bearer(server, "police-052")


@pytest.fixture(scope="module")
def agency(server: VneidServer) -> dict[str, str]:
    return bearer(server, "dvc-052")


@pytest.fixture(scope="module")
def citizens() -> Iterator[Citizen]:
    return iter(CITIZENS)


def application(citizen: Citizen, level: int = 1, **changes: Any) -> dict[str, Any]:
    body = {
        "personal_id": citizen.personal_id, "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth.isoformat(), "gender": citizen.gender,
        "province": "052", "level": level,
    }  # fmt: skip
    return {**body, **changes}


def post(server: VneidServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", **kwargs)


def test_level_1_lifecycle_over_http_with_clear_conflicts(
    server: VneidServer, citizens: Iterator[Citizen], officer: dict[str, str]
) -> None:
    citizen = next(citizens)
    pid = citizen.personal_id
    created = post(server, "/v1/accounts", json=application(citizen), headers=officer)
    assert created.status_code == 201 and created.json()["status"] == "applied"
    again = post(server, "/v1/accounts", json=application(citizen, level=2), headers=officer)
    assert again.status_code == 409 and "already has an e-ID account" in again.json()["detail"]

    activate_early = post(
        server, f"/v1/accounts/{pid}/activate", json={"activation_code": "X", "passcode": "111111"}
    )
    # No credentials on this route: without the approval's code it tells nothing of the account.
    assert activate_early.status_code == 403
    assert "status" not in activate_early.text and "applied" not in activate_early.text
    approved = post(server, f"/v1/accounts/{pid}/approve", headers=officer)
    assert approved.status_code == 200 and approved.json()["account"]["status"] == "approved"
    twice = post(server, f"/v1/accounts/{pid}/approve", headers=officer)
    assert twice.status_code == 409 and "only an applied account can be approved" in twice.json()["detail"]
    code = approved.json()["activation_code"]
    wrong = post(
        server, f"/v1/accounts/{pid}/activate", json={"activation_code": "WRONG", "passcode": "111111"}
    )
    assert wrong.status_code == 403
    done = post(server, f"/v1/accounts/{pid}/activate", json={"activation_code": code, "passcode": "111111"})
    assert done.status_code == 200 and done.json()["status"] == "activated"
    assert post(server, f"/v1/accounts/{pid}/unlock", headers=officer).status_code == 409


def test_level_2_needs_an_officer_and_the_npd_must_agree(
    server: VneidServer, citizens: Iterator[Citizen], officer: dict[str, str]
) -> None:
    citizen = next(citizens)
    pid = citizen.personal_id
    assert (
        post(
            server, "/v1/accounts", json=application(citizen, 2, gender="female"), headers=officer
        ).status_code
        == 201
    )
    automatic = post(server, f"/v1/accounts/{pid}/approve", headers=officer)
    assert automatic.status_code == 409 and "verify-in-person" in automatic.json()["detail"]
    mismatch = post(server, f"/v1/accounts/{pid}/verify-in-person", headers=officer)
    assert mismatch.status_code == 422 and mismatch.json()["fields"] == ["gender"]

    other = next(citizens)
    assert post(server, "/v1/accounts", json=application(other, 2), headers=officer).status_code == 201
    verified = post(server, f"/v1/accounts/{other.personal_id}/verify-in-person", headers=officer)
    assert verified.status_code == 200
    assert (verified.json()["account"]["status"], verified.json()["account"]["level"]) == ("approved", 2)


def test_tokens_scopes_and_validation(
    server: VneidServer, citizens: Iterator[Citizen], officer: dict[str, str], agency: dict[str, str]
) -> None:
    citizen = next(citizens)
    pid = citizen.personal_id
    assert post(server, "/v1/accounts", json=application(citizen)).status_code == 401
    assert (
        post(
            server, "/v1/accounts", json=application(citizen), headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    forbidden = post(server, f"/v1/accounts/{pid}/lock", json={"reason": "x"}, headers=agency)
    assert forbidden.status_code == 403 and "account.officer" in forbidden.json()["detail"]
    bad = post(server, "/v1/accounts", json=application(citizen, province="999"), headers=officer)
    assert bad.status_code == 422
    assert httpx.get(f"{server.base_url}/v1/accounts/{pid}", headers=agency).status_code == 422  # no purpose


def test_agency_lookup_needs_a_token_and_is_audited(
    server: VneidServer,
    tmp: Path,
    citizens: Iterator[Citizen],
    officer: dict[str, str],
    agency: dict[str, str],
) -> None:
    citizen = next(citizens)
    url = f"{server.base_url}/v1/accounts/{citizen.personal_id}"
    assert httpx.get(url, params={"purpose": "x"}).status_code == 401
    missing = httpx.get(
        url, params={"purpose": "check before filing"}, headers={**agency, "X-Request-ID": "req-missing"}
    )
    assert missing.status_code == 404
    post(server, "/v1/accounts", json=application(citizen), headers=officer)
    post(server, f"/v1/accounts/{citizen.personal_id}/approve", headers=officer)
    found = httpx.get(
        url, params={"purpose": "hồ sơ trực tuyến"}, headers={**agency, "X-Request-ID": "req-found"}
    )
    assert found.status_code == 200 and found.headers["x-request-id"] == "req-found"
    body = found.json()
    assert (body["status"], body["level"], body["province"]) == ("approved", 1, "052")
    assert body["approved_at"] and "full_name" not in body

    connections = SqliteConnections(tmp / "vneid.sqlite3")
    try:
        entries = AuditLog(connections).read(personal_id=citizen.personal_id)
    finally:
        connections.close()
    assert [(e.agency, e.purpose, e.request_id, e.endpoint) for e in entries] == [
        ("dvc-052", "hồ sơ trực tuyến", "req-found", "accounts.read"),
        ("police-052", "approve", entries[1].request_id, "accounts.approve"),
        ("police-052", "apply", entries[2].request_id, "accounts.apply"),
        ("dvc-052", "check before filing", "req-missing", "accounts.read"),
    ]
    assert "status" in entries[0].fields and entries[3].fields == ["exists"]


def test_no_personal_id_or_secret_in_the_server_logs(
    server: VneidServer,
    citizens: Iterator[Citizen],
    caplog: pytest.LogCaptureFixture,
    officer: dict[str, str],
    agency: dict[str, str],
) -> None:
    citizen = next(citizens)
    pid = citizen.personal_id
    # A server started earlier in this process with access_log=False turns uvicorn's access logger's
    # propagation off for the whole process; the capture needs it on.
    access = logging.getLogger("uvicorn.access")
    previous, access.propagate = access.propagate, True
    try:
        _drive_and_check(server, citizen, pid, caplog, officer, agency)
    finally:
        access.propagate = previous


def _drive_and_check(
    server: VneidServer,
    citizen: Citizen,
    pid: str,
    caplog: pytest.LogCaptureFixture,
    officer: dict[str, str],
    agency: dict[str, str],
) -> None:
    with caplog.at_level(logging.DEBUG):
        post(server, "/v1/accounts", json=application(citizen), headers=officer)
        code = post(server, f"/v1/accounts/{pid}/approve", headers=officer).json()["activation_code"]
        post(server, f"/v1/accounts/{pid}/activate", json={"activation_code": code, "passcode": "424242"})
        httpx.get(f"{server.base_url}/v1/accounts/{pid}", params={"purpose": "p"}, headers=agency)
        httpx.get(
            f"{server.base_url}/v1/accounts/{CITIZENS[-1].personal_id}",
            params={"purpose": "p"},
            headers=agency,
        )
        query = {
            "response_type": "code", "client_id": "dvc-052", "redirect_uri": REDIRECT, "scope": "openid",
            "code_challenge": s256("v" * 43), "code_challenge_method": "S256",
        }  # fmt: skip
        post(server, "/authorize", params=query, data={"personal_id": pid, "passcode": "424242"})
        post(server, "/authorize", params=query, data={"personal_id": pid, "passcode": "000000"})
    # httpx logs the test's own requests (the client side, with the URL as sent): not the server's logs.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "uvicorn.access" for r in server_side)  # the access log was on and captured
    text = "\n".join(r.getMessage() for r in server_side)
    assert re.search(r"/v1/accounts/052\*+\d\d", text)  # the paths are there, masked
    tokens = (officer["Authorization"].split()[1], agency["Authorization"].split()[1])
    for secret in (pid, CITIZENS[-1].personal_id, code, "424242", citizen.full_name, *tokens):
        assert secret not in text


def test_a_server_that_cannot_open_its_database_says_why(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    settings = VneidSettings(database_url=f"sqlite:///{tmp_path / 'taken'}", access_log=False)
    with pytest.raises(ServerStartError, match="stopped while starting"):
        VneidServer(settings, startup_timeout=10).start()
