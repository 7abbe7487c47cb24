"""Unit tests of the VNeID event connector against a fake producer: what is marked sent, and when."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from connectors.exceptions import DeliveryError
from connectors.vneid import VneidEventConnector
from mocks.vneid.accounts import AccountsDB, open_accounts
from mocks.vneid.matching import Applicant

pytestmark = pytest.mark.unit


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

    def send(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Future:
        self.sent.append({"topic": topic, "key": key, "value": json.loads(value), "headers": dict(headers)})
        return Future(KafkaTimeoutError("no ack") if len(self.sent) in self.fail_at else None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AccountsDB]:
    store = open_accounts(f"sqlite:///{tmp_path / 'v.sqlite3'}")
    for n in range(3):
        store.apply(Applicant(f"00809012345{n}", f"Người {n}", date(1990, 1, 1), "male"), "008", 1)
    yield store
    store.close()


def test_drain_publishes_every_pending_event_once_keyed_by_personal_id(db: AccountsDB) -> None:
    producer = FakeProducer()
    connector = VneidEventConnector("unused:9092", "vneid.events", db.outbox, batch_size=2, producer=producer)
    report = connector.drain()
    assert (report.published, report.batches) == (3, 2)
    assert [m["key"] for m in producer.sent] == [f"00809012345{n}".encode() for n in range(3)]
    assert [m["headers"]["event-id"].decode() for m in producer.sent] == [
        m["value"]["event_id"] for m in producer.sent
    ]
    assert db.outbox.pending_count() == 0
    assert connector.drain().published == 0 and len(producer.sent) == 3  # nothing twice


def test_a_failure_marks_only_the_confirmed_prefix_and_the_rest_is_retried_in_order(db: AccountsDB) -> None:
    failing = FakeProducer(fail_at={2})
    connector = VneidEventConnector("unused:9092", "t", db.outbox, producer=failing)
    with pytest.raises(DeliveryError, match=r"2 account events were not confirmed .*\(1 were") as info:
        connector.drain()
    assert "008090" not in str(info.value)  # no personal ID in the message
    assert db.outbox.pending_count() == 2

    retry = FakeProducer()
    VneidEventConnector("unused:9092", "t", db.outbox, producer=retry).drain()
    first = failing.sent[0]["value"]["event_id"]
    assert [m["value"]["event_id"] for m in retry.sent] == [
        e.event_id for e in db.outbox.events() if e.event_id != first
    ]
    assert db.outbox.pending_count() == 0
