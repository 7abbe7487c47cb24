"""Batch envelopes: what the connector packs, the worker unpacks record by record, in source order."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from connectors.lgsp import ENVELOPE_RECORDS, LgspConnector, partition_key
from streams.holders import FirstHolders
from streams.messages import HEADER_ENVELOPE, HEADER_SEQS, envelope_lines, envelope_value
from streams.reconcile import unpack
from streams.topics import TopicNames

pytestmark = pytest.mark.unit

TOPICS = TopicNames("env")
PARTITIONS = 6


class Future:
    def add_errback(self, _fn: Any) -> None:
        pass


class Producer:
    """KafkaProducer's `send`, `partitions_for`, `flush`, `close`, keeping what was sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Any = None,
        partition: int | None = None,
    ) -> Future:
        self.sent.append(
            {"topic": topic, "value": value, "key": key, "headers": headers, "partition": partition}
        )
        return Future()

    def flush(self) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def record(i: int, pid: str) -> dict[str, Any]:
    return {
        "record_id": f"r{i}",
        "sector": "labour",
        "province": "008",
        "personal_id": pid,
        "full_name": "Nguyễn Văn An",
        "date_of_birth": "1990-01-02",
        "gender": "male",
    }


def as_events(sent: list[dict[str, Any]]) -> list[Any]:
    """The messages as faust hands them to an agent, partition by partition in send order."""
    events = []
    for offset, m in enumerate(sent):
        partition = m["partition"]
        if partition is None:  # keyed: Kafka's default partitioner
            partition = (murmur2(m["key"]) & 0x7FFFFFFF) % PARTITIONS
        message = SimpleNamespace(
            value=m["value"],
            headers=m["headers"],
            partition=partition,
            offset=offset,
            topic=m["topic"],
            timestamp=1.7e9,
        )
        events.append(SimpleNamespace(value=m["value"], message=message))
    return events


def test_envelopes_carry_every_record_in_source_order_on_its_key_partition() -> None:
    pids = [f"008090{i % 37:06d}" for i in range(1200)]  # 37 people, many records each
    records = [record(i, pid) for i, pid in enumerate(pids)]
    producer = Producer()
    with LgspConnector("unused:9092", TOPICS, producer=producer) as connector:  # type: ignore[arg-type]
        report = connector.publish_records(records, "gen")
    assert report.published == 1200
    envelopes = [m for m in producer.sent if m["topic"] == TOPICS.records("labour")]
    assert len(envelopes) < 1200 / 10, "records travel many to a message"
    assert all(dict(m["headers"])[HEADER_ENVELOPE] for m in envelopes)
    assert max(int(dict(m["headers"])[HEADER_ENVELOPE]) for m in envelopes) <= ENVELOPE_RECORDS

    items = unpack(as_events(envelopes))
    assert sorted(json.loads(i.value)["record_id"] for i in items) == sorted(r["record_id"] for r in records)
    for item in items:
        body = json.loads(item.value)
        # the partition Kafka's default partitioner gives the record's own key: a person's records together
        key = partition_key(body["record_id"], body).encode()
        assert item.partition == (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        assert item.seq == int(body["record_id"][1:]) + 1  # the source's sequence numbers, 1 first
    # Within a partition, records keep the order the source published them in.
    by_partition: dict[int, list[int]] = {}
    for item in items:
        by_partition.setdefault(item.partition, []).append(item.seq)
    assert all(seqs == sorted(seqs) for seqs in by_partition.values())


def test_a_republication_travels_alone_with_its_version() -> None:
    producer = Producer()
    with LgspConnector("unused:9092", TOPICS, producer=producer) as connector:  # type: ignore[arg-type]
        connector.republish(record(1, "008090000001"), 2)
        connector.flush()
    (message,) = producer.sent
    headers = dict(message["headers"])
    assert HEADER_ENVELOPE not in headers and headers["popsync-version"] == b"2"
    (item,) = unpack(as_events(producer.sent))
    assert item.version == 2 and json.loads(item.value)["record_id"] == "r1"


def test_an_envelope_whose_count_disagrees_is_read_as_one_message_value() -> None:
    value = envelope_value([b'{"a":1}', b'{"b":2}'])
    assert envelope_lines(value, 2) == [b'{"a":1}', b'{"b":2}']
    assert envelope_lines(value, 3) == [value]  # then parse_line judges (and rejects) it, never lost
    event = as_events(
        [{"topic": "t", "value": value, "key": b"k", "headers": [(HEADER_ENVELOPE, b"3")], "partition": 0}]
    )
    (item,) = unpack(event)
    assert item.value == value


def test_unreadable_sequence_numbers_are_unknown_not_a_crash() -> None:
    value = envelope_value([b"{}", b"{}"])
    headers = [(HEADER_ENVELOPE, b"2"), (HEADER_SEQS, b"1,x")]
    items = unpack(
        as_events([{"topic": "t", "value": value, "key": None, "headers": headers, "partition": 1}])
    )
    assert [i.seq for i in items] == [-1, -1]
    assert [i.origin for i in items] == ["t:1:0#0", "t:1:0#1"]


class Table:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.changelog: list[tuple[int, str]] = []

    def send_changelog(self, partition: int, key: str, value: str) -> None:
        self.changelog.append((partition, key))


def test_first_holders_write_one_entry_per_batch_and_partition_and_rebuild_the_same_index() -> None:
    table = Table()
    holders = FirstHolders(table)
    holders.hold(0, "labour|008|A", "r1", "t:0:5")
    holders.hold(0, "labour|008|A", "r9", "t:0:6")  # a later record: the first holder stays
    holders.hold(0, "labour|008|B", "r2", "t:0:6")
    holders.hold(3, "labour|008|C", "r3", "t:3:1")
    holders.write()
    assert sorted(table.changelog) == [(0, "holders|t:0:5"), (3, "holders|t:3:1")]
    again = FirstHolders(table)
    asyncio.run(again.rebuild())
    assert again.index == holders.index == {"labour|008|A": "r1", "labour|008|B": "r2", "labour|008|C": "r3"}
    again.write()  # nothing new: nothing written
    assert len(table.changelog) == 2


def civil(i: int, **more: Any) -> dict[str, Any]:
    return {
        "record_id": f"c{i}",
        "sector": "civil_status",
        "province": "008" if i % 2 else "052",
        "event": ("birth", "death", "marriage")[i % 3],
        "registration_no": f"REG-{i % 5}",
        "full_name": "Nguyễn Văn An",
        "date_of_birth": "1990-01-02",
        "gender": "male",
        **more,
    }


def test_every_civil_status_record_shares_one_partition_in_publish_order() -> None:
    # Conflicting registrations (REG-0 … REG-4 repeat), a birth with a stray personal_id, people named twice:
    # whatever a record carries, all of them are decided one after another in the order published.
    records = [civil(i, personal_id=f"008090{i % 7:06d}") if i % 4 else civil(i) for i in range(600)]
    assert {partition_key(r["record_id"], r) for r in records} == {"civil_status"}
    producer = Producer()
    with LgspConnector("unused:9092", TOPICS, producer=producer) as connector:  # type: ignore[arg-type]
        connector.publish_records(records, "civil")
        connector.republish(civil(3, personal_id="008090000003"), 2)
        connector.flush()
    items = unpack(as_events(producer.sent))
    assert len({i.partition for i in items}) == 1
    assert [json.loads(i.value)["record_id"] for i in items] == [r["record_id"] for r in records] + ["c3"]


def test_a_record_id_repeated_by_a_later_connector_of_the_run_is_dead_lettered() -> None:
    seen: set[str] = set()  # what simulate hands every stage's connector
    first, second = Producer(), Producer()
    with LgspConnector("unused:9092", TOPICS, producer=first, seen=seen) as connector:  # type: ignore[arg-type]
        assert connector.publish_records([civil(1), civil(2)], "stage-1").published == 2
    with LgspConnector("unused:9092", TOPICS, producer=second, seen=seen) as connector:  # type: ignore[arg-type]
        # c1 again (another registration this time), and c1 of another sector: a record of its own.
        report = connector.publish_records(
            [civil(1, registration_no="NEW"), civil(3), record(1, "1")], "stage-2"
        )
    assert (report.published, report.rejected) == (2, 1)
    (dead,) = [m for m in second.sent if m["topic"] == TOPICS.deadletter]
    body = json.loads(dead["value"])
    assert body["record_id"] == "c1" and "repeats an earlier record" in body["reason"]
    records_sent = [m for m in second.sent if m["topic"] != TOPICS.deadletter]
    assert sorted(json.loads(i.value)["record_id"] for i in unpack(as_events(records_sent))) == ["c3", "r1"]
    assert seen == {"civil_status|008|c1", "civil_status|052|c2", "civil_status|008|c3", "labour|008|r1"}
