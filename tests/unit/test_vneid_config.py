"""Unit tests of the VNeID settings: environment parsing, and production refusing development secrets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mocks.vneid.config import DEV_CLIENT_ID, RelyingParty, VneidSettings
from mocks.vneid.oidc.keys import SigningKey

pytestmark = pytest.mark.unit

PEM = SigningKey.generate()._key.as_pem(private=True).decode()


def production(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "environment": "production",
        "api_keys": {"dvc-008": "a-long-agency-secret"},
        "officer_keys": {"police-008": "a-long-police-secret"},
        "relying_parties": {
            "dvc-008": RelyingParty(redirect_uris=["https://dvc.example/cb"], client_secret="cs")
        },
        "subject_salt": "a-long-salt",
        "signing_key": PEM,
    }
    values.update(overrides)
    return values


def test_development_starts_with_no_configuration() -> None:
    settings = VneidSettings()
    assert settings.environment == "development" and DEV_CLIENT_ID in settings.relying_parties
    assert settings.signing_key is None and settings.login_error_rate == 0.0


def test_settings_come_from_vneid_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNEID_API_KEYS", '{"bhxh-052": "k1"}')
    monkeypatch.setenv(
        "VNEID_RELYING_PARTIES", '{"rp": {"redirect_uris": ["https://rp.example/cb"], "sector": "gov"}}'
    )
    monkeypatch.setenv("VNEID_LOGIN_ERROR_RATE", "0.25")
    monkeypatch.setenv("VNEID_FAULT_SEED", "7")
    settings = VneidSettings()
    assert settings.api_keys["bhxh-052"].get_secret_value() == "k1"
    rp = settings.relying_parties["rp"]
    assert rp.sector == "gov" and rp.client_secret is None
    assert (settings.login_error_rate, settings.fault_seed) == (0.25, 7)
    assert "k1" not in repr(settings)  # secrets stay hidden


def test_production_with_own_secrets_is_accepted() -> None:
    assert VneidSettings(**production()).environment == "production"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"api_keys": {"dvc-008": "dev-key-dvc-008"}}, "built-in development API keys"),
        ({"officer_keys": {"police-008": "dev-key-police-008"}}, "built-in development API keys"),
        ({"subject_salt": "dev-subject-salt"}, "VNEID_SUBJECT_SALT"),
        ({"signing_key": None}, "VNEID_SIGNING_KEY"),
        ({"relying_parties": {}}, "VNEID_RELYING_PARTIES"),
        (
            {"relying_parties": {DEV_CLIENT_ID: RelyingParty(redirect_uris=["http://x/cb"])}},
            "VNEID_RELYING_PARTIES",
        ),
    ],
)
def test_production_refuses_development_defaults(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        VneidSettings(**production(**overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database_url": "mysql://u:p@h/db"}, "write sqlite"),
        ({"population_url": "sqlite:///:memory:"}, "in-memory"),
        ({"api_keys": {"a": "same"}, "officer_keys": {"b": "same"}}, "share an API key"),
        ({"api_keys": {"a": ""}}, "empty"),
        ({"login_error_rate": 1.5}, "less than or equal to 1"),
    ],
)
def test_bad_settings_say_what_is_wrong(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        VneidSettings(**overrides)
