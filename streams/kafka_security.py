"""How every popsync Kafka client authenticates and encrypts: one settings model (env prefix POPSYNC_KAFKA_).

The same `POPSYNC_KAFKA_*` variables configure the LGSP connector, the workers, the collector and the CLI;
`kafka_python_config()` gives the keyword arguments of kafka-python's clients, `faust_config()` those of a
faust app. Secrets are `SecretStr`: a repr of the settings, or of the configs they produce, shows `***`.
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.exceptions import ConfigurationError

__all__ = [
    "ENV_PREFIX",
    "ClientConfig",
    "KafkaSecurity",
    "SaslMechanism",
    "SecurityProtocol",
    "get_kafka_security",
    "load_kafka_security",
]

ENV_PREFIX = "POPSYNC_KAFKA_"
_SECRET_KEYS = frozenset({"sasl_plain_password", "ssl_password"})
_ENUM_FIELDS = frozenset({"security_protocol", "sasl_mechanism"})


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)

    @property
    def uses_ssl(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class ClientConfig(dict[str, Any]):
    """Keyword arguments of a Kafka client; its repr masks the password values (safe to log)."""

    def __repr__(self) -> str:
        shown = {k: ("***" if k in _SECRET_KEYS and v is not None else v) for k, v in self.items()}
        return f"{type(self).__name__}({shown!r})"

    __str__ = __repr__


def _env(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


class KafkaSecurity(BaseSettings):
    """Security of the connection to Kafka; PLAINTEXT (no auth, no TLS) unless told otherwise.

    SASL_* needs a username and a password; SSL/SASL_SSL may name a CA file (else the system CAs) and a
    client certificate and key (mutual TLS). A setting that the protocol would ignore is an error, so a
    forgotten `POPSYNC_KAFKA_SECURITY_PROTOCOL` does not silently drop the credentials.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(default=None, description="PEM CA bundle; the system CAs when unset")
    ssl_certfile: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(default=None, description="PEM key of ssl_certfile, if not in it")
    ssl_password: SecretStr | None = Field(default=None, description="password of an encrypted key")
    ssl_check_hostname: bool = True

    @field_validator("security_protocol", mode="before")
    @classmethod
    def _protocol_spelling(cls, value: object) -> object:
        return value.strip().upper().replace("-", "_") if isinstance(value, str) else value

    @field_validator("sasl_mechanism", mode="before")
    @classmethod
    def _mechanism_spelling(cls, value: object) -> object:
        return value.strip().upper().replace("_", "-") if isinstance(value, str) else value

    @field_validator(
        "sasl_username", "sasl_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An exported-but-empty variable (`POPSYNC_KAFKA_SSL_CAFILE=`) means "not set", not "the file ''".
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value():
            return None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        protocol = self.security_protocol
        problems: list[str] = []
        if protocol.uses_sasl:
            missing = [
                _env(name)
                for name, value in (
                    ("sasl_username", self.sasl_username),
                    ("sasl_password", self.sasl_password),
                )
                if value is None
            ]
            if missing:
                problems.append(
                    f"{' and '.join(missing)} must be set when {_env('security_protocol')} is {protocol}"
                )
        else:
            given = [_env(n) for n in ("sasl_username", "sasl_password") if getattr(self, n) is not None]
            if given:
                problems.append(
                    f"{', '.join(given)} set but {_env('security_protocol')} is {protocol}, which does not "
                    "use them: set it to SASL_PLAINTEXT or SASL_SSL (or unset the credentials)"
                )
        files = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
        if protocol.uses_ssl:
            for name in files:
                path: Path | None = getattr(self, name)
                if path is not None and not path.is_file():
                    problems.append(f"{_env(name)}: no file {path}")
            if self.ssl_keyfile is not None and self.ssl_certfile is None:
                problems.append(f"{_env('ssl_keyfile')} is set without {_env('ssl_certfile')}")
        else:
            given = [_env(n) for n in (*files, "ssl_password") if getattr(self, n) is not None]
            if given:
                problems.append(
                    f"{', '.join(given)} set but {_env('security_protocol')} is {protocol}, which does not "
                    "use TLS: set it to SSL or SASL_SSL (or unset the TLS files)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def kafka_python_config(self) -> ClientConfig:
        """Keyword arguments for kafka-python 3's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        config = ClientConfig(security_protocol=self.security_protocol.value)
        if self.security_protocol.uses_sasl:
            assert self.sasl_username is not None and self.sasl_password is not None  # checked above
            config.update(
                sasl_mechanism=self.sasl_mechanism.value,
                sasl_plain_username=self.sasl_username,  # kafka-python's name for SCRAM's too
                sasl_plain_password=self.sasl_password.get_secret_value(),
            )
        if self.security_protocol.uses_ssl:
            config.update(
                ssl_check_hostname=self.ssl_check_hostname,
                ssl_cafile=_str(self.ssl_cafile),
                ssl_certfile=_str(self.ssl_certfile),
                ssl_keyfile=_str(self.ssl_keyfile),
                ssl_password=self.ssl_password.get_secret_value() if self.ssl_password else None,
            )
        return config

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of aiokafka (faust): the CA file or system CAs, the client certificate if any."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=_str(self.ssl_cafile))
        if self.ssl_certfile is not None:
            password = self.ssl_password.get_secret_value() if self.ssl_password else None
            context.load_cert_chain(str(self.ssl_certfile), _str(self.ssl_keyfile), password)
        # The certificate chain is still verified without the host name check (like kafka-python's).
        context.check_hostname = self.ssl_check_hostname
        return context

    def faust_config(self) -> dict[str, Any]:
        """Settings of a `faust.App`: `broker_credentials` for any protocol but PLAINTEXT (then nothing)."""
        import faust  # here, not at the top: the kafka-python clients need not import faust

        protocol = self.security_protocol
        if protocol is SecurityProtocol.PLAINTEXT:
            return {}
        if protocol is SecurityProtocol.SSL:
            return {"broker_credentials": faust.SSLCredentials(self.ssl_context())}
        assert self.sasl_username is not None and self.sasl_password is not None  # checked above
        credentials = faust.SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password.get_secret_value(),
            mechanism=self.sasl_mechanism.value,
            # With a context faust makes it SASL_SSL; without, SASL_PLAINTEXT.
            ssl_context=self.ssl_context() if protocol is SecurityProtocol.SASL_SSL else None,
        )
        return {"broker_credentials": credentials}


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def load_kafka_security() -> KafkaSecurity:
    """`KafkaSecurity` read from the environment now; `ConfigurationError` naming each bad variable."""
    try:
        return KafkaSecurity()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            loc = error.get("loc") or ()
            if not loc:
                problems.append(message)
                continue
            name = str(loc[0])
            if name in _ENUM_FIELDS:  # never echo the input of other fields: it may be a password
                message = f"{message}, not {error.get('input')!r}"
            problems.append(f"{_env(name)}: {message}")
        raise ConfigurationError(f"Kafka security settings are wrong: {'; '.join(problems)}") from None


@lru_cache(maxsize=1)
def get_kafka_security() -> KafkaSecurity:
    """The Kafka security settings of this process, read from the environment once."""
    return load_kafka_security()
