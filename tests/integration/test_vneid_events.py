"""VNeID account events on a real Kafka broker: each transition published exactly once, in order per
citizen, across connector restarts, and while the server changes accounts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.partitioner.default import murmur2

from connectors.vneid import READY_LINE, VneidEventConnector
from mocks.vneid.accounts import AccountsDB, open_accounts
from mocks.vneid.config import VneidSettings
from mocks.vneid.exceptions import IllegalTransitionError
from mocks.vneid.matching import Applicant
from mocks.vneid.outbox import AccountEvent, Outbox
from mocks.vneid.server import VneidServer
from mocks.vneid.service import AccountService
from schemas.citizen import Citizen
from schemas.personal_id import make_personal_id
from streams.eid import envelope_events
from streams.messages import HEADER_ENVELOPE

pytestmark = pytest.mark.integration

CITIZENS = [
    Citizen(
        personal_id=make_personal_id("019", "male", 1960 + n, n), full_name=f"Hoàng Văn Nam {n}",
        date_of_birth=date(1960 + n, 1, 2), gender="male", permanent_province="019",
    )
    for n in range(6)
]  # fmt: skip
NPD = {c.personal_id: c for c in CITIZENS}
PARTITIONS = 3


def lookup(ids: list[str]) -> dict[str, Citizen]:
    return {i: NPD[i] for i in ids if i in NPD}


def applicant(citizen: Citizen) -> Applicant:
    return Applicant(citizen.personal_id, citizen.full_name, citizen.date_of_birth, citizen.gender)


@pytest.fixture
def topic(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> str:
    name = unique_name("vneid-events")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        admin.close()
    return name


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every message on `topic`, read from the beginning to the end offsets the broker reports now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        while not (partitions := consumer.partitions_for_topic(topic)):
            assert time.monotonic() < deadline, f"topic {topic} has no partitions"
            consumer.poll(timeout_ms=100)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        records: list[Any] = []
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            assert time.monotonic() < deadline, f"read {len(records)} messages of {topic} before the timeout"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def events_on(records: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """(partition, event) of every event the messages carry, envelopes unpacked, in offset order."""
    return [
        (r.partition, json.loads(value))
        for r in records
        for _, value in envelope_events(r.key, r.value, r.headers)
    ]


def check_exactly_once(records: list[Any], events: list[AccountEvent]) -> None:
    """One copy of every outbox event, in the partition Kafka's default partitioner gives its personal
    ID (where another producer's message keyed by it would land), in the outbox's order per citizen."""
    values = events_on(records)
    assert sorted(v["event_id"] for _, v in values) == sorted(e.event_id for e in events)
    assert all(r.headers and dict(r.headers)[HEADER_ENVELOPE] for r in records)  # envelopes, all of them
    for partition, value in values:
        assert partition == (murmur2(value["personal_id"].encode()) & 0x7FFFFFFF) % PARTITIONS
    for citizen in {e.personal_id for e in events}:
        # One citizen's events are in one partition, so reading it in offset order gives their order.
        on_topic = [v["event_id"] for _, v in values if v["personal_id"] == citizen]
        assert on_topic == [e.event_id for e in events if e.personal_id == citizen]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AccountsDB]:
    store = open_accounts(f"sqlite:///{tmp_path / 'vneid.sqlite3'}")
    yield store
    store.close()


def test_each_transition_reaches_kafka_exactly_once_across_restarts(
    kafka_bootstrap: str, topic: str, db: AccountsDB
) -> None:
    service = AccountService(db, lookup)
    one, two, three = CITIZENS[:3]
    service.apply(applicant(one), "019", 1)
    service.apply(applicant(two), "019", 2)
    service.apply(applicant(three), "019", 1)
    code = service.approve(one.personal_id).activation_code
    assert code is not None
    service.activate(one.personal_id, code, "112233")
    service.lock(one.personal_id, "lost phone")
    service.unlock(one.personal_id)
    service.verify_in_person(two.personal_id)
    with pytest.raises(IllegalTransitionError):
        service.approve(two.personal_id)  # illegal: no event
    url = f"sqlite:///{db.connections.path}"

    with VneidEventConnector(kafka_bootstrap, topic, Outbox.open(url)) as first:
        assert first.drain().published == 8  # 3 applications, approve, activate, lock, unlock, verify
    check_exactly_once(read_topic(kafka_bootstrap, topic), db.outbox.events())

    # A restarted connector finds nothing pending; new changes go out, the earlier ones do not go again.
    service.verify_in_person(three.personal_id)
    with VneidEventConnector(kafka_bootstrap, topic, Outbox.open(url)) as second:
        assert second.drain().published == 1
        assert second.drain().published == 0
    records = read_topic(kafka_bootstrap, topic)
    assert len(events_on(records)) == 9
    check_exactly_once(records, db.outbox.events())
    mine = [v for _, v in events_on(records) if v["personal_id"] == three.personal_id]
    assert [(v["from"], v["to"], v["level"], v["province"]) for v in mine] == [
        (None, "applied", 1, "019"),
        ("applied", "approved", 2, "019"),
    ]


def test_the_connector_publishes_while_the_server_changes_accounts(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    settings = VneidSettings(
        database_url=f"sqlite:///{tmp_path / 'vneid.sqlite3'}",
        clients={"police-019": {"secret": "k-019", "scopes": ["account.officer"]}},
        access_log=False,
    )
    stop = threading.Event()
    with VneidServer(settings, citizens=lookup) as server:
        grant = {"grant_type": "client_credentials"}
        token = httpx.post(f"{server.base_url}/oauth/token", data=grant, auth=("police-019", "k-019"))
        officer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        connector = VneidEventConnector(kafka_bootstrap, topic, Outbox.open(settings.database_url))
        worker = threading.Thread(target=connector.run, args=(stop, 0.05), name="vneid-connector")
        worker.start()
        try:
            with httpx.Client(base_url=server.base_url, headers=officer) as client:
                for citizen in CITIZENS[3:]:
                    body = {
                        "personal_id": citizen.personal_id, "full_name": citizen.full_name,
                        "date_of_birth": citizen.date_of_birth.isoformat(), "gender": "male",
                        "province": "019", "level": 1,
                    }  # fmt: skip
                    assert client.post("/v1/accounts", json=body).status_code == 201
                    assert client.post(f"/v1/accounts/{citizen.personal_id}/approve").status_code == 200
                    assert client.post(
                        f"/v1/accounts/{citizen.personal_id}/lock", json={"reason": "r"}
                    ).is_success
            deadline = time.monotonic() + 60
            while connector.outbox.pending_count():
                assert time.monotonic() < deadline, "the connector did not drain the outbox"
                time.sleep(0.05)  # polling the outbox: the connector thread signals nothing else
        finally:
            stop.set()
            worker.join(30)
            connector.close()
        events = connector.outbox.events()
        connector.outbox.close()
    assert len(events) == 9
    check_exactly_once(read_topic(kafka_bootstrap, topic), events)


def test_the_connector_process_drains_what_was_written_before_it_was_told_to_stop(
    kafka_bootstrap: str, topic: str, db: AccountsDB, tmp_path: Path
) -> None:
    service = AccountService(db, lookup)
    for citizen in CITIZENS[:3]:
        service.apply(applicant(citizen), "019", 1)
    command = [
        sys.executable, "-m", "connectors.vneid", "--database-url", f"sqlite:///{db.connections.path}",
        "--topic", topic, "--bootstrap-servers", kafka_bootstrap, "--interval-s", "0.05",
    ]  # fmt: skip
    log = tmp_path / "connector.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        service.verify_in_person(CITIZENS[1].personal_id)  # written while it runs
        deadline = time.monotonic() + 60
        while READY_LINE not in log.read_text():  # its SIGTERM handler is installed
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)  # the outbox is complete: drain the rest, then exit
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert db.outbox.pending_count() == 0
    check_exactly_once(read_topic(kafka_bootstrap, topic), db.outbox.events())
