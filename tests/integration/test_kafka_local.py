"""popsync's own Kafka broker: it carries messages, and its JVM never outlives whoever started it."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from popsync.kafka_local import (
    LocalKafka,
    kafka_down,
    kafka_status,
    kafka_up,
    process_alive,
    remove_stale_data_dirs,
)

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="LocalKafka needs Java 17+ on PATH")


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout:.0f} s: {what}")
        time.sleep(0.1)


def _round_trip(bootstrap: str, topic: str, group: str, count: int = 10) -> list[bytes]:
    """Produce `count` messages with acks=all (idempotent by default), consume them back in a new group."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i in range(count):
            producer.send(topic, key=str(i % 3).encode(), value=f"msg-{i}".encode())
        producer.flush(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
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


def test_session_broker_carries_messages(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> None:
    topic = unique_name("roundtrip")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True)
    finally:
        admin.close()

    received = _round_trip(kafka_bootstrap, topic, unique_name("group"))

    assert sorted(received) == sorted(f"msg-{i}".encode() for i in range(10))


@needs_java
def test_local_kafka_stops_its_jvm(unique_name: Callable[[str], str]) -> None:
    broker = LocalKafka(partitions=2)
    bootstrap = broker.start()
    pid, data_dir = broker.pid, broker.data_dir
    try:
        assert bootstrap.startswith("127.0.0.1:")
        assert pid is not None and process_alive(pid)
        assert len(_round_trip(bootstrap, unique_name("auto"), unique_name("group"), count=3)) == 3
    finally:
        broker.stop()

    assert not process_alive(pid)
    assert data_dir is not None and not data_dir.exists()
    broker.stop()  # idempotent


_CHILD = textwrap.dedent(
    """
    import json, signal, sys, time
    from popsync.kafka_local import LocalKafka
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    with LocalKafka(partitions=1) as broker:
        print(json.dumps({"pid": broker.pid, "data_dir": str(broker.data_dir)}), flush=True)
        time.sleep(600)
    """
)


def _read_json_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"child printed nothing within {timeout:.0f} s")
    line = proc.stdout.readline()
    assert line, f"child exited ({proc.poll()}) before its broker was up"
    return dict(json.loads(line))


@needs_java
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_no_orphan_jvm_when_the_parent_is_signalled(sig: signal.Signals) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True)
    try:
        started = _read_json_line(child, timeout=180)
        jvm, data_dir = int(started["pid"]), Path(started["data_dir"])
        assert process_alive(jvm)

        os.kill(child.pid, sig)
        child.wait(timeout=60)
        _wait_until(lambda: not process_alive(jvm), 30, f"JVM {jvm} gone after {sig.name} to its parent")
    finally:
        child.kill()
        child.wait()

    if sig is signal.SIGKILL:  # nobody could clean up: the next start sweeps the data dir
        assert data_dir in remove_stale_data_dirs()
    assert not data_dir.exists()


@needs_java
def test_kafka_up_outlives_its_process_until_down(tmp_path: Path, unique_name: Callable[[str], str]) -> None:
    state_file = tmp_path / "broker.json"
    up = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from popsync.kafka_local import kafka_up; kafka_up(state_file={str(state_file)!r})",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stderr
    try:
        status = kafka_status(state_file=state_file)
        assert status is not None and status["running"] and status["answers"], status
        assert (
            len(_round_trip(status["bootstrap_servers"], unique_name("up"), unique_name("g"), count=2)) == 2
        )
        assert kafka_up(state_file=state_file)["pid"] == status["pid"]  # already up: reused, not restarted
    finally:
        stopped = kafka_down(state_file=state_file)

    assert stopped
    assert not process_alive(int(status["pid"]))
    assert not Path(status["data_dir"]).exists()
    assert kafka_status(state_file=state_file) is None
    assert kafka_down(state_file=state_file) is False
