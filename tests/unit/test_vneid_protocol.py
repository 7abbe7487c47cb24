"""Unit tests of the OIDC pieces: PKCE, authorization requests, subjects and claims, codes, keys, clients."""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from mocks.vneid.accounts import open_accounts
from mocks.vneid.config import RelyingParty, VneidSettings
from mocks.vneid.exceptions import OidcError
from mocks.vneid.matching import Applicant
from mocks.vneid.oidc import pkce
from mocks.vneid.oidc.grants import CodeGrant, GrantStore
from mocks.vneid.oidc.keys import SigningKey
from mocks.vneid.oidc.provider import OidcProvider
from mocks.vneid.oidc.requests import parse_authorization_request, with_query
from mocks.vneid.oidc.tokens import at_hash, id_token_claims, pairwise_subject
from mocks.vneid.service import AccountService

pytestmark = pytest.mark.unit

# RFC 7636, appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "https://dvc.example/cb?tab=1"
CLIENTS = {"dvc": RelyingParty(redirect_uris=[REDIRECT])}
GOOD = {
    "response_type": "code", "client_id": "dvc", "redirect_uri": REDIRECT, "scope": "openid profile email",
    "state": "s1", "nonce": "n1", "code_challenge": RFC_CHALLENGE, "code_challenge_method": "S256",
    "acr_values": "2 9",
}  # fmt: skip


def test_pkce_s256_matches_rfc_7636() -> None:
    assert pkce.s256(RFC_VERIFIER) == RFC_CHALLENGE
    assert pkce.verify(RFC_VERIFIER, RFC_CHALLENGE)
    assert not pkce.verify(RFC_VERIFIER[:-1] + "Y", RFC_CHALLENGE)
    assert not pkce.verify("too-short", pkce.s256("too-short"))  # under 43 characters


def test_a_good_request_is_read_with_only_known_scopes_and_levels() -> None:
    request = parse_authorization_request(GOOD, CLIENTS)
    assert (request.scope, request.acr_values, request.state, request.nonce) == (
        ("openid", "profile"),
        ("2",),
        "s1",
        "n1",
    )
    assert request.redirect(code="c") == "https://dvc.example/cb?tab=1&code=c&state=s1"


@pytest.mark.parametrize(
    ("change", "error", "redirect"),
    [
        ({"client_id": None}, "invalid_request", False),
        ({"client_id": "nobody"}, "invalid_request", False),
        ({"redirect_uri": None}, "invalid_request", False),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request", False),
        ({"redirect_uri": "https://dvc.example/cb"}, "invalid_request", False),  # exact match only
        ({"response_type": "token"}, "unsupported_response_type", True),
        ({"scope": "profile"}, "invalid_scope", True),
        ({"code_challenge": None}, "invalid_request", True),
        ({"code_challenge_method": "plain"}, "invalid_request", True),
        ({"code_challenge_method": None}, "invalid_request", True),  # RFC 7636's default is plain
        ({"code_challenge": "short"}, "invalid_request", True),
        ({"prompt": "none"}, "login_required", True),
    ],
)
def test_bad_requests_fail_in_order_and_redirect_only_when_safe(
    change: dict[str, str | None], error: str, redirect: bool
) -> None:
    params = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(OidcError) as info:
        parse_authorization_request(params, CLIENTS)
    assert (info.value.error, info.value.redirect) == (error, redirect)


def test_with_query_keeps_the_existing_query_and_drops_none() -> None:
    assert (
        with_query("https://a.example/cb", {"code": "x y", "state": None}) == "https://a.example/cb?code=x+y"
    )
    assert with_query("https://a.example/cb?a=1", {}) == "https://a.example/cb?a=1"


def test_pairwise_subjects_are_stable_per_sector_and_hide_the_account() -> None:
    salt = b"salt"
    one = pairwise_subject(salt, "dvc", "acc-1")
    assert one == pairwise_subject(salt, "dvc", "acc-1")
    assert one != pairwise_subject(salt, "bhxh", "acc-1") and one != pairwise_subject(
        b"other", "dvc", "acc-1"
    )
    assert "acc-1" not in one and len(one) == 43


def test_at_hash_is_the_left_half_of_sha256() -> None:
    digest = hashlib.sha256(b"token").digest()[:16]
    assert at_hash("token") == base64.urlsafe_b64encode(digest).decode().rstrip("=")


def grant(**changes: Any) -> CodeGrant:
    fields: dict[str, Any] = {
        "client_id": "dvc", "redirect_uri": REDIRECT, "code_challenge": RFC_CHALLENGE, "nonce": "n1",
        "scope": ("openid",), "account_id": "acc-1", "level": 2, "auth_time": 1000,
    }  # fmt: skip
    return CodeGrant(**{**fields, **changes})


def test_id_token_claims_carry_level_nonce_and_times() -> None:
    claims = id_token_claims(
        issuer="https://id.example", subject="sub", grant=grant(), access_token="t", now=1010, ttl=60
    )
    expected = {
        "iss": "https://id.example", "sub": "sub", "aud": "dvc", "acr": "2", "loa": "2", "nonce": "n1",
        "iat": 1010, "exp": 1070, "auth_time": 1000,
    }  # fmt: skip
    assert {k: claims[k] for k in expected} == expected
    assert "nonce" not in id_token_claims(
        issuer="i", subject="s", grant=grant(nonce=None), access_token="t", now=0, ttl=1
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_codes_are_single_use_and_a_replay_revokes_the_token() -> None:
    store = GrantStore(code_ttl=60, token_ttl=300, clock=Clock())
    code = store.issue_code(grant())
    assert store.redeem_code(code) == grant()
    token, _ = store.issue_access_token(code, grant())
    assert store.access(token) is not None
    assert store.redeem_code(code) is None
    assert store.access(token) is None  # revoked by the replay
    assert store.redeem_code("never-issued") is None


def test_codes_and_tokens_expire() -> None:
    clock = Clock()
    store = GrantStore(code_ttl=60, token_ttl=300, clock=clock)
    stale = store.issue_code(grant())
    clock.now += 61
    assert store.redeem_code(stale) is None
    fresh = store.issue_code(grant())
    token, _ = store.issue_access_token(fresh, grant())
    clock.now += 299
    assert store.access(token) is not None
    clock.now += 1
    assert store.access(token) is None


def test_signed_tokens_verify_against_the_public_jwks_only() -> None:
    key = SigningKey.generate()
    jwks = key.jwks()
    assert [k.get("d") for k in jwks["keys"]] == [None]  # no private part
    assert jwks["keys"][0]["kid"] == key.kid and jwks["keys"][0]["alg"] == "RS256"
    token = jwt.decode(key.sign({"sub": "x"}), KeySet.import_key_set(jwks))
    assert (token.claims, token.header["kid"]) == ({"sub": "x"}, key.kid)


def test_a_key_from_pem_keeps_its_kid_and_bad_pem_is_refused() -> None:
    key = SigningKey.generate()
    pem = key._key.as_pem(private=True).decode()
    assert SigningKey.from_pem(pem).kid == key.kid
    with pytest.raises(ValueError, match="VNEID_SIGNING_KEY"):
        SigningKey.from_pem("not a key")


@pytest.fixture
def provider(tmp_path: Path) -> OidcProvider:
    settings = VneidSettings(
        database_url=f"sqlite:///{tmp_path / 'v.sqlite3'}",
        relying_parties={
            "public": RelyingParty(redirect_uris=[REDIRECT]),
            "secret": RelyingParty(redirect_uris=[REDIRECT], client_secret="s3cret"),
        },
    )
    service = AccountService(open_accounts(settings.database_url))
    service.apply(Applicant("008090123456", "A", date(1990, 1, 1), "male"), "008", 1)
    return OidcProvider(settings, service, SigningKey.generate())


@pytest.mark.parametrize(
    ("form", "authorization"),
    [
        ({"client_id": "nobody"}, None),
        ({"client_id": "secret"}, None),
        ({"client_id": "secret", "client_secret": "wrong"}, None),
        ({}, "Basic " + base64.b64encode(b"secret:wrong").decode()),
        ({}, "Basic not-base64!"),
        ({"client_id": "public", "client_secret": "anything"}, None),
    ],
)
def test_clients_authenticate_at_the_token_endpoint(
    provider: OidcProvider, form: dict[str, str], authorization: str | None
) -> None:
    with pytest.raises(OidcError) as info:
        provider.token(
            {"grant_type": "authorization_code", "code": "c", "code_verifier": RFC_VERIFIER, **form},
            authorization,
            "i",
        )
    assert (info.value.error, info.value.status_code) == ("invalid_client", 401)


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"code": None}, "invalid_request"),
        ({"code_verifier": None}, "invalid_request"),
        ({"code": "unknown"}, "invalid_grant"),
    ],
)
def test_token_requests_are_checked(provider: OidcProvider, form: dict[str, str | None], error: str) -> None:
    base = {
        "grant_type": "authorization_code",
        "client_id": "secret",
        "client_secret": "s3cret",
        "code": "c",
        "code_verifier": RFC_VERIFIER,
    }
    fields = {k: v for k, v in {**base, **form}.items() if v is not None}
    with pytest.raises(OidcError) as info:
        provider.token(fields, None, "i")
    assert info.value.error == error
    basic = "Basic " + base64.b64encode(b"secret:s3cret").decode()
    if error == "invalid_grant":  # the same request with Basic authentication gets as far
        with pytest.raises(OidcError, match="invalid_grant"):
            provider.token(
                {k: v for k, v in fields.items() if k not in ("client_id", "client_secret")}, basic, "i"
            )


def test_discovery_announces_pkce_s256_rs256_and_levels(provider: OidcProvider) -> None:
    meta = provider.discovery("https://id.example")
    assert meta["jwks_uri"] == "https://id.example/jwks" and meta["code_challenge_methods_supported"] == [
        "S256"
    ]
    assert meta["acr_values_supported"] == ["1", "2"] and meta["id_token_signing_alg_values_supported"] == [
        "RS256"
    ]
    assert meta["subject_types_supported"] == ["pairwise"]
