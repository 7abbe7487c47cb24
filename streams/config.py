"""Settings of a reconciliation worker (env prefix STREAMS_; Kafka security from POPSYNC_KAFKA_*)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.kafka_security import KafkaSecurity, load_kafka_security

__all__ = ["StreamsSettings", "get_settings"]


class StreamsSettings(BaseSettings):
    """Everything a faust worker needs; one instance per worker process."""

    model_config = SettingsConfigDict(env_prefix="STREAMS_", extra="ignore", populate_by_name=True)

    bootstrap_servers: str = Field(
        default="", validation_alias="POPSYNC_BOOTSTRAP_SERVERS", description="host:port[,host:port]"
    )
    # Read from POPSYNC_KAFKA_*, the variables every popsync Kafka client shares (not STREAMS_*).
    kafka: KafkaSecurity = Field(default_factory=load_kafka_security)
    app_id: str = "popsync"
    topic_prefix: str = "popsync"
    partitions: int = Field(default=6, ge=1, le=1000)
    # Copies of every topic, faust's changelogs too; 0: min(3, the brokers the cluster has at start).
    replication_factor: int = Field(default=0, ge=0, le=3)
    ndxp_url: str = "http://127.0.0.1:8600"
    # OAuth2 client credentials of the NDXP (preferred): a token from {ndxp_url}/oauth/token, cached and
    # refreshed. The scopes must cover what the outcome rules read (identity, residence, status).
    ndxp_client_id: str = ""
    ndxp_client_secret: SecretStr = SecretStr("")
    ndxp_scope: str = "citizen.identity citizen.residence citizen.status civil.register residence.write"
    ndxp_ca_file: Path | None = None  # PEM CA bundle to verify an https NDXP with; None: the system's
    ndxp_api_key: SecretStr = SecretStr("")  # deprecated: used only when no client ID is set
    ndxp_timeout_s: float = Field(default=30.0, gt=0)
    ndxp_max_backoff_s: float = Field(default=10.0, gt=0)
    batch_size: int = Field(default=1000, ge=1, le=1000)  # the NDXP batch limit is 1,000 IDs
    batch_within_s: float = Field(default=0.25, gt=0)
    progress_interval_s: float = Field(default=1.0, gt=0)
    session_timeout_s: float = Field(default=10.0, gt=0)
    data_dir: Path = Path(".popsync/worker")
    worker_id: str = "worker-1"
    # Prometheus /metrics of this worker (streams.metrics); 0 leaves it off. Loopback by default: expose it
    # wider only behind the deployment's network policy (the metrics hold no personal data, but still).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    log_level: str = "WARNING"
    # How rules 10–12 compare names: `exact` (CONTRACT.md, the default) or `fuzzy` (schemas.fuzzy_rules:
    # a scored, explained match; set by `simulate` from a scenario's `matching: fuzzy`).
    matching: Literal["exact", "fuzzy"] = "exact"
    # The day the run is as of (a scenario's `as_of`, YYYY-MM-DD): from 2025-07-01 on, labour's `moved`
    # compares residences by the 34 current provinces (schemas.provinces.map_for); unset: the legacy 63.
    as_of: date | None = None

    @field_validator("as_of", mode="before")
    @classmethod
    def _unset_as_of(cls, value: object) -> object:
        return None if value == "" else value  # simulate sets it empty for a scenario without `as_of`


@lru_cache(maxsize=1)
def get_settings() -> StreamsSettings:
    """The settings of this process, read from the environment once."""
    return StreamsSettings()
