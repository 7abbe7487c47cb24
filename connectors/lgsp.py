"""The provincial LGSP connector: publishes a source's records to its sector topic with kafka-python."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from connectors.exceptions import DeliveryError, SourceFileError
from connectors.metrics import ConnectorMetrics
from schemas.records import MAX_LINE_BYTES, OversizedLine, Rejected, parse_line
from streams.kafka_security import KafkaSecurity, get_kafka_security
from streams.messages import (
    DEAD_LETTER_RAW_BYTES,
    HEADER_ENVELOPE,
    HEADER_PROVINCE,
    HEADER_PUBLISHED_MS,
    HEADER_REQUEST_ID,
    HEADER_SECTOR,
    HEADER_SEQ,
    HEADER_SEQS,
    HEADER_VERSION,
    dead_letter_body,
    dumps,
    envelope_value,
    now_ms,
    result_key,
)
from streams.topics import MAX_MESSAGE_BYTES, TopicNames

__all__ = ["CIVIL_STATUS_KEY", "LgspConnector", "PublishReport", "iter_file_lines", "partition_key"]

log = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
# Envelopes (README "Envelopes"): a worker pays faust's per-message cost once per envelope, not per record.
# An envelope closes at this many records or bytes, or when its oldest record has waited this long
# (a paced source must not hold records back).
ENVELOPE_RECORDS = 250
ENVELOPE_BYTES = 256 * 1024
ENVELOPE_LINGER_S = 0.05
LOGGED_REJECTIONS = 20  # dead letters logged one by one per publication; the rest are counted


@dataclass
class _Envelope:
    """Records waiting to leave together for one partition of one topic, in source order."""

    lines: list[bytes] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0


@dataclass
class PublishReport:
    """What one publication did: records confirmed by the broker, lines sent to the dead-letter topic."""

    published: int = 0
    rejected: int = 0
    keys: list[str] = field(default_factory=list)  # result keys of the published records, in order
    by_source: dict[tuple[str, str], int] = field(default_factory=dict)
    seconds: float = 0.0


def iter_file_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line bytes) of a JSON-lines file; a BOM at the start is dropped, empty lines skipped.

    A line longer than a record may be (`MAX_LINE_BYTES`) is never held whole: it comes as an
    `OversizedLine` (its first 64 KiB and its size), which `parse_line` rejects with that size.
    """
    limit = MAX_LINE_BYTES + 3  # the longest line a record may be, its \r\n, and one byte to tell
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SourceFileError(f"cannot read records file {path}: {exc.strerror}") from exc
    with handle:
        number = 0
        while raw := handle.readline(limit):
            number += 1
            if len(raw) == limit and not raw.endswith(b"\n"):
                yield number, _oversized(handle, raw)
                continue
            line = raw.rstrip(b"\r\n")
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if line == b"":
                continue
            yield number, line


def _oversized(handle: Any, head: bytes) -> OversizedLine:
    """Read past the rest of a too-long line (1 MiB at a time), counting it; keep its first 64 KiB."""
    size = len(head)
    end = b""
    while chunk := handle.readline(1 << 20):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            end = chunk
            break
    size -= len(end) - len(end.rstrip(b"\r\n"))  # the line's own bytes, without its line end
    return OversizedLine(head[:DEAD_LETTER_RAW_BYTES], size)


# The key of every civil-status record: they all share one partition of their topic, in publish order.
CIVIL_STATUS_KEY = "civil_status"


def partition_key(record_id: str, raw: Any) -> str:
    """The Kafka key of a record: what keeps the records that rules compare in one partition, in order.

    Every civil-status record has the same key (`CIVIL_STATUS_KEY`): a registration changes the NPD
    that later ones are decided against (a registration number taken, a citizen dead or married), so
    they are decided one after another in publish order, whatever the partitions and workers (the NPD
    applies them one transaction at a time anyway). Any other record: the personal ID as rule 7 compares
    it (ends trimmed), else the record.
    """
    if raw.get("sector") == "civil_status":
        return CIVIL_STATUS_KEY
    pid = raw.get("personal_id")
    if isinstance(pid, str) and pid.strip():
        return pid.strip()
    return f"record:{record_id}"


class LgspConnector:
    """Publishes records keyed by the trimmed personal ID, so one person's records stay in source order.

    Every record is confirmed by the broker (acks=all, idempotent producer) before `publish` returns;
    lines that are not records go to the dead-letter topic with the reason.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: TopicNames,
        *,
        rate: float | None = None,
        client_id: str = "popsync-lgsp",
        producer: KafkaProducer | None = None,
        metrics: ConnectorMetrics | None = None,
        security: KafkaSecurity | None = None,
        seen: set[str] | None = None,
    ) -> None:
        """`security` (SASL/TLS) defaults to the POPSYNC_KAFKA_* settings of this process. `seen`: the
        result keys (`sector|province|record_id`) already published in this run, shared by every
        connector of the run (each stage of `simulate` has its own) and grown by this one: a record
        repeating one of them is dead-lettered, never published."""
        self.topics = topics
        self.rate = rate
        self.metrics = metrics if metrics is not None else ConnectorMetrics()
        self._producer = producer or KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=10,
            batch_size=512 * 1024,
            max_in_flight_requests_per_connection=5,
            max_request_size=MAX_MESSAGE_BYTES,
            **(security if security is not None else get_kafka_security()).kafka_python_config(),
        )
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self._seen: set[str] = seen if seen is not None else set()
        self._seq: dict[tuple[str, str], int] = {}
        self._envelopes: dict[tuple[str, int], _Envelope] = {}
        self._partitions: dict[str, list[int]] = {}
        self._request_id = uuid.uuid4().hex
        self._rejected_logged = 0  # dead letters of the current publication

    def close(self) -> None:
        self._send_envelopes()
        self._producer.close(timeout=30)

    def __enter__(self) -> LgspConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish_file(self, path: Path, on_progress: Callable[[int], None] | None = None) -> PublishReport:
        """Publish every line of a JSON-lines records file (see CONTRACT.md)."""
        origin = path.name
        lines = ((f"{origin}:{n}", line) for n, line in iter_file_lines(path))
        return self._publish(lines, on_progress)

    def publish_records(
        self, records: Iterable[dict[str, Any]], origin: str, on_progress: Callable[[int], None] | None = None
    ) -> PublishReport:
        """Publish generated records (dicts in CONTRACT.md's record format)."""
        lines = ((f"{origin}:{n}", dumps(r)) for n, r in enumerate(records, start=1))
        return self._publish(lines, on_progress)

    def republish(self, record: dict[str, Any], version: int, request_id: str | None = None) -> None:
        """Publish a corrected version (2, 3 …) of a record already published; it keeps its record_id.

        The workers decide it afresh and its result supersedes the earlier one (the latest version wins).
        Sent asynchronously: `flush()` confirms it (or raises `DeliveryError`).
        """
        if version < 2:
            raise ValueError(f"a re-publication is version 2 or later, not {version}")
        line = dumps(record)
        self._send_record(
            record["sector"],
            record["province"],
            record["record_id"],
            record,
            line,
            request_id or uuid.uuid4().hex,
            version=version,
        )

    def flush(self) -> None:
        """Wait until the broker confirmed everything sent so far; raise `DeliveryError` for a failure."""
        self._send_envelopes()
        self._producer.flush()
        self._raise_failures()

    def _publish(
        self, lines: Iterable[tuple[str, bytes]], on_progress: Callable[[int], None] | None
    ) -> PublishReport:
        report = PublishReport()
        started = time.monotonic()
        request_id = self._request_id = uuid.uuid4().hex
        unmetered: dict[tuple[str, str], int] = {}  # sent since the metrics were last updated
        for count, (where, line) in enumerate(lines, start=1):
            if self.rate:  # a paced source: no record waits in an envelope longer than the linger
                self._send_envelopes(older_than=ENVELOPE_LINGER_S)
                self._pace(count, started)
            parsed = parse_line(line)
            if parsed is None:
                continue
            if isinstance(parsed, Rejected):
                self._dead_letter(
                    where, line, parsed.reason, parsed.record_id, parsed.sector, parsed.province
                )
                report.rejected += 1
            else:
                key = result_key(parsed.sector, parsed.province, parsed.record_id)
                if key in self._seen:
                    reason = (
                        f"record_id {parsed.record_id[:80]!r} repeats an earlier record of this source in "
                        "this run"
                    )
                    self._dead_letter(where, line, reason, parsed.record_id, parsed.sector, parsed.province)
                    report.rejected += 1
                    continue
                self._seen.add(key)
                self._send_record(
                    parsed.sector, parsed.province, parsed.record_id, parsed.raw, line, request_id
                )
                report.published += 1
                report.keys.append(key)
                source = (parsed.sector, parsed.province)
                report.by_source[source] = report.by_source.get(source, 0) + 1
                unmetered[source] = unmetered.get(source, 0) + 1
            if count % 1000 == 0:
                self._send_envelopes(older_than=ENVELOPE_LINGER_S)
                self.metrics.add_published(unmetered)
                unmetered.clear()
                if on_progress is not None:
                    on_progress(count)
        self._send_envelopes()
        self._producer.flush()
        if self._rejected_logged > LOGGED_REJECTIONS:
            log.warning(
                "%d more lines rejected without a log line each; every one is on %s with its reason",
                self._rejected_logged - LOGGED_REJECTIONS,
                self.topics.deadletter,
            )
        self._rejected_logged = 0
        report.seconds = time.monotonic() - started
        self.metrics.add_published(unmetered)
        self.metrics.publish_seconds.observe(report.seconds)
        if on_progress is not None:
            on_progress(report.published + report.rejected)
        self._raise_failures()
        return report

    def _send_record(
        self,
        sector: str,
        province: str,
        record_id: str,
        raw: Any,
        line: bytes,
        request_id: str,
        *,
        version: int = 1,
    ) -> None:
        key = partition_key(record_id, raw).encode()
        source = (sector, province)
        seq = self._seq.get(source, 0) + 1
        self._seq[source] = seq
        topic = self.topics.records(sector)
        if version > 1 or len(line) > ENVELOPE_BYTES:
            # A re-publication (its own version header) or a line too big to share: a message of its own.
            self._send_single(topic, key, line, province, sector, seq, request_id, version)
            return
        partition = self._partition(topic, key)
        envelope = self._envelopes.get((topic, partition))
        if envelope is None:
            envelope = self._envelopes[(topic, partition)] = _Envelope(opened=time.monotonic())
        elif envelope.size + len(line) > ENVELOPE_BYTES:
            self._send_envelope(topic, partition, envelope)
            envelope = self._envelopes[(topic, partition)] = _Envelope(opened=time.monotonic())
        envelope.lines.append(line)
        envelope.seqs.append(seq)
        envelope.size += len(line) + 1
        if len(envelope.lines) >= ENVELOPE_RECORDS:
            self._send_envelope(topic, partition, self._envelopes.pop((topic, partition)))

    def _partition(self, topic: str, key: bytes) -> int:
        """The partition Kafka's default partitioner gives `key`: one person's records stay together
        whether they travel in an envelope or alone (a re-publication, another producer's message)."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(self._producer.partitions_for(topic))
        index: int = (murmur2(key) & 0x7FFFFFFF) % len(partitions)
        return partitions[index]

    def _send_envelopes(self, older_than: float | None = None) -> None:
        """Send the open envelopes (only those opened more than `older_than` seconds ago, if given)."""
        now = time.monotonic()
        for where, envelope in list(self._envelopes.items()):
            if older_than is None or now - envelope.opened >= older_than:
                del self._envelopes[where]
                self._send_envelope(*where, envelope)

    def _send_envelope(self, topic: str, partition: int, envelope: _Envelope) -> None:
        headers = [
            (HEADER_ENVELOPE, str(len(envelope.lines)).encode()),
            (HEADER_SEQS, ",".join(map(str, envelope.seqs)).encode()),
            (HEADER_PUBLISHED_MS, str(now_ms()).encode()),
            (HEADER_REQUEST_ID, self._request_id.encode()),
        ]
        future = self._producer.send(
            topic, value=envelope_value(envelope.lines), partition=partition, headers=headers
        )
        future.add_errback(self._on_error)

    def _send_single(
        self,
        topic: str,
        key: bytes,
        line: bytes,
        province: str,
        sector: str,
        seq: int,
        request_id: str,
        version: int,
    ) -> None:
        headers = [
            (HEADER_PROVINCE, province.encode()),
            (HEADER_SECTOR, sector.encode()),
            (HEADER_SEQ, str(seq).encode()),
            (HEADER_PUBLISHED_MS, str(now_ms()).encode()),
            (HEADER_REQUEST_ID, request_id.encode()),
        ]
        if version > 1:
            headers.append((HEADER_VERSION, str(version).encode()))
        future = self._producer.send(topic, key=key, value=line, headers=headers)
        future.add_errback(self._on_error)

    def _dead_letter(
        self,
        where: str,
        line: bytes,
        reason: str,
        record_id: str | None,
        sector: str | None,
        province: str | None,
    ) -> None:
        body = dead_letter_body(reason, where, bytes(line), record_id, sector, province)
        self._rejected_logged += 1
        # The first few are logged; a file of a million bad lines must not scroll a million warnings by.
        if self._rejected_logged <= LOGGED_REJECTIONS:
            log.warning("rejected line %s: %s", where, reason)
        self.metrics.add_dead_letter()
        future = self._producer.send(self.topics.deadletter, key=where.encode(), value=dumps(body))
        future.add_errback(self._on_error)

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self._failures.append(repr(exc))

    def _raise_failures(self) -> None:
        if self._failures:
            raise DeliveryError(
                f"{len(self._failures)} messages were not confirmed by the broker; first: {self._failures[0]}"
            )

    def _pace(self, count: int, started: float) -> None:
        if not self.rate:
            return
        ahead = count / self.rate - (time.monotonic() - started)
        if ahead > 0.005:
            time.sleep(ahead)
