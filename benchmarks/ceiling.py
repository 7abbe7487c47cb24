"""The raw Kafka path of a workload's records, and the CPU each process of a run spends.

`raw_ceiling` is the true ceiling a pipeline figure is a share of: the same records (same bytes, same
keys, the same partition count) sent by a kafka-python producer and read back by an aiokafka consumer in
the same process, nothing else done with them, on the run's own broker. Messages/s from the first send to
the last message read.

`CpuWatch` samples `/proc/<pid>/stat` of the processes of a run (worker, NDXP, broker, simulate) so a
benchmark can report CPU seconds per 1,000 records of each.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer

from benchmarks.bench_publish import PRODUCER_SETTINGS
from benchmarks.harness import BenchContext, BenchmarkError, Rate, step
from streams.topics import ensure_topics

__all__ = ["CpuWatch", "broker_pid", "raw_ceiling"]

_TICK = os.sysconf("SC_CLK_TCK")


def raw_ceiling(ctx: BenchContext, messages: Sequence[tuple[bytes, bytes]], partitions: int) -> Rate:
    """Messages/s of kafka-python producer → aiokafka consumer for `messages` (key, value), measured now."""
    bootstrap = ctx.bootstrap()
    topic = f"popsync-bench-{uuid.uuid4().hex[:8]}.raw"
    ensure_topics(bootstrap, [topic], partitions)
    with step(ctx.log, f"ceiling: {len(messages):,} messages, kafka-python producer → aiokafka consumer"):
        seconds = asyncio.run(_round(bootstrap, topic, messages))
    return Rate("messages/s, raw Kafka path (kafka-python → aiokafka)", len(messages), seconds)


async def _round(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        # Assigned and positioned before the clock starts: the group join is not part of the path.
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        sender = threading.Thread(target=_send_all, args=(bootstrap, topic, messages), daemon=True)
        sender.start()
        seen = 0
        deadline = time.monotonic() + 600
        while seen < len(messages):
            if time.monotonic() > deadline:
                raise BenchmarkError(f"ceiling: read {seen:,} of {len(messages):,} messages in 600 s")
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            seen += sum(len(records) for records in batch.values())
        seconds = time.perf_counter() - started
        sender.join()
        return seconds
    finally:
        await consumer.stop()


def _send_all(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="popsync-bench-raw", **PRODUCER_SETTINGS)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close(timeout=30)


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of the line)


def broker_pid(bootstrap: str) -> int | None:
    """The pid of the local broker listening on `bootstrap`'s port (a Java `kafka.Kafka`), if one is here."""
    port = bootstrap.rsplit(":", 1)[-1].split(",")[0]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline and port.encode() in cmdline:
            return int(entry.name)
    for entry in Path("/proc").iterdir():  # the launcher writes the port into its config, not the command
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline:
            return int(entry.name)
    return None


class CpuWatch:
    """CPU seconds used by named processes between `start` and the last sample before each exits."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="popsync-cpu-watch", daemon=True)

    def watch(self, name: str, pid: int | None) -> None:
        if pid is None:
            return
        seconds = _cpu_seconds(pid)
        if seconds is not None:
            self.pids[name] = pid
            self._first[name] = self._last[name] = seconds

    def start(self) -> CpuWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def sample(self) -> None:
        for name, pid in self.pids.items():
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                self._last[name] = seconds

    def stop(self) -> Mapping[str, float]:
        """CPU seconds per process name over the watch."""
        self.sample()
        self._stop.set()
        self._thread.join(timeout=5)
        return {name: self._last[name] - self._first[name] for name in self.pids}
