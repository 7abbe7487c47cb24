"""Settings of the mock NDXP (env prefix `NDXP_`), built on demand by `get_settings()`.

Agencies authenticate with OAuth2 client credentials (`NDXP_CLIENTS`, tokens signed with
`NDXP_TOKEN_SECRET`); the older per-agency API keys (`NDXP_API_KEYS`, `NDXP_AUDITOR_KEYS`) still work
but are deprecated. Development runs on built-in credentials; production refuses every built-in secret.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mocks.common.body_limit import MiB
from mocks.common.security import MIN_SECRET_BYTES, OAuthClient
from mocks.common.settings import AgencyMockSettings
from mocks.ndxp.postgres import checked_database_url
from mocks.ndxp.scopes import AUDIT_READ, CITIZEN_SCOPES, CIVIL_REGISTER, KNOWN_SCOPES, RESIDENCE_WRITE

__all__ = ["DEV_API_KEYS", "DEV_AUDITOR_KEYS", "DEV_CLIENTS", "NdxpSettings", "get_settings"]

# Built-in keys so a developer can start the mock with no configuration; production refuses them.
DEV_API_KEYS: dict[str, str] = {
    "lgsp-008": "dev-key-lgsp-008",
    "lgsp-019": "dev-key-lgsp-019",
    "lgsp-052": "dev-key-lgsp-052",
}
DEV_AUDITOR_KEYS: dict[str, str] = {"c06-audit": "dev-key-c06-audit"}
# Built-in OAuth clients of development: provinces get every citizen scope, the streams workers what
# the outcome rules read and the civil-status/residence writes, the auditor the audit. Production refuses
# these secrets.
DEV_CLIENTS: dict[str, OAuthClient] = {
    "lgsp-008": OAuthClient(secret=SecretStr("dev-secret-lgsp-008"), scopes=CITIZEN_SCOPES),
    "lgsp-052": OAuthClient(secret=SecretStr("dev-secret-lgsp-052"), scopes=CITIZEN_SCOPES),
    "popsync-streams": OAuthClient(
        secret=SecretStr("dev-secret-popsync-streams"),
        scopes=("citizen.identity", "citizen.residence", "citizen.status", CIVIL_REGISTER, RESIDENCE_WRITE),
    ),
    "c06-audit": OAuthClient(secret=SecretStr("dev-secret-c06-audit"), scopes=(AUDIT_READ,)),
}


def _secrets(keys: dict[str, str]) -> dict[str, SecretStr]:
    return {agency: SecretStr(key) for agency, key in keys.items()}


class NdxpSettings(AgencyMockSettings):
    """One deployable's settings. Key maps are JSON objects agency → key, e.g.
    `NDXP_API_KEYS='{"lgsp-008": "…", "lgsp-052": "…"}'`; clients are agency → client, e.g.
    `NDXP_CLIENTS='{"lgsp-008": {"secret": "…", "scopes": ["citizen.identity"], "rate_per_s": 20}}'`."""

    model_config = SettingsConfigDict(env_prefix="NDXP_", extra="ignore", frozen=True)
    dev_clients = DEV_CLIENTS
    known_scopes = KNOWN_SCOPES
    audited = "citizen"

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(
        default="sqlite:///ndxp.sqlite3",
        description="sqlite:///relative/path, sqlite:////absolute/path or postgresql://user@host:port/db",
    )
    api_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_API_KEYS),
        description="agencies that may look citizens up: agency name → API key (header X-API-Key)",
    )
    auditor_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_AUDITOR_KEYS),
        description="agencies that may read the audit (and nothing else): agency name → API key",
    )
    clients: dict[str, OAuthClient] | None = Field(
        default=None,
        description="OAuth2 clients (client_credentials): agency → secret, scopes, optional rate_per_s "
        "and burst; unset: the built-in development clients (development only)",
    )
    token_secret: SecretStr | None = Field(
        default=None,
        description=f"HS256 key of the access tokens (at least {MIN_SECRET_BYTES} bytes); unset: a random "
        "one per process (development only)",
    )
    token_ttl_s: int = Field(default=300, ge=1, le=86_400, description="lifetime of an access token")
    rate_limit_per_s: float | None = Field(
        default=None,
        gt=0,
        description="default requests/s per agency (a client's rate_per_s wins); None: off",
    )
    rate_limit_burst: int | None = Field(default=None, ge=1, description="default bucket size per agency")
    tls_certfile: Path | None = Field(default=None, description="serve HTTPS with this PEM certificate")
    tls_keyfile: Path | None = Field(default=None, description="the certificate's PEM private key")
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of /v1 requests given 503")
    latency_ms: float = Field(default=0.0, ge=0.0, description="delay added to every /v1 request")
    fault_seed: int | None = Field(default=None, description="seed of the fault RNG; None: unpredictable")
    max_body_bytes: int = Field(
        default=4 * MiB,
        ge=64 * 1024,
        description="largest request body accepted (413 above it); 1000 IDs of verify-batch take about "
        "16 KiB, 1000 civil-status records about 0.5 MiB",
    )
    access_log: bool = Field(default=True, description="uvicorn access log (IDs in paths are masked)")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        checked_database_url(value)
        return value

    @model_validator(mode="after")
    def _keys_safe(self) -> NdxpSettings:
        every = [*self.api_keys.items(), *self.auditor_keys.items()]
        values = [key.get_secret_value() for _, key in every]
        if any(not v for v in values):
            raise ValueError(
                "an API key is empty; give every agency in NDXP_API_KEYS/NDXP_AUDITOR_KEYS a key"
            )
        if len(set(values)) != len(values):
            raise ValueError("two agencies share an API key; every key must name exactly one agency")
        if self.environment != "development":
            built_in = set(DEV_API_KEYS.values()) | set(DEV_AUDITOR_KEYS.values())
            defaults = sorted(agency for agency, key in every if key.get_secret_value() in built_in)
            if defaults:
                raise ValueError(
                    f"environment is {self.environment!r} but agencies {defaults} use the built-in "
                    "development API keys; set NDXP_API_KEYS and NDXP_AUDITOR_KEYS to your own secrets "
                    "(or to '{}' to accept OAuth tokens only)"
                )
            if not self.api_keys and not self.oauth_clients:
                raise ValueError(
                    f"environment is {self.environment!r} and no agency can call: set NDXP_CLIENTS"
                )
        return self

    @model_validator(mode="after")
    def _clients_safe(self) -> NdxpSettings:
        self.check_agency_security()
        return self


@lru_cache(maxsize=1)
def get_settings() -> NdxpSettings:
    """Settings from the environment, built once on first use (never at import time)."""
    return NdxpSettings()
