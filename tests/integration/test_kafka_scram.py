"""SASL/SCRAM end to end: a local broker that only lets SCRAM users in, and every popsync client through it.

One broker of its own for the module (the session broker is PLAINTEXT), with a SASL_PLAINTEXT listener
for SCRAM-SHA-512 and one user; kafka-python clients, the LGSP connector, the collector and a real
`popsync worker` process (faust/aiokafka, configured only by POPSYNC_KAFKA_*) all go through it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from pydantic import SecretStr

from connectors.generate import GenerateSpec, generate_records
from connectors.lgsp import LgspConnector
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.population import generate_population
from mocks.ndxp.server import NdxpServer
from popsync.collector import Collector
from popsync.kafka_local import KafkaUnavailableError, LocalKafka
from popsync.services import ManagedProcess, popsync_command
from schemas.citizen import Citizen
from streams.kafka_security import KafkaSecurity
from streams.topics import TopicNames, ensure_topics

pytestmark = pytest.mark.integration

USER, SECRET = "popsync-scram", "scram-secret-7c1f"
AGENCY, NDXP_KEY = "popsync-streams", "integration-scram-key"
REFUSED_WITHIN_S = 5.0  # how long a client with wrong credentials may keep trying before it gives up


@pytest.fixture(scope="module")
def scram_broker() -> Iterator[LocalKafka]:
    """A broker of its own whose client listener takes SCRAM-SHA-512 users only (one of them)."""
    broker = LocalKafka(partitions=3, heap="512m", scram_users={USER: SECRET})
    try:
        broker.start()
    except KafkaUnavailableError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no local Kafka broker here: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def security() -> KafkaSecurity:
    return KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=SECRET,
    )


def consume(bootstrap: str, security: KafkaSecurity, topic: str, group: str, count: int) -> list[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **security.kafka_python_config(),
    )
    received: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        while len(received) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend(record.value for record in records)
    finally:
        consumer.close()
    return received


def test_the_broker_listens_with_sasl_scram(scram_broker: LocalKafka) -> None:
    assert scram_broker.bootstrap_servers != scram_broker.internal_bootstrap_servers
    assert scram_broker.data_dir is not None
    props = (scram_broker.data_dir / "server.properties").read_text()
    assert f"SASL_PLAINTEXT://{scram_broker.bootstrap_servers}" in props
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512\n" in props
    assert SECRET not in props  # the user lives in the KRaft metadata, not in a file


def test_scram_credentials_round_trip(
    scram_broker: LocalKafka, security: KafkaSecurity, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("scram-roundtrip")
    ensure_topics(scram_broker.bootstrap_servers, [topic], 3, security=security)
    producer = KafkaProducer(
        bootstrap_servers=scram_broker.bootstrap_servers, acks="all", **security.kafka_python_config()
    )
    try:
        for i in range(10):
            producer.send(topic, key=str(i % 3).encode(), value=f"msg-{i}".encode())
        producer.flush(timeout=30)
    finally:
        producer.close()

    received = consume(scram_broker.bootstrap_servers, security, topic, unique_name("scram-group"), 10)

    assert sorted(received) == sorted(f"msg-{i}".encode() for i in range(10))


def refusals(broker: LocalKafka) -> int:
    """How often the broker has refused a SCRAM login for invalid credentials."""
    assert broker.log_file is not None
    return broker.log_file.read_text(errors="replace").count(
        "invalid credentials with SASL mechanism SCRAM-SHA-512"
    )


@pytest.mark.timeout(180)  # a client that kept trying instead of giving up would hang here
@pytest.mark.parametrize("client", [KafkaAdminClient, KafkaProducer, KafkaConsumer])
def test_a_wrong_password_is_refused(
    scram_broker: LocalKafka, security: KafkaSecurity, client: type, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = security.model_copy(update={"sasl_password": SecretStr("not-the-secret")}).kafka_python_config()
    refused_before = refusals(scram_broker)
    # INFO, not DEBUG: kafka-python's KafkaAdminClient logs its whole configuration, password included,
    # at DEBUG: never run the kafka loggers at DEBUG with real credentials.
    with caplog.at_level(logging.INFO, logger="kafka"), pytest.raises(KafkaError):
        # kafka-python 3 retries a failed SASL handshake until its bootstrap timeout, then gives up with
        # KafkaTimeoutError; what it logs on the way is either the broker's SaslAuthenticationFailedError
        # or a bare "socket disconnected" (the broker closes the connection right after its answer).
        client(
            bootstrap_servers=scram_broker.bootstrap_servers,
            bootstrap_timeout_ms=int(REFUSED_WITHIN_S * 1000),
            **wrong,
        )
    # The reason is the broker's verdict on the credentials, not a network problem.
    assert refusals(scram_broker) > refused_before
    assert "not-the-secret" not in caplog.text


@pytest.mark.timeout(180)
def test_a_client_without_credentials_gets_nothing(scram_broker: LocalKafka) -> None:
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=scram_broker.bootstrap_servers,
            bootstrap_timeout_ms=int(REFUSED_WITHIN_S * 1000),
        )


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    return list(generate_population(31, {"008": 300}))


SPEC = GenerateSpec.model_validate(
    {
        "records": 80,
        "unsynced": {"mismatch": 3, "not_found": 2, "deceased": 1},
        "corrected": {"no_diacritics": 2},
    }
)
EXPECTED = Counter({"cleaned": 72, "unsynced/mismatch": 3, "unsynced/not_found": 2, "unsynced/deceased": 1,
                    "corrected": 2})  # fmt: skip


def test_the_lgsp_connector_publishes_through_scram(
    scram_broker: LocalKafka,
    security: KafkaSecurity,
    population: list[Citizen],
    unique_name: Callable[[str], str],
) -> None:
    topics = TopicNames(unique_name("popsync.scram-lgsp"))
    ensure_topics(scram_broker.bootstrap_servers, topics.all(), 3, security=security)
    records = generate_records(SPEC, sector="insurance", province="008", citizens=population, seed=5)

    with LgspConnector(scram_broker.bootstrap_servers, topics, security=security) as connector:
        report = connector.publish_records([*records, {"sector": "insurance"}], "scram-test")

    assert (report.published, report.rejected) == (80, 1)
    consumer = KafkaConsumer(
        bootstrap_servers=scram_broker.bootstrap_servers, **security.kafka_python_config()
    )
    try:
        parts = [TopicPartition(topics.deadletter, p) for p in range(3)]
        assert sum(consumer.end_offsets(parts).values()) == 1
        # Records travel in envelopes (README "Envelopes"): count the records the messages carry.
        parts = [TopicPartition(topics.records("insurance"), p) for p in range(3)]
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        carried, read = 0, 0
        while read < sum(ends.values()):
            for messages in consumer.poll(timeout_ms=2000).values():
                for m in messages:
                    carried += int(dict(m.headers).get("popsync-envelope", b"1"))
                    read += 1
        assert carried == 80
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def ndxp(tmp_path_factory: pytest.TempPathFactory, population: list[Citizen]) -> Iterator[NdxpServer]:
    path = tmp_path_factory.mktemp("ndxp-scram") / "npd.sqlite3"
    db = PopulationDB.create(path)
    try:
        db.load(population)
    finally:
        db.close()
    settings = NdxpSettings(
        database_url=f"sqlite:///{path}", api_keys={AGENCY: NDXP_KEY}, access_log=False, log_level="warning"
    )
    with NdxpServer(settings) as server:
        yield server


def test_a_worker_configured_by_env_reconciles_through_scram(
    scram_broker: LocalKafka,
    security: KafkaSecurity,
    ndxp: NdxpServer,
    population: list[Citizen],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topics = TopicNames(unique_name("popsync.scram-worker"))
    bootstrap = scram_broker.bootstrap_servers
    env = {
        "POPSYNC_BOOTSTRAP_SERVERS": bootstrap,
        # The worker's only way to the broker: the variables every popsync Kafka client reads.
        "POPSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "POPSYNC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "POPSYNC_KAFKA_SASL_USERNAME": USER,
        "POPSYNC_KAFKA_SASL_PASSWORD": SECRET,
        "STREAMS_APP_ID": unique_name("popsync-scram"),
        "STREAMS_TOPIC_PREFIX": topics.prefix,
        "STREAMS_PARTITIONS": "3",
        "STREAMS_NDXP_URL": ndxp.base_url,
        "STREAMS_NDXP_API_KEY": NDXP_KEY,
        "STREAMS_WORKER_ID": "worker-scram",
        "STREAMS_DATA_DIR": str(tmp_path / "worker"),
        "STREAMS_LOG_LEVEL": "INFO",
    }
    records = generate_records(SPEC, sector="insurance", province="008", citizens=population, seed=6)
    # The worker creates the topics itself (through SCRAM); publishing waits for them.
    worker = ManagedProcess("worker-scram", popsync_command("worker"), env, tmp_path / "worker.log").start()
    with contextlib.ExitStack() as stack:
        stack.callback(worker.stop)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, **security.kafka_python_config())
        stack.callback(admin.close)
        worker.wait_ready(lambda: topics.results in set(admin.list_topics()), timeout=90)
        collector = Collector(bootstrap, topics, security=security).start()
        stack.callback(collector.stop)
        with LgspConnector(bootstrap, topics, security=security) as connector:
            assert connector.publish_records(records, "scram-worker").published == 80

        deadline = time.monotonic() + 180
        while len(collector.results) < 80:
            collector.check()
            assert worker.alive(), f"the worker died:\n{worker.log_tail(40)}"
            assert time.monotonic() < deadline, (
                f"{len(collector.results)}/80 results after 180 s:\n{worker.log_tail(40)}"
            )
            time.sleep(0.2)  # the collector fills from its own thread; nothing to await but the count
        with collector.lock:
            outcomes = Counter(result.outcome for result in collector.results.values())

    assert outcomes == EXPECTED
    log = worker.log_path.read_text(errors="replace")
    assert "Traceback" not in log, worker.log_tail(40)
    assert f"Authenticated as {USER} via SCRAM-SHA-512" in log  # aiokafka's word: faust logged in with SCRAM
    assert SECRET not in log
