"""The lag monitor (`popsync.lagwatch`) and `popsync lag` against the session's real broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import typer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from popsync.exceptions import PopsyncError
from popsync.lag import PartitionLag, Status
from popsync.lag_cli import register
from popsync.lagwatch import LagMonitor, LagMonitorError

pytestmark = pytest.mark.integration

WINDOW = 4
INTERVAL = 0.25  # seconds between polls: a full window is about one second
PARTITIONS = 2
CLOSED_PORT = "127.0.0.1:9"


@pytest.fixture
def topic(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Iterator[str]:
    name = unique_name("lag")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
        admin.wait_for_topics([name])
        yield name
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for i in range(count):
            producer.send(topic, b"record", partition=i % PARTITIONS)
        producer.flush()
    finally:
        producer.close()


def consumer_in(bootstrap: str, group: str, topic: str, timeout: float = 30.0) -> KafkaConsumer:
    """A member of `group` holding every partition of `topic`, positioned at the group's committed offsets.

    kafka-python 3.0.12 can lose a rebalance whose SyncGroup answer arrives after `poll`'s timeout, leaving a
    member that holds nothing for good; such a member is closed and a new one joins.
    """
    deadline = time.monotonic() + timeout
    while True:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=1000,  # a subscription that raced the topic's creation heals in a second
        )
        joined_by = min(time.monotonic() + 5, deadline)
        while len(consumer.assignment()) < PARTITIONS and time.monotonic() < joined_by:
            consumer.poll(timeout_ms=100, max_records=1)
        if len(consumer.assignment()) == PARTITIONS:
            for tp in consumer.assignment():  # forget what the join's polls fetched
                committed = consumer.committed(tp)
                if committed is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
            return consumer
        consumer.close(autocommit=False)
        assert time.monotonic() < deadline, (
            f"no member of {group} got the partitions of {topic} in {timeout} s"
        )


def consume_and_commit(consumer: KafkaConsumer, count: int, timeout: float = 30.0) -> None:
    """Poll until `count` records are in, committing after every batch, as a worker does."""
    seen, deadline = 0, time.monotonic() + timeout
    while seen < count:
        assert time.monotonic() < deadline, f"consumed {seen} of {count} records in {timeout} s"
        batches = consumer.poll(timeout_ms=200)
        seen += sum(len(records) for records in batches.values())
        if batches:
            consumer.commit()


def await_group(
    monitor: LagMonitor, group: str, wanted: Status, seen: list[Status], timeout: float = 20.0
) -> list[PartitionLag]:
    """Poll every INTERVAL until all the group's partitions are `wanted`; each status seen goes to `seen`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in monitor.poll_once() if r.group == group]
        seen.extend(r.status for r in rows)
        if len(rows) == PARTITIONS and all(r.status is wanted for r in rows):
            return rows
        assert time.monotonic() < deadline, f"{group} never all {wanted} in {timeout} s; last: {rows}"
        time.sleep(INTERVAL)


def status_metric(monitor: LagMonitor, row: PartitionLag, status: Status) -> float | None:
    labels = {"group": row.group, "topic": row.topic, "partition": str(row.partition), "status": status}
    return monitor.registry.get_sample_value("popsync_consumer_status", labels)


def test_a_stopped_consumer_goes_stall_then_stop_then_ok_after_a_restart(
    kafka_bootstrap: str, topic: str, unique_name: Callable[[str], str]
) -> None:
    group = unique_name("lag-group")
    other = unique_name("other-group")  # a group the prefix must not pick up
    monitor = LagMonitor(kafka_bootstrap, group_prefix="lag-group-", window=WINDOW, interval_s=INTERVAL)
    first = consumer_in(kafka_bootstrap, group, topic)
    try:
        produce(kafka_bootstrap, topic, 40)
        consume_and_commit(first, 40)
        bystander = consumer_in(kafka_bootstrap, other, topic)
        consume_and_commit(bystander, 40)
        bystander.close()

        seen: list[Status] = []
        rows = await_group(monitor, group, Status.OK, seen)
        assert [(r.committed, r.end, r.lag, r.seconds_behind) for r in rows] == [(20, 20, 0, 0.0)] * 2
        assert group in monitor.watched and other not in monitor.watched

        # The worker stops consuming but stays in the group, assigned: its offsets no longer move.
        produce(kafka_bootstrap, topic, 30)
        seen = []
        rows = await_group(monitor, group, Status.STALL, seen)
        assert set(seen) <= {Status.OK, Status.STALL}
        assert {r.lag for r in rows} == {15} and all((r.seconds_behind or 0) > 0 for r in rows)
        assert status_metric(monitor, rows[0], Status.STALL) == 1.0
        assert status_metric(monitor, rows[0], Status.OK) == 0.0

        # The worker dies: nobody commits any more. STOP within a few windows' worth of polls (counted in
        # polls, not seconds, so a slow machine cannot fail it: a slow poll only lengthens the silence).
        first.close(autocommit=False)
        seen = []
        rows = await_group(monitor, group, Status.STOP, seen)
        assert set(seen) <= {Status.STALL, Status.STOP}
        assert len(seen) <= 3 * WINDOW * PARTITIONS, f"STOP only after {len(seen) // PARTITIONS} polls"
        group_stop = {"group": group, "status": "STOP"}
        assert monitor.registry.get_sample_value("popsync_consumer_group_status", group_stop) == 1.0

        # A worker starts again and catches up: OK with no lag.
        first = consumer_in(kafka_bootstrap, group, topic)
        consume_and_commit(first, 30)
        seen = []
        rows = await_group(monitor, group, Status.OK, seen)
        assert [(r.committed, r.end, r.lag, r.seconds_behind) for r in rows] == [(35, 35, 0, 0.0)] * 2
        lag = {"group": group, "topic": topic, "partition": "0"}
        assert monitor.registry.get_sample_value("popsync_consumer_lag_offsets", lag) == 0.0
        assert monitor.registry.get_sample_value("popsync_consumer_lag_seconds", lag) == 0.0
    finally:
        first.close(autocommit=False)
        monitor.stop()


def test_the_polling_thread_fills_the_snapshot_and_named_groups_need_no_listing(
    kafka_bootstrap: str, topic: str, unique_name: Callable[[str], str]
) -> None:
    group = unique_name("named")
    produce(kafka_bootstrap, topic, 10)
    consumer = consumer_in(kafka_bootstrap, group, topic)
    try:
        consume_and_commit(consumer, 4)
    finally:
        consumer.close(autocommit=False)
    with LagMonitor(kafka_bootstrap, groups=[group, "no-such-group"], window=2, interval_s=0.1) as monitor:
        monitor.start()
        deadline = time.monotonic() + 15
        while not monitor.snapshot():
            assert time.monotonic() < deadline, f"no snapshot in 15 s (last error: {monitor.last_error})"
            time.sleep(0.05)
        rows = monitor.snapshot()
    assert {r.group for r in rows} == {group}
    assert sum(r.end for r in rows) == 10 and all(r.lag == r.end - r.committed for r in rows)
    assert monitor.listed == []  # named groups only: the cluster's group list was never asked for


def test_no_broker_is_a_clear_error() -> None:
    monitor = LagMonitor(CLOSED_PORT, timeout_s=1.0)
    with pytest.raises(LagMonitorError, match=r"no Kafka broker answers at 127\.0\.0\.1:9"):
        monitor.poll_once()
    assert isinstance(LagMonitorError("x"), PopsyncError)


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """A stand-in for popsync's own app (a lone command would become the app itself)."""

    return app


def test_popsync_lag_once_prints_a_table_per_group(
    kafka_bootstrap: str, topic: str, unique_name: Callable[[str], str]
) -> None:
    group = unique_name("cli")
    produce(kafka_bootstrap, topic, 2_000)
    consumer = consumer_in(kafka_bootstrap, group, topic)
    try:
        consume_and_commit(consumer, 1)
    finally:
        consumer.close(autocommit=False)
    args = ["lag", "--once", "--window", "2", "--interval", "0.1", "--group", group]
    result = CliRunner().invoke(cli(), args, env={"POPSYNC_BOOTSTRAP_SERVERS": kafka_bootstrap})
    assert result.exit_code == 0, result.output
    assert group in result.output and topic in result.output
    assert "1,000" in result.output  # each partition's end offset, in ops' thousands style
    assert "committed" in result.output and "behind (s)" in result.output


def test_popsync_lag_says_when_no_group_matches(kafka_bootstrap: str) -> None:
    args = ["lag", "--once", "--window", "2", "--interval", "0.1", "--group-prefix", "no-such-prefix-"]
    result = CliRunner().invoke(cli(), args, env={"POPSYNC_BOOTSTRAP_SERVERS": kafka_bootstrap})
    assert isinstance(result.exception, PopsyncError), result.output
    assert "no consumer group" in str(result.exception) and "no-such-prefix-" in str(result.exception)


def test_records_behind_a_group_on_a_record_topic_count_what_envelopes_carry(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """On a `<prefix>.records.<sector>` topic an envelope's records count, not its one offset."""
    name = f"{unique_name('lagrec')}.records.insurance"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    group = unique_name("lagrec-group")
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
        admin.wait_for_topics([name])
        # per partition: 6 envelopes of 1..6 records, then 2 messages without a header (one record each)
        for partition in range(PARTITIONS):
            for n in range(1, 7):
                envelope = [("popsync-envelope", str(n).encode())]
                producer.send(name, b"x", partition=partition, headers=envelope)
            for _ in range(2):
                producer.send(name, b"record", partition=partition)
        producer.flush()
        consumer = consumer_in(kafka_bootstrap, group, name)
        try:
            for tp in consumer.assignment():  # the group has read the first 4 envelopes (1+2+3+4 records)
                consumer.seek(tp, 4)
            consumer.commit({tp: OffsetAndMetadata(4, "", -1) for tp in consumer.assignment()})
        finally:
            consumer.close(autocommit=False)
        with LagMonitor(kafka_bootstrap, groups=[group], window=2, interval_s=0.1) as monitor:
            rows = monitor.poll_once()
            assert [(r.lag, r.records) for r in rows] == [(4, 5 + 6 + 2)] * PARTITIONS
            labels = {"group": group, "topic": name, "partition": "0"}
            assert monitor.registry.get_sample_value("popsync_consumer_lag_records", labels) == 13
            assert monitor.registry.get_sample_value("popsync_consumer_lag_offsets", labels) == 4
    finally:
        producer.close()
        admin.close()
