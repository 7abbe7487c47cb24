"""Settings of the mock VNeID (env prefix `VNEID_`), built on demand by `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mocks.common.security import check_distinct_keys
from mocks.ndxp.sqlite import checked_sqlite_url

__all__ = [
    "DEV_API_KEYS",
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


class VneidSettings(BaseSettings):
    """One deployable's settings. Maps are JSON objects, e.g. `VNEID_API_KEYS='{"dvc-008": "…"}'`,
    `VNEID_CLIENTS='{"dvc-008": {"redirect_uris": ["https://dvc.example/cb"], "client_secret": "…"}}'`."""

    model_config = SettingsConfigDict(env_prefix="VNEID_", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(default="sqlite:///vneid.sqlite3", description="accounts, outbox and audit")
    population_url: str | None = Field(
        default=None, description="the NPD's SQLite file (sqlite:///PATH) to match applications against"
    )
    api_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_API_KEYS),
        description="agencies that may look accounts up: agency name → API key (header X-API-Key)",
    )
    officer_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_OFFICER_KEYS),
        description="police units that manage accounts (apply, approve, verify in person, lock): name → key",
    )
    clients: dict[str, RelyingParty] = Field(
        default_factory=_dev_clients, description="registered relying parties: client_id → redirect URIs"
    )
    issuer: str | None = Field(default=None, description="`iss` of tokens; None: the server's own base URL")
    signing_key: SecretStr | None = Field(
        default=None, description="RSA private key (PEM) signing the tokens; None: one generated at start"
    )
    subject_salt: SecretStr = Field(
        default=SecretStr(DEV_SUBJECT_SALT), description="HMAC key of the pairwise subject identifiers"
    )
    code_ttl_s: float = Field(default=60.0, gt=0, description="lifetime of an authorization code")
    token_ttl_s: float = Field(default=3600.0, gt=0, description="lifetime of ID and access tokens")
    login_error_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="fraction of login requests (/authorize, /token) given 503"
    )
    login_latency_ms: float = Field(default=0.0, ge=0.0, description="delay added to every login request")
    fault_seed: int | None = Field(default=None, description="seed of the fault RNG; None: unpredictable")
    access_log: bool = Field(default=True, description="uvicorn access log (IDs in paths are masked)")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("database_url", "population_url")
    @classmethod
    def _supported_url(cls, value: str | None) -> str | None:
        return checked_sqlite_url(value)

    @model_validator(mode="after")
    def _secrets_safe(self) -> VneidSettings:
        every = [*self.api_keys.items(), *self.officer_keys.items()]
        values = [key.get_secret_value() for _, key in every]
        check_distinct_keys(
            values,
            who=("name", "names"),
            variables="VNEID_API_KEYS/VNEID_OFFICER_KEYS",
            owner="agency or unit",
        )
        if self.environment != "development":
            self._refuse_dev_defaults(every)
        return self

    def _refuse_dev_defaults(self, every: list[tuple[str, SecretStr]]) -> None:
        where = f"environment is {self.environment!r}"
        built_in = set(DEV_API_KEYS.values()) | set(DEV_OFFICER_KEYS.values())
        defaults = sorted(name for name, key in every if key.get_secret_value() in built_in)
        if defaults:
            raise ValueError(
                f"{where} but {defaults} use the built-in development API keys; "
                "set VNEID_API_KEYS and VNEID_OFFICER_KEYS to your own secrets"
            )
        if self.subject_salt.get_secret_value() in ("", DEV_SUBJECT_SALT):
            raise ValueError(f"{where} but VNEID_SUBJECT_SALT is the development default; set a secret")
        if self.signing_key is None:
            # A key made at each start would invalidate every relying party's cached JWKS on restart.
            raise ValueError(f"{where} and VNEID_SIGNING_KEY is unset; give the RSA private key (PEM)")
        if DEV_CLIENT_ID in self.clients or not self.clients:
            raise ValueError(f"{where}: register your own relying parties in VNEID_CLIENTS")


@lru_cache(maxsize=1)
def get_settings() -> VneidSettings:
    """Settings from the environment, built once on first use (never at import time)."""
    return VneidSettings()
