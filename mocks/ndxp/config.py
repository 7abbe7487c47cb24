"""Settings of the mock NDXP (env prefix `NDXP_`), built on demand by `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mocks.ndxp.exceptions import UnsupportedDatabaseError
from mocks.ndxp.sqlite import sqlite_path

__all__ = ["DEV_API_KEYS", "DEV_AUDITOR_KEYS", "NdxpSettings", "get_settings"]

# Built-in keys so a developer can start the mock with no configuration; production refuses them.
DEV_API_KEYS: dict[str, str] = {
    "lgsp-008": "dev-key-lgsp-008",
    "lgsp-019": "dev-key-lgsp-019",
    "lgsp-052": "dev-key-lgsp-052",
}
DEV_AUDITOR_KEYS: dict[str, str] = {"c06-audit": "dev-key-c06-audit"}


def _secrets(keys: dict[str, str]) -> dict[str, SecretStr]:
    return {agency: SecretStr(key) for agency, key in keys.items()}


class NdxpSettings(BaseSettings):
    """One deployable's settings. Key maps are JSON objects agency → key, e.g.
    `NDXP_API_KEYS='{"lgsp-008": "…", "lgsp-052": "…"}'`."""

    model_config = SettingsConfigDict(env_prefix="NDXP_", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(
        default="sqlite:///ndxp.sqlite3", description="sqlite:///relative/path or sqlite:////absolute/path"
    )
    api_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_API_KEYS),
        description="agencies that may look citizens up: agency name → API key (header X-API-Key)",
    )
    auditor_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: _secrets(DEV_AUDITOR_KEYS),
        description="agencies that may read the audit (and nothing else): agency name → API key",
    )
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of /v1 requests given 503")
    latency_ms: float = Field(default=0.0, ge=0.0, description="delay added to every /v1 request")
    fault_seed: int | None = Field(default=None, description="seed of the fault RNG; None: unpredictable")
    access_log: bool = Field(default=True, description="uvicorn access log (IDs in paths are masked)")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        try:
            sqlite_path(value)
        except UnsupportedDatabaseError as exc:
            raise ValueError(str(exc)) from None
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
                    "development API keys; set NDXP_API_KEYS and NDXP_AUDITOR_KEYS to your own secrets"
                )
            if not self.api_keys:
                raise ValueError(f"environment is {self.environment!r} and NDXP_API_KEYS is empty")
        return self


@lru_cache(maxsize=1)
def get_settings() -> NdxpSettings:
    """Settings from the environment, built once on first use (never at import time)."""
    return NdxpSettings()
