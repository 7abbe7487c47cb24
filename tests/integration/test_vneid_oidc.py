"""The citizen log-in of the mock VNeID, driven by a real OIDC client library over a real socket.

The relying party is authlib's OAuth 2.0/OIDC client app (the base of its Flask and Django clients) on
its requests `OAuth2Session` (authlib's httpx client now warns it is deprecated in favour of httpx2).
It reads the discovery document, sends PKCE S256, exchanges the code, verifies the ID token's signature
against the JWKS and its claims (iss, aud, exp, nonce, at_hash), and calls /userinfo.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client import (
    BaseApp,
    FrameworkIntegration,
    OAuth2Mixin,
    OAuthError,
    OpenIDMixin,
)
from authlib.integrations.requests_client import OAuth2Session

from mocks.ndxp.db import PopulationDB
from mocks.vneid.config import RelyingParty as Registration
from mocks.vneid.config import VneidSettings
from mocks.vneid.server import VneidServer
from schemas.citizen import Citizen
from schemas.personal_id import make_personal_id

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:9/callback"  # never called: the test reads the redirect itself
SECRET = "bhxh-client-secret"
PASSCODE = "135790"
CITIZENS = [
    Citizen(
        personal_id=make_personal_id("008", "female", 1988, n), full_name=f"Trần Thị Hoa {n}",
        date_of_birth=f"1988-03-{n + 1:02d}", gender="female", permanent_province="008",
    )
    for n in range(20)
]  # fmt: skip


class OidcClient(OAuth2Mixin, OpenIDMixin, BaseApp):  # type: ignore[misc]  # authlib is untyped
    """authlib's framework-independent OIDC client app on its requests OAuth2Session."""

    client_cls = OAuth2Session


def relying_party(base_url: str, client_id: str = "dvc-008", auth_method: str = "none") -> OidcClient:
    return OidcClient(
        FrameworkIntegration("vneid"),
        name="vneid",
        client_id=client_id,
        client_secret=SECRET if auth_method != "none" else None,
        server_metadata_url=f"{base_url}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": auth_method,
        },
    )


def settings_for(tmp: Path, **overrides: Any) -> VneidSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'vneid.sqlite3'}",
        "population_url": f"sqlite:///{tmp / 'npd.sqlite3'}",
        "api_keys": {"dvc-008": "test-dvc-008"},
        "officer_keys": {},
        "clients": {"police-008": {"secret": "test-police-008", "scopes": ["account.officer"]}},
        "relying_parties": {
            "dvc-008": Registration(redirect_uris=[REDIRECT]),
            "bhxh-portal": Registration(redirect_uris=[REDIRECT], client_secret=SECRET),
        },
    }
    values.update(overrides)
    return VneidSettings(**values)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vneid")
    npd = PopulationDB.create(path / "npd.sqlite3")
    npd.load(CITIZENS)
    npd.close()
    return path


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[VneidServer]:
    with VneidServer(settings_for(tmp)) as running:
        yield running


@pytest.fixture(scope="module")
def citizens() -> Iterator[Citizen]:
    return iter(CITIZENS)  # each test takes fresh citizens, so the module's accounts never collide


def officer(base: str) -> dict[str, str]:
    """The police unit's `Authorization` header: a token for its client credentials."""
    grant = {"grant_type": "client_credentials"}
    token = httpx.post(f"{base}/oauth/token", data=grant, auth=("police-008", "test-police-008"))
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def account(base: str, citizen: Citizen, level: int, passcode: str = PASSCODE) -> None:
    """Apply, approve (level 1) or verify in person (level 2), activate: the police's and citizen's steps."""
    body = {
        "personal_id": citizen.personal_id, "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth.isoformat(), "gender": citizen.gender,
        "province": "008", "level": level,
    }  # fmt: skip
    police = officer(base)
    assert httpx.post(f"{base}/v1/accounts", json=body, headers=police).status_code == 201
    step = "approve" if level == 1 else "verify-in-person"
    approval = httpx.post(f"{base}/v1/accounts/{citizen.personal_id}/{step}", headers=police)
    assert approval.status_code == 200, approval.text
    code = approval.json()["activation_code"]
    activation = {"activation_code": code, "passcode": passcode}
    assert (
        httpx.post(f"{base}/v1/accounts/{citizen.personal_id}/activate", json=activation).status_code == 200
    )


def log_in(browser: httpx.Client, url: str, personal_id: str, passcode: str = PASSCODE) -> dict[str, str]:
    """What a citizen does in the browser: open the log-in page, fill the form in, submit it. Returns the
    redirect's query (code and state, or error)."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    hidden = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)
    }
    answer = browser.post(
        str(page.url.copy_with(query=None)),
        data={**hidden, "personal_id": personal_id, "passcode": passcode},
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.mark.parametrize("level", [1, 2])
def test_an_oidc_client_logs_a_citizen_in_and_reads_the_level(
    server: VneidServer, citizens: Iterator[Citizen], level: int
) -> None:
    citizen = next(citizens)
    account(server.base_url, citizen, level)
    rp = relying_party(server.base_url)
    request = rp.create_authorization_url(REDIRECT)  # state, nonce and PKCE verifier made by authlib
    assert "code_challenge_method=S256" in request["url"]
    with httpx.Client() as browser:
        answer = log_in(browser, request["url"], citizen.personal_id)
    assert answer["state"] == request["state"]
    token = rp.fetch_access_token(REDIRECT, code=answer["code"], code_verifier=request["code_verifier"])
    claims = rp.parse_id_token(token, nonce=request["nonce"])  # signature (JWKS) and claims checked
    assert (claims["loa"], claims["acr"], claims["aud"]) == (str(level), str(level), "dvc-008")
    assert claims["iss"] == server.base_url
    assert citizen.personal_id not in claims["sub"] and citizen.personal_id not in token["id_token"]
    info = rp.userinfo(token=token)
    assert (info["sub"], info["loa"], info["name"]) == (claims["sub"], str(level), citizen.full_name)


def test_a_confidential_client_sees_its_own_pairwise_subject(
    server: VneidServer, citizens: Iterator[Citizen]
) -> None:
    citizen = next(citizens)
    account(server.base_url, citizen, 1)
    subjects = []
    for client_id, method in [
        ("dvc-008", "none"),
        ("bhxh-portal", "client_secret_basic"),
        ("dvc-008", "none"),
    ]:
        rp = relying_party(server.base_url, client_id, method)
        request = rp.create_authorization_url(REDIRECT)
        with httpx.Client() as browser:
            answer = log_in(browser, request["url"], citizen.personal_id)
        token = rp.fetch_access_token(REDIRECT, code=answer["code"], code_verifier=request["code_verifier"])
        subjects.append(rp.parse_id_token(token, nonce=request["nonce"])["sub"])
    assert subjects[0] == subjects[2] != subjects[1]


def test_wrong_passcode_and_unknown_citizen_are_access_denied_with_the_state(
    server: VneidServer, citizens: Iterator[Citizen]
) -> None:
    citizen = next(citizens)
    account(server.base_url, citizen, 1)
    rp = relying_party(server.base_url)
    with httpx.Client() as browser:
        for personal_id, passcode in [
            (citizen.personal_id, "000000"),
            (next(citizens).personal_id, PASSCODE),
        ]:
            request = rp.create_authorization_url(REDIRECT)
            answer = log_in(browser, request["url"], personal_id, passcode)
            assert (answer["error"], answer["state"]) == ("access_denied", request["state"])
            assert "code" not in answer and "wrong personal ID or passcode" in answer["error_description"]


def test_a_locked_account_cannot_log_in_and_its_tokens_stop_working(
    server: VneidServer, citizens: Iterator[Citizen]
) -> None:
    citizen = next(citizens)
    account(server.base_url, citizen, 2)
    rp = relying_party(server.base_url)
    request = rp.create_authorization_url(REDIRECT)
    with httpx.Client() as browser:
        answer = log_in(browser, request["url"], citizen.personal_id)
        token = rp.fetch_access_token(REDIRECT, code=answer["code"], code_verifier=request["code_verifier"])
        lock = {"reason": "phone reported stolen"}
        assert httpx.post(
            f"{server.base_url}/v1/accounts/{citizen.personal_id}/lock",
            json=lock,
            headers=officer(server.base_url),
        ).is_success
        refused = log_in(browser, rp.create_authorization_url(REDIRECT)["url"], citizen.personal_id)
        assert refused["error"] == "access_denied" and "locked" in refused["error_description"]
        userinfo = httpx.get(
            f"{server.base_url}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert userinfo.status_code == 401 and 'error="invalid_token"' in userinfo.headers["www-authenticate"]

        assert httpx.post(
            f"{server.base_url}/v1/accounts/{citizen.personal_id}/unlock", headers=officer(server.base_url)
        ).is_success
        assert "code" in log_in(browser, rp.create_authorization_url(REDIRECT)["url"], citizen.personal_id)


def test_pkce_verifier_is_checked_and_a_code_is_used_once(
    server: VneidServer, citizens: Iterator[Citizen]
) -> None:
    citizen = next(citizens)
    account(server.base_url, citizen, 1)
    rp = relying_party(server.base_url)
    request = rp.create_authorization_url(REDIRECT)
    with httpx.Client() as browser:
        answer = log_in(browser, request["url"], citizen.personal_id)
    wrong_verifier = request["code_verifier"][:-2] + (
        "AA" if not request["code_verifier"].endswith("AA") else "BB"
    )
    with pytest.raises(OAuthError) as info:
        rp.fetch_access_token(REDIRECT, code=answer["code"], code_verifier=wrong_verifier)
    assert info.value.error == "invalid_grant" and "code_verifier" in info.value.description
    with pytest.raises(OAuthError) as again:  # the code was spent by the failed attempt
        rp.fetch_access_token(REDIRECT, code=answer["code"], code_verifier=request["code_verifier"])
    assert again.value.error == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "PKCE is required"),
        ({"code_challenge_method": "plain"}, "must be S256"),
    ],
)
def test_an_authorization_request_without_s256_pkce_is_refused(
    server: VneidServer, change: dict[str, str | None], description: str
) -> None:
    query = {
        "response_type": "code", "client_id": "dvc-008", "redirect_uri": REDIRECT, "scope": "openid",
        "state": "xyz", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }  # fmt: skip
    params = {k: v for k, v in {**query, **change}.items() if v is not None}
    answer = httpx.get(f"{server.base_url}/authorize", params=params)
    assert answer.status_code == 302
    sent = parse_qs(urlsplit(answer.headers["location"]).query)
    assert (sent["error"], sent["state"]) == (["invalid_request"], ["xyz"])
    assert description in sent["error_description"][0]


def test_an_unregistered_redirect_uri_is_never_redirected_to(server: VneidServer) -> None:
    answer = httpx.get(
        f"{server.base_url}/authorize",
        params={"response_type": "code", "client_id": "dvc-008", "redirect_uri": "https://evil.example/cb"},
    )
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "is not registered" in answer.text


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer not-a-token"])
def test_userinfo_without_a_valid_token_is_401_with_an_ascii_challenge(
    server: VneidServer, method: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.request(method, f"{server.base_url}/userinfo", headers=headers)
    # Its description once held a "…", which no header can carry: the answer was a 500.
    assert answer.status_code == 401, answer.text
    challenge = answer.headers["www-authenticate"]
    assert challenge.isascii() and challenge.startswith('Bearer realm="vneid", error="invalid_')
    assert answer.json()["error"] in ("invalid_request", "invalid_token")


def test_a_level_2_service_refuses_a_level_1_account(
    server: VneidServer, citizens: Iterator[Citizen]
) -> None:
    citizen = next(citizens)
    account(server.base_url, citizen, 1)
    rp = relying_party(server.base_url)
    request = rp.create_authorization_url(REDIRECT, acr_values="2")
    with httpx.Client() as browser:
        answer = log_in(browser, request["url"], citizen.personal_id)
    assert answer["error"] == "unmet_authentication_requirements" and "level 1" in answer["error_description"]


def test_injected_login_failures_answer_503_with_retry_after_and_are_seedable(tmp: Path) -> None:
    def statuses(path: Path) -> list[int]:
        path.mkdir()
        settings = settings_for(path, login_error_rate=0.5, fault_seed=11, population_url=None)
        with VneidServer(settings) as flaky, httpx.Client() as client:
            answers = [client.post(f"{flaky.base_url}/token", data={}) for _ in range(30)]
            assert client.get(f"{flaky.base_url}/health").status_code == 200  # not a log-in: never fails
            assert all(a.headers["retry-after"] == "1" for a in answers if a.status_code == 503)
            flaky.faults.error_rate = 1.0
            assert client.get(f"{flaky.base_url}/authorize").status_code == 503
            return [a.status_code for a in answers]

    first, second = statuses(tmp / "flaky-1"), statuses(tmp / "flaky-2")
    assert first == second  # the same seed fails the same requests
    assert set(first) == {400, 503}  # 400: the empty token request, when it got through
