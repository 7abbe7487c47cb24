"""The VNeID event connector: drains the accounts' outbox to Kafka with kafka-python, in envelopes.

Events go out in envelopes (README "Envelopes and digests"): per partition of the events topic (the one
Kafka's default partitioner gives the personal ID, so one citizen's events meet in one partition whether
they travel in an envelope or alone), up to `ENVELOPE_EVENTS` events or `ENVELOPE_BYTES`, their JSON lines
joined by `\\n` in outbox order. Headers: `popsync-envelope` = the number of events, `popsync-event-ids` =
their event IDs, comma-separated. The workers pay faust's per-message cost once per envelope, not per event.

An event is marked sent in the outbox only after the broker confirmed its envelope (acks=all, idempotent
producer), and only in outbox order: a failure leaves the first unconfirmed event and every later one
pending. A crash between the broker's confirmation and the outbox update re-sends those events on restart:
delivery is at least once, and consumers deduplicate on `event_id`. The outbox never loses or repeats one.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from connectors.exceptions import DeliveryError
from mocks.vneid.logs import install_log_filters
from mocks.vneid.outbox import AccountEvent, Outbox, OutboxStore
from streams.kafka_security import get_kafka_security
from streams.messages import HEADER_ENVELOPE, dumps, envelope_value

__all__ = [
    "ENVELOPE_BYTES",
    "ENVELOPE_EVENTS",
    "HEADER_EVENT_ID",
    "HEADER_EVENT_IDS",
    "READY_LINE",
    "DrainReport",
    "VneidEventConnector",
    "event_line",
    "main",
]

# Logs carry counts only; the masking filter (mocks.vneid.logs) is the second line of defence.
log = logging.getLogger(__name__)

HEADER_EVENT_ID = "event-id"  # a message holding one event (another producer's), keyed by personal ID
HEADER_EVENT_IDS = "popsync-event-ids"  # an envelope's events, comma-separated, in order
# An event line is ~250 bytes: 1,000 of them stay well under kafka-python's 1 MiB request limit, with
# their event IDs (33 bytes each) in a header.
ENVELOPE_EVENTS = 1000
ENVELOPE_BYTES = 256 * 1024
READY_LINE = "draining the VNeID outbox"  # `main` logs it once SIGTERM means "drain the rest, then exit"


@dataclass
class DrainReport:
    """What one `drain` did: events confirmed by the broker and marked sent, in how many batches and
    envelopes (messages)."""

    published: int = 0
    batches: int = 0
    envelopes: int = 0


@dataclass
class _Envelope:
    """Events leaving together for one partition, in outbox order."""

    partition: int
    lines: list[bytes] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    size: int = 0


def event_line(event: AccountEvent) -> bytes:
    """An event's JSON, `AccountEvent.to_message` (one line: compact JSON escapes every line break).

    Written here field by field with the time as orjson writes a datetime (ISO 8601, as `isoformat`):
    a third of the cost, once per event of a million.
    """
    try:
        return orjson.dumps(
            {
                "event_id": event.event_id,
                "account_id": event.account_id,
                "personal_id": event.personal_id,
                "province": event.province,
                "action": event.action,
                "from": event.from_status,
                "to": event.to_status,
                "level": event.level,
                "at": event.at,
            }
        )
    except TypeError:  # what orjson refuses (a lone surrogate): the stdlib's escapes, as `dumps` does
        return dumps(event.to_message())


class VneidEventConnector:
    """Publishes the account events of a VNeID outbox to `topic` in envelopes, each once the broker
    confirms it."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        outbox: OutboxStore,
        *,
        batch_size: int = 500,
        send_timeout_s: float = 60.0,
        client_id: str = "popsync-vneid",
        producer: KafkaProducer | None = None,
    ) -> None:
        self.topic = topic
        self.outbox = outbox
        self.batch_size = batch_size
        self.send_timeout_s = send_timeout_s
        install_log_filters()
        self._producer = producer or KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            **get_kafka_security().kafka_python_config(),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            # With idempotence the broker keeps up to 5 in-flight batches in order: a retried batch never
            # overtakes a later one, so one citizen's events stay in the order they happened.
            max_in_flight_requests_per_connection=5,
            linger_ms=5,
        )

    def close(self) -> None:
        self._producer.close(timeout=30)

    def __enter__(self) -> VneidEventConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drain(self) -> DrainReport:
        """Publish every pending event, oldest first, until the outbox has none; returns what was sent.

        A failure marks sent only the events up to the first unconfirmed one (so order is kept on the
        next attempt) and raises `DeliveryError`; the rest stay pending.
        """
        report = DrainReport()
        while batch := self.outbox.pending(self.batch_size):
            confirmed, envelopes, failure = self._publish(batch)
            self.outbox.mark_sent([e.event_id for e in confirmed])
            report.published += len(confirmed)
            report.batches += 1
            report.envelopes += envelopes
            if failure is not None:
                raise DeliveryError(
                    f"{len(batch) - len(confirmed)} account events were not confirmed by the broker on topic "
                    f"{self.topic!r} ({len(confirmed)} were, and are marked sent); they stay in the outbox "
                    f"for the next drain. First failure: {failure}"
                )
        if report.published:
            log.info(
                "published %d VNeID account events to %s in %d envelopes",
                report.published,
                self.topic,
                report.envelopes,
            )
        return report

    def _partitions(self) -> list[int]:
        # Asked once a batch (the producer's metadata answers from its cache), so a topic given more
        # partitions is followed as Kafka's own partitioner would follow it.
        try:
            partitions = self._producer.partitions_for(self.topic)
        except KafkaError as exc:  # the topic's metadata did not come within max_block_ms
            raise DeliveryError(
                f"no partitions of topic {self.topic!r} from the broker ({exc!r}); every event stays pending"
            ) from exc
        if not partitions:
            raise DeliveryError(f"topic {self.topic!r} has no partitions the producer knows of")
        return sorted(partitions)

    def _envelopes(self, batch: list[AccountEvent]) -> tuple[list[_Envelope], list[int]]:
        """The batch in envelopes, in the order they close; and each event's envelope (by index)."""
        partitions = self._partitions()
        count = len(partitions)
        cache: dict[str, int] = {}  # murmur2 is pure Python: once per citizen and batch
        open_: dict[int, int] = {}  # partition -> index of its open envelope
        envelopes: list[_Envelope] = []
        owner: list[int] = []
        for event in batch:
            pid = event.personal_id
            partition = cache.get(pid)
            if partition is None:
                partition = cache[pid] = partitions[(murmur2(pid.encode()) & 0x7FFFFFFF) % count]
            line = event_line(event)
            index = open_.get(partition, -1)
            if index < 0 or (
                len(envelopes[index].lines) >= ENVELOPE_EVENTS
                or envelopes[index].size + len(line) > ENVELOPE_BYTES
            ):
                index = open_[partition] = len(envelopes)
                envelopes.append(_Envelope(partition))
            envelope = envelopes[index]
            envelope.lines.append(line)
            envelope.ids.append(event.event_id)
            envelope.size += len(line) + 1
            owner.append(index)
        return envelopes, owner

    def _publish(self, batch: list[AccountEvent]) -> tuple[list[AccountEvent], int, str | None]:
        """Send a batch in envelopes, wait for the broker; the confirmed prefix (in outbox order), the
        envelopes sent, and the first failure (if any)."""
        envelopes, owner = self._envelopes(batch)
        futures: list[Any] = []
        # Sent per partition in outbox order (envelopes are numbered in the order they opened), so one
        # citizen's events keep their order on the topic.
        for envelope in envelopes:
            headers = [
                (HEADER_ENVELOPE, str(len(envelope.lines)).encode()),
                (HEADER_EVENT_IDS, ",".join(envelope.ids).encode()),
            ]
            futures.append(
                self._producer.send(
                    self.topic,
                    value=envelope_value(envelope.lines),
                    partition=envelope.partition,
                    headers=headers,
                )
            )
        # A flush that times out is not the verdict: each future below says what the broker confirmed.
        with contextlib.suppress(KafkaError):
            self._producer.flush(timeout=self.send_timeout_s)
        failure: str | None = None
        ok: list[bool] = []
        for future in futures:
            try:
                future.get(timeout=self.send_timeout_s)
                ok.append(True)
            except KafkaError as exc:
                # The error names the broker's reason, never the message's key or value.
                failure = failure or str(exc) or type(exc).__name__
                ok.append(False)
        confirmed: list[AccountEvent] = []
        for event, index in zip(batch, owner, strict=True):
            if not ok[index]:
                break
            confirmed.append(event)
        return confirmed, len(envelopes), failure

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        """Drain, then wait `interval_s` (or until `stop` is set), until `stop` is set; broker failures are
        logged and retried at the next round."""
        while not stop.is_set():
            try:
                self.drain()
            except DeliveryError as exc:
                log.warning("%s", exc)
            stop.wait(interval_s)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m connectors.vneid --database-url sqlite:///PATH --topic TOPIC`: drain the outbox until
    SIGTERM or SIGINT, then once more (what was written before the signal), and exit; 1 if events stayed
    pending. Kafka's address from `--bootstrap-servers` or POPSYNC_BOOTSTRAP_SERVERS, its security from
    POPSYNC_KAFKA_*."""
    parser = argparse.ArgumentParser(prog="python -m connectors.vneid", description=main.__doc__)
    parser.add_argument("--database-url", required=True, help="the VNeID accounts database, sqlite:///PATH")
    parser.add_argument("--topic", required=True, help="the e-ID events topic, <prefix>.eid.events")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("POPSYNC_BOOTSTRAP_SERVERS", ""))
    parser.add_argument("--interval-s", type=float, default=0.5, help="wait between drains of the outbox")
    parser.add_argument("--batch-size", type=int, default=20_000, help="outbox events read at a time")
    args = parser.parse_args(argv)
    if not args.bootstrap_servers:
        parser.error("no Kafka bootstrap servers: pass --bootstrap-servers or set POPSYNC_BOOTSTRAP_SERVERS")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # After the handlers: a parent waits for this line before it may signal the end (READY_LINE).
    log.info("%s: topic %s, until SIGTERM", READY_LINE, args.topic)
    outbox = Outbox.open(args.database_url)
    try:
        with VneidEventConnector(
            args.bootstrap_servers, args.topic, outbox, batch_size=args.batch_size
        ) as connector:
            connector.run(stop, args.interval_s)
            try:
                connector.drain()
            except DeliveryError as exc:
                log.error("%s", exc)
                return 1
    finally:
        outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
