"""Unit tests of the VNeID event connector against a fake producer: envelopes, and what is marked sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.partitioner.default import murmur2

import connectors.vneid as vneid
from connectors.exceptions import DeliveryError
from connectors.vneid import HEADER_EVENT_IDS, VneidEventConnector
from mocks.vneid.accounts import AccountsDB, open_accounts
from mocks.vneid.lifecycle import Action
from mocks.vneid.matching import Applicant
from streams.eid import envelope_events
from streams.messages import HEADER_ENVELOPE

pytestmark = pytest.mark.unit

PARTITIONS = 3


class Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class FakeProducer:
    """Records sends; the broker 'fails' every send whose number is in `fail_at` (1-based, cumulative)."""

    def __init__(self, fail_at: set[int] | None = None) -> None:
        self.fail_at = fail_at or set()
        self.sent: list[dict[str, Any]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def send(
        self,
        topic: str,
        *,
        value: bytes,
        partition: int,
        headers: list[tuple[str, bytes]],
        key: bytes | None = None,
    ) -> Future:
        events = [json.loads(v) for _, v in envelope_events(key, value, headers)]
        self.sent.append(
            {"topic": topic, "partition": partition, "key": key, "events": events, "headers": dict(headers)}
        )
        return Future(KafkaTimeoutError("no ack") if len(self.sent) in self.fail_at else None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass

    def events(self) -> list[dict[str, Any]]:
        return [e for m in self.sent for e in m["events"]]


def pid(n: int) -> str:
    return f"00809012{n:04d}"


def kafka_partition(personal_id: str) -> int:
    """What Kafka's default partitioner gives a message keyed by the personal ID."""
    return (murmur2(personal_id.encode()) & 0x7FFFFFFF) % PARTITIONS


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AccountsDB]:
    store = open_accounts(f"sqlite:///{tmp_path / 'v.sqlite3'}")
    for n in range(12):
        store.apply(Applicant(pid(n), f"Người {n}", date(1990, 1, 1), "male"), "008", 1)
    for n in range(0, 12, 2):  # a second event for every other citizen, after all the applications
        store.change(pid(n), Action.APPROVE)
    yield store
    store.close()


def test_drain_sends_envelopes_per_partition_in_outbox_order(db: AccountsDB) -> None:
    producer = FakeProducer()
    connector = VneidEventConnector("unused:9092", "vneid.events", db.outbox, producer=producer)
    report = connector.drain()
    outbox = db.outbox.events()
    assert (report.published, report.batches) == (18, 1)
    assert report.envelopes == len(producer.sent) <= PARTITIONS
    for message in producer.sent:
        ids = [e["event_id"] for e in message["events"]]
        assert message["key"] is None
        assert message["headers"][HEADER_ENVELOPE] == str(len(ids)).encode()
        assert message["headers"][HEADER_EVENT_IDS] == ",".join(ids).encode()
        # Each event in the partition Kafka's partitioner gives its personal ID, in outbox order.
        assert {kafka_partition(e["personal_id"]) for e in message["events"]} == {message["partition"]}
        assert ids == [e.event_id for e in outbox if kafka_partition(e.personal_id) == message["partition"]]
    assert sorted(e["event_id"] for e in producer.events()) == sorted(e.event_id for e in outbox)
    assert producer.events()[0] == json.loads(vneid.event_line(outbox[0]))
    assert db.outbox.pending_count() == 0
    assert connector.drain().published == 0 and len(producer.sent) == report.envelopes  # nothing twice


def test_envelopes_close_at_their_event_and_byte_limits(
    db: AccountsDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = len(vneid.event_line(db.outbox.events()[0]))
    monkeypatch.setattr(vneid, "ENVELOPE_EVENTS", 2)
    producer = FakeProducer()
    VneidEventConnector("unused:9092", "t", db.outbox, producer=producer).drain()
    assert max(len(m["events"]) for m in producer.sent) == 2
    assert len(producer.events()) == 18

    db.apply(Applicant(pid(99), "Người 99", date(1990, 1, 1), "male"), "008", 1)
    db.apply(Applicant(pid(98), "Người 98", date(1990, 1, 1), "male"), "008", 1)
    monkeypatch.setattr(vneid, "ENVELOPE_EVENTS", 1000)
    monkeypatch.setattr(vneid, "ENVELOPE_BYTES", line + 10)  # room for one event line, not two
    producer = FakeProducer()
    VneidEventConnector("unused:9092", "t", db.outbox, producer=producer).drain()
    assert [len(m["events"]) for m in producer.sent] == [1, 1]


def test_a_failed_envelope_marks_only_the_events_before_it_in_outbox_order(
    db: AccountsDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vneid, "ENVELOPE_EVENTS", 2)
    failing = FakeProducer(fail_at={3})
    connector = VneidEventConnector("unused:9092", "t", db.outbox, producer=failing)
    with pytest.raises(DeliveryError, match=r"account events were not confirmed .*\(\d+ were") as info:
        connector.drain()
    assert "008090" not in str(info.value)  # no personal ID in the message
    failed = {e["event_id"] for e in failing.sent[2]["events"]}
    outbox = db.outbox.events()
    first_failed = next(i for i, e in enumerate(outbox) if e.event_id in failed)
    sent = [e.event_id for e in outbox if e.event_id not in {p.event_id for p in db.outbox.pending(100)}]
    assert sent == [e.event_id for e in outbox[:first_failed]]  # the confirmed prefix, nothing after it

    retry = FakeProducer()
    VneidEventConnector("unused:9092", "t", db.outbox, producer=retry).drain()
    assert sorted(e["event_id"] for e in retry.events()) == sorted(e.event_id for e in outbox[first_failed:])
    for p in range(PARTITIONS):  # per partition (per citizen) the retry keeps outbox order
        mine = [e["event_id"] for m in retry.sent if m["partition"] == p for e in m["events"]]
        assert mine == [e.event_id for e in outbox[first_failed:] if kafka_partition(e.personal_id) == p]
    assert db.outbox.pending_count() == 0


def test_a_topic_without_partitions_leaves_every_event_pending(db: AccountsDB) -> None:
    class NoTopic(FakeProducer):
        def partitions_for(self, topic: str) -> set[int]:
            raise KafkaTimeoutError("Failed to update metadata after 60.0 secs.")

    with pytest.raises(DeliveryError, match="no partitions of topic 't'"):
        VneidEventConnector("unused:9092", "t", db.outbox, producer=NoTopic()).drain()
    assert db.outbox.pending_count() == 18


def test_an_event_line_is_the_outbox_message_on_one_line(db: AccountsDB) -> None:
    for event in db.outbox.events():
        line = vneid.event_line(event)
        assert b"\n" not in line
        assert json.loads(line) == event.to_message()


def test_the_connector_command_needs_kafka(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv("POPSYNC_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(SystemExit) as info:
        vneid.main(["--database-url", "sqlite:///unused.sqlite3", "--topic", "t"])
    assert info.value.code == 2
    assert "POPSYNC_BOOTSTRAP_SERVERS" in capsys.readouterr().err
