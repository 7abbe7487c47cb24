"""Settings of the mock VNeID (env prefix `VNEID_`), built on demand by `get_settings()`.

Agencies and police units authenticate with OAuth2 client credentials (`VNEID_CLIENTS`, tokens signed
with `VNEID_TOKEN_SECRET`); the older API keys (`VNEID_API_KEYS`, `VNEID_OFFICER_KEYS`) still work but
are deprecated. Citizens log in to the relying parties of `VNEID_RELYING_PARTIES` (OIDC). Development
runs on built-in credentials; production refuses every built-in secret.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mocks.common.body_limit import MiB
from mocks.common.security import MIN_SECRET_BYTES, OAuthClient
from mocks.common.settings import AgencyMockSettings
from mocks.ndxp.postgres import checked_database_url
from mocks.vneid.scopes import AUDIT_READ, IDENTITY, KNOWN_SCOPES, OFFICER, STATUS

__all__ = [
    "DEV_API_KEYS",
    "DEV_CLIENTS",
    "DEV_CLIENT_ID",
    "DEV_OFFICER_KEYS",
    "DEV_SUBJECT_SALT",
    "RelyingParty",
    "VneidSettings",
    "get_settings",
]

# Built-in secrets so a developer can start the mock with no configuration; production refuses them.
DEV_API_KEYS: dict[str, str] = {"dvc-008": "dev-key-dvc-008", "bhxh-008": "dev-key-bhxh-008"}
DEV_OFFICER_KEYS: dict[str, str] = {"police-008": "dev-key-police-008", "police-052": "dev-key-police-052"}
DEV_SUBJECT_SALT = "dev-subject-salt"
DEV_CLIENT_ID = "dev-portal"


def _dev_client(name: str, *scopes: str) -> OAuthClient:
    return OAuthClient(secret=SecretStr(f"dev-secret-{name}"), scopes=scopes)


# Built-in OAuth clients of development: a provincial LGSP sees the status and the personal ID, a sector
# (social insurance) the status only, police units manage accounts (and look them up), the auditor reads
# the audit. Production refuses these secrets.
DEV_CLIENTS: dict[str, OAuthClient] = {
    "lgsp-008": _dev_client("lgsp-008", STATUS, IDENTITY),
    "bhxh-008": _dev_client("bhxh-008", STATUS),
    "police-008": _dev_client("police-008", OFFICER, STATUS, IDENTITY),
    "police-052": _dev_client("police-052", OFFICER, STATUS, IDENTITY),
    "c06-audit": _dev_client("c06-audit", AUDIT_READ),
}


class RelyingParty(BaseModel):
    """A registered client: where codes may be sent, and its secret (none: a public client, PKCE only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    redirect_uris: list[str] = Field(min_length=1)
    client_secret: SecretStr | None = None
    # Pairwise subjects are computed per sector: clients of one agency may share one to see the same `sub`.
    sector: str | None = None


def _secrets(keys: dict[str, str]) -> dict[str, SecretStr]:
    return {name: SecretStr(key) for name, key in keys.items()}


def _dev_clients() -> dict[str, RelyingParty]:
    return {DEV_CLIENT_ID: RelyingParty(redirect_uris=["http://127.0.0.1:8080/callback"])}


class VneidSettings(AgencyMockSettings):
    """One deployable's settings. Maps are JSON objects, e.g.
    `VNEID_CLIENTS='{"lgsp-008": {"secret": "…", "scopes": ["account.status"], "rate_per_s": 20}}'`,
    `VNEID_RELYING_PARTIES='{"dvc-008": {"redirect_uris": ["https://dvc.example/cb"]}}'`,
    `VNEID_API_KEYS='{"dvc-008": "…"}'` (deprecated)."""

    model_config = SettingsConfigDict(env_prefix="VNEID_", extra="ignore", frozen=True)
    dev_clients = DEV_CLIENTS
    known_scopes = KNOWN_SCOPES
    audited = "account"

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(default="sqlite:///vneid.sqlite3", description="accounts, outbox and audit")
    population_url: str | None = Field(
        default=None, description="the NPD's SQLite file (sqlite:///PATH) to match applications against"
    )
    clients: dict[str, OAuthClient] | None = Field(
        default=None,
        description="OAuth2 clients of agencies and police units (client_credentials): name → secret, "
        "scopes, optional rate_per_s and burst; unset: the built-in development clients (development only)",
    )
    token_secret: SecretStr | None = Field(
        default=None,
        description=f"HS256 key of the agencies' access tokens (at least {MIN_SECRET_BYTES} bytes); unset: "
        "a random one per process (development only)",
    )
    agency_token_ttl_s: int = Field(
        default=300, ge=1, le=86_400, description="lifetime of an agency's access token (/oauth/token)"
    )
    rate_limit_per_s: float | None = Field(
        default=None,
        gt=0,
        description="default requests/s per agency (a client's rate_per_s wins); None: off",
    )
    rate_limit_burst: int | None = Field(default=None, ge=1, description="default bucket size per agency")
    api_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_API_KEYS),
        description="deprecated: agencies that may look accounts up: agency name → API key (X-API-Key)",
    )
    officer_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_OFFICER_KEYS),
        description="deprecated: police units that manage accounts (apply, approve, verify in person, lock)",
    )
    relying_parties: dict[str, RelyingParty] = Field(
        default_factory=_dev_clients,
        description="OIDC relying parties the citizens log in to: client_id → redirect URIs",
    )
    tls_certfile: Path | None = Field(default=None, description="serve HTTPS with this PEM certificate")
    tls_keyfile: Path | None = Field(default=None, description="the certificate's PEM private key")
    issuer: str | None = Field(default=None, description="`iss` of tokens; None: the server's own base URL")
    signing_key: SecretStr | None = Field(
        default=None, description="RSA private key (PEM) signing the tokens; None: one generated at start"
    )
    subject_salt: SecretStr = Field(
        default=SecretStr(DEV_SUBJECT_SALT), description="HMAC key of the pairwise subject identifiers"
    )
    code_ttl_s: float = Field(default=60.0, gt=0, description="lifetime of an authorization code")
    token_ttl_s: float = Field(
        default=3600.0, gt=0, description="lifetime of the citizens' OIDC ID and access tokens"
    )
    login_error_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="fraction of login requests (/authorize, /token) given 503"
    )
    login_latency_ms: float = Field(default=0.0, ge=0.0, description="delay added to every login request")
    fault_seed: int | None = Field(default=None, description="seed of the fault RNG; None: unpredictable")
    max_body_bytes: int = Field(
        default=MiB,
        ge=64 * 1024,
        description="largest request body accepted (413 above it); an application or a log-in form "
        "takes well under 1 KiB",
    )
    access_log: bool = Field(default=True, description="uvicorn access log (IDs in paths are masked)")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("database_url", "population_url")
    @classmethod
    def _supported_url(cls, value: str | None) -> str | None:
        return checked_database_url(value)

    @field_validator("clients", mode="before")
    @classmethod
    def _not_relying_parties(cls, value: Any) -> Any:
        # VNEID_CLIENTS named the OIDC relying parties before agencies had OAuth clients: say where they went.
        if isinstance(value, dict) and any(
            isinstance(c, dict) and "redirect_uris" in c for c in value.values()
        ):
            raise ValueError(
                "VNEID_CLIENTS holds the agencies' OAuth clients ({name: {secret, scopes}}); "
                "the OIDC relying parties (redirect_uris) moved to VNEID_RELYING_PARTIES"
            )
        return value

    @model_validator(mode="after")
    def _secrets_safe(self) -> VneidSettings:
        every = [*self.api_keys.items(), *self.officer_keys.items()]
        values = [key.get_secret_value() for _, key in every]
        if any(not v for v in values):
            raise ValueError(
                "an API key is empty; give every name in VNEID_API_KEYS/VNEID_OFFICER_KEYS a key"
            )
        if len(set(values)) != len(values):
            raise ValueError("two names share an API key; every key must name exactly one agency or unit")
        if self.environment != "development":
            self._refuse_dev_defaults(every)
        self.check_agency_security()
        return self

    def _refuse_dev_defaults(self, every: list[tuple[str, SecretStr]]) -> None:
        where = f"environment is {self.environment!r}"
        built_in = set(DEV_API_KEYS.values()) | set(DEV_OFFICER_KEYS.values())
        defaults = sorted(name for name, key in every if key.get_secret_value() in built_in)
        if defaults:
            raise ValueError(
                f"{where} but {defaults} use the built-in development API keys; "
                "set VNEID_API_KEYS and VNEID_OFFICER_KEYS to your own secrets "
                "(or to '{}' to accept OAuth tokens only)"
            )
        if not self.api_keys and not self.officer_keys and not self.oauth_clients:
            raise ValueError(f"{where} and no agency or police unit can call: set VNEID_CLIENTS")
        if self.subject_salt.get_secret_value() in ("", DEV_SUBJECT_SALT):
            raise ValueError(f"{where} but VNEID_SUBJECT_SALT is the development default; set a secret")
        if self.signing_key is None:
            # A key made at each start would invalidate every relying party's cached JWKS on restart.
            raise ValueError(f"{where} and VNEID_SIGNING_KEY is unset; give the RSA private key (PEM)")
        if DEV_CLIENT_ID in self.relying_parties or not self.relying_parties:
            raise ValueError(f"{where}: register your own relying parties in VNEID_RELYING_PARTIES")


@lru_cache(maxsize=1)
def get_settings() -> VneidSettings:
    """Settings from the environment, built once on first use (never at import time)."""
    return VneidSettings()
