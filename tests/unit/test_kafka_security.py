"""Unit tests of the Kafka security settings: env parsing, validation messages, client configs, wiring."""

from __future__ import annotations

import datetime as dt
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol, SASLMechanism
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from streams.exceptions import ConfigurationError
from streams.kafka_security import (
    ClientConfig,
    KafkaSecurity,
    SecurityProtocol,
    get_kafka_security,
    load_kafka_security,
)

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-not-in-logs"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No POPSYNC_KAFKA_* from the developer's shell, and no cached settings across tests."""
    for name in list(os.environ):
        if name.startswith("POPSYNC_KAFKA_"):
            monkeypatch.delenv(name)
    get_kafka_security.cache_clear()
    yield
    get_kafka_security.cache_clear()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed CA certificate, and a client certificate and key signed by nobody (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "popsync-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = {"ca": folder / "ca.pem", "cert": folder / "client.pem", "key": folder / "client.key"}
    pem = cert.public_bytes(serialization.Encoding.PEM)
    files["ca"].write_bytes(pem)
    files["cert"].write_bytes(pem)
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pass"),
        )
    )
    return files


def scram(**overrides: Any) -> KafkaSecurity:
    values: dict[str, Any] = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "popsync",
        "sasl_password": PASSWORD,
    }
    return KafkaSecurity(**{**values, **overrides})


def error_of(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(f"POPSYNC_KAFKA_{name.upper()}", value)
    with pytest.raises(ConfigurationError) as caught:
        load_kafka_security()
    message = str(caught.value)
    assert PASSWORD not in message
    return message


# --- reading the environment -------------------------------------------------------------------------


def test_default_is_plaintext_and_changes_no_client() -> None:
    security = load_kafka_security()
    assert security.security_protocol is SecurityProtocol.PLAINTEXT
    assert security.kafka_python_config() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_config() == {}


def test_reads_popsync_kafka_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POPSYNC_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext")
    monkeypatch.setenv("POPSYNC_KAFKA_SASL_MECHANISM", "scram_sha_256")  # spellings are forgiven
    monkeypatch.setenv("POPSYNC_KAFKA_SASL_USERNAME", "lgsp-008")
    monkeypatch.setenv("POPSYNC_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("POPSYNC_KAFKA_SSL_CAFILE", "")  # exported but empty: unset
    security = get_kafka_security()
    assert security.kafka_python_config() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "lgsp-008",
        "sasl_plain_password": PASSWORD,
    }
    assert get_kafka_security() is security  # read once per process


def test_workers_read_the_same_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.config import StreamsSettings

    monkeypatch.setenv("POPSYNC_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("POPSYNC_KAFKA_SASL_USERNAME", "worker")
    monkeypatch.setenv("POPSYNC_KAFKA_SASL_PASSWORD", PASSWORD)
    settings = StreamsSettings()
    assert settings.kafka == scram(sasl_username="worker")
    assert PASSWORD not in repr(settings)


def test_a_bad_worker_setting_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.config import StreamsSettings

    monkeypatch.setenv("POPSYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigurationError, match="POPSYNC_KAFKA_SASL_USERNAME"):
        StreamsSettings()


# --- validation messages -----------------------------------------------------------------------------


def test_sasl_without_credentials_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_of(monkeypatch, security_protocol="SASL_SSL")
    assert (
        "POPSYNC_KAFKA_SASL_USERNAME and POPSYNC_KAFKA_SASL_PASSWORD must be set when "
        "POPSYNC_KAFKA_SECURITY_PROTOCOL is SASL_SSL"
    ) in message


def test_sasl_without_password_names_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_of(monkeypatch, security_protocol="SASL_PLAINTEXT", sasl_username="u")
    assert "POPSYNC_KAFKA_SASL_PASSWORD must be set" in message
    assert "POPSYNC_KAFKA_SASL_USERNAME" not in message


def test_credentials_without_a_sasl_protocol_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_of(monkeypatch, sasl_username="u", sasl_password=PASSWORD)
    assert "POPSYNC_KAFKA_SASL_USERNAME, POPSYNC_KAFKA_SASL_PASSWORD set but" in message
    assert "PLAINTEXT" in message and "SASL_PLAINTEXT or SASL_SSL" in message


def test_tls_files_without_a_tls_protocol_are_refused(
    monkeypatch: pytest.MonkeyPatch, tls_files: dict[str, Path]
) -> None:
    message = error_of(monkeypatch, security_protocol="SASL_PLAINTEXT", sasl_username="u",
                       sasl_password=PASSWORD, ssl_cafile=str(tls_files["ca"]))  # fmt: skip
    assert "POPSYNC_KAFKA_SSL_CAFILE set but POPSYNC_KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT" in message
    assert "SSL or SASL_SSL" in message


def test_a_missing_tls_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    message = error_of(monkeypatch, security_protocol="SSL", ssl_cafile=str(missing))
    assert f"POPSYNC_KAFKA_SSL_CAFILE: no file {missing}" in message


def test_a_key_needs_its_certificate(monkeypatch: pytest.MonkeyPatch, tls_files: dict[str, Path]) -> None:
    message = error_of(monkeypatch, security_protocol="SSL", ssl_keyfile=str(tls_files["key"]))
    assert "POPSYNC_KAFKA_SSL_KEYFILE is set without POPSYNC_KAFKA_SSL_CERTFILE" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("security_protocol", "TLS", "POPSYNC_KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT', 'SSL'"),
        (
            "sasl_mechanism",
            "GSSAPI",
            "POPSYNC_KAFKA_SASL_MECHANISM: Input should be 'PLAIN', 'SCRAM-SHA-256'",
        ),
        (
            "ssl_check_hostname",
            "perhaps",
            "POPSYNC_KAFKA_SSL_CHECK_HOSTNAME: Input should be a valid boolean",
        ),
    ],
)
def test_an_unknown_value_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    message = error_of(monkeypatch, **{name: value})
    assert message.startswith("Kafka security settings are wrong: ")
    assert expected in message


def test_all_problems_are_reported_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    message = error_of(
        monkeypatch, security_protocol="SASL_SSL", sasl_password=PASSWORD, ssl_certfile=str(tmp_path / "c")
    )
    assert "POPSYNC_KAFKA_SASL_USERNAME must be set" in message
    assert f"POPSYNC_KAFKA_SSL_CERTFILE: no file {tmp_path / 'c'}" in message


# --- what the clients receive ------------------------------------------------------------------------


def test_secrets_never_show_in_reprs() -> None:
    security = scram(security_protocol="SASL_SSL", ssl_password="key-pass")
    config = security.kafka_python_config()
    assert isinstance(config, ClientConfig)
    assert config["sasl_plain_password"] == PASSWORD  # the client gets the real one
    for text in (repr(security), str(security), repr(config), str(config), f"{config}"):
        assert PASSWORD not in text and "key-pass" not in text
    assert "'sasl_plain_password': '***'" in repr(config)
    credentials = security.faust_config()["broker_credentials"]
    assert PASSWORD not in repr(credentials)


def test_kafka_python_config_for_sasl_ssl(tls_files: dict[str, Path]) -> None:
    security = scram(
        security_protocol="SASL_SSL",
        ssl_cafile=tls_files["ca"],
        ssl_certfile=tls_files["cert"],
        ssl_keyfile=tls_files["key"],
        ssl_password="key-pass",
        ssl_check_hostname=False,
    )
    assert security.kafka_python_config() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "popsync",
        "sasl_plain_password": PASSWORD,
        "ssl_check_hostname": False,
        "ssl_cafile": str(tls_files["ca"]),
        "ssl_certfile": str(tls_files["cert"]),
        "ssl_keyfile": str(tls_files["key"]),
        "ssl_password": "key-pass",
    }


def test_kafka_python_config_for_ssl_only_has_no_sasl_keys() -> None:
    config = KafkaSecurity(security_protocol="SSL").kafka_python_config()
    assert config == {
        "security_protocol": "SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": None,  # the system CAs
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "ssl_password": None,
    }


@pytest.mark.parametrize("client", [KafkaProducer, KafkaConsumer, KafkaAdminClient])
def test_every_key_is_a_setting_of_kafka_python(client: Any, tls_files: dict[str, Path]) -> None:
    # kafka-python drops unknown keys with at most a warning: a misspelt one would silently do nothing.
    config = scram(security_protocol="SASL_SSL", ssl_cafile=tls_files["ca"]).kafka_python_config()
    assert set(config) <= set(client.DEFAULT_CONFIG)


def test_faust_config_for_scram_over_plaintext() -> None:
    credentials = scram().faust_config()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    # What faust hands aiokafka's consumer and producer.
    assert credentials_to_aiokafka_auth(credentials) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "popsync",
        "sasl_plain_password": PASSWORD,
        "ssl_context": None,
    }


def test_faust_config_for_scram_over_tls(tls_files: dict[str, Path]) -> None:
    security = scram(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", ssl_cafile=tls_files["ca"])
    auth = credentials_to_aiokafka_auth(security.faust_config()["broker_credentials"])
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-256"
    context = auth["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "popsync-test"),),)]


def test_faust_config_for_mutual_tls(tls_files: dict[str, Path]) -> None:
    security = KafkaSecurity(
        security_protocol="SSL",
        ssl_cafile=tls_files["ca"],
        ssl_certfile=tls_files["cert"],
        ssl_keyfile=tls_files["key"],
        ssl_password="key-pass",  # the key file is encrypted: loading it proves the password was used
        ssl_check_hostname=False,
    )
    credentials = security.faust_config()["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SSL"
    assert auth["ssl_context"].check_hostname is False
    assert auth["ssl_context"].verify_mode is ssl.CERT_REQUIRED  # the chain is still checked


def test_a_wrong_key_password_fails_when_the_context_is_built(tls_files: dict[str, Path]) -> None:
    security = KafkaSecurity(
        security_protocol="SSL", ssl_certfile=tls_files["cert"], ssl_keyfile=tls_files["key"],
        ssl_password="wrong",
    )  # fmt: skip
    with pytest.raises(ssl.SSLError):
        security.faust_config()


def test_the_faust_app_gets_the_credentials(tmp_path: Path) -> None:
    from streams.app import create_app
    from streams.config import StreamsSettings

    settings = StreamsSettings(bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, kafka=scram())
    app = create_app(settings)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("popsync", PASSWORD)
    plain = create_app(settings.model_copy(update={"kafka": KafkaSecurity()}))
    assert plain.conf.broker_credentials is None


# --- every kafka-python client of popsync gets the config --------------------------------------------


class Recorder:
    """Stands in for a kafka-python client class: records the keyword arguments it was built with."""

    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.kwargs.append(kwargs)
        return self

    def list_topics(self) -> list[str]:
        return ["t"]

    def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"broker_id": 1}]}  # ensure_topics counts them (replication factor)

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_connector_collector_and_admin_pass_the_settings_through(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors import lgsp
    from popsync import collector
    from streams import topics

    recorders = {"producer": Recorder(), "consumer": Recorder(), "admin": Recorder()}
    monkeypatch.setattr(lgsp, "KafkaProducer", recorders["producer"])
    monkeypatch.setattr(collector, "KafkaConsumer", recorders["consumer"])
    monkeypatch.setattr(topics, "KafkaAdminClient", recorders["admin"])
    names = topics.TopicNames("p")
    explicit = scram(sasl_username="explicit")
    lgsp.LgspConnector("b:1", names, security=explicit)
    collector.Collector("b:1", names, security=explicit)
    topics.ensure_topics("b:1", ["t"], 1, security=explicit)

    # Without an argument: the POPSYNC_KAFKA_* settings of the process.
    monkeypatch.setenv("POPSYNC_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("POPSYNC_KAFKA_SASL_USERNAME", "from-env")
    monkeypatch.setenv("POPSYNC_KAFKA_SASL_PASSWORD", PASSWORD)
    lgsp.LgspConnector("b:1", names)
    collector.Collector("b:1", names)
    topics.ensure_topics("b:1", ["t"], 1)

    for what, recorder in recorders.items():
        users = [kwargs.get("sasl_plain_username") for kwargs in recorder.kwargs]
        assert users == ["explicit", "from-env"], what
        assert all(kwargs["security_protocol"] == "SASL_PLAINTEXT" for kwargs in recorder.kwargs), what


# --- the local broker's SCRAM listener (its properties; the broker itself runs in the integration tests) --


def test_local_kafka_with_scram_users_listens_with_sasl(tmp_path: Path) -> None:
    from popsync.broker import LocalKafka

    broker = LocalKafka(data_dir=tmp_path, scram_users={"popsync": "s3cret"})
    broker.data_dir = tmp_path
    props = dict(line.split("=", 1) for line in broker._properties(9101, 9102, 9103).splitlines())
    assert props["listeners"] == (
        "SASL_PLAINTEXT://127.0.0.1:9101,PLAINTEXT://127.0.0.1:9103,CONTROLLER://127.0.0.1:9102"
    )
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:9101,PLAINTEXT://127.0.0.1:9103"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert (
        "ScramLoginModule required;" in props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    )
    assert broker._scram_arguments() == ["--add-scram", "SCRAM-SHA-512=[name=popsync,password=s3cret]"]


def test_local_kafka_without_scram_users_is_unchanged(tmp_path: Path) -> None:
    from popsync.broker import LocalKafka

    broker = LocalKafka(data_dir=tmp_path)
    broker.data_dir = tmp_path
    props = dict(line.split("=", 1) for line in broker._properties(9101, 9102, 9101).splitlines())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9101,CONTROLLER://127.0.0.1:9102"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert "sasl.enabled.mechanisms" not in props
    assert broker._scram_arguments() == []


@pytest.mark.parametrize(
    ("users", "mechanism"),
    [({"a b": "x"}, "SCRAM-SHA-512"), ({"a": "p,w"}, "SCRAM-SHA-512"), ({"a": "x"}, "PLAIN")],
)
def test_local_kafka_refuses_what_storage_format_would_misread(users: dict[str, str], mechanism: str) -> None:
    from popsync.broker import LocalKafka

    with pytest.raises(ValueError, match="SCRAM"):
        LocalKafka(scram_users=users, scram_mechanism=mechanism)
