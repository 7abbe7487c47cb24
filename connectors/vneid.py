"""The VNeID event connector: drains the accounts' outbox to Kafka with kafka-python.

Each event is keyed by the personal ID (one citizen's events stay in order in one partition) and marked
sent in the outbox only after the broker confirmed it (acks=all, idempotent producer). A crash between
the broker's confirmation and the outbox update re-sends those events on restart: delivery is at least
once, and consumers deduplicate on `event_id`. The outbox itself never loses or repeats an event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.exceptions import DeliveryError
from mocks.vneid.logs import install_log_filters
from mocks.vneid.outbox import AccountEvent, Outbox
from streams.kafka_security import get_kafka_security

__all__ = ["DrainReport", "VneidEventConnector"]

# Logs carry counts only; the masking filter (mocks.vneid.logs) is the second line of defence.
log = logging.getLogger(__name__)

HEADER_EVENT_ID = "event-id"


@dataclass
class DrainReport:
    """What one `drain` did: events confirmed by the broker and marked sent, in how many batches."""

    published: int = 0
    batches: int = 0


def _message(event: AccountEvent) -> bytes:
    return json.dumps(event.to_message(), ensure_ascii=False, separators=(",", ":")).encode()


class VneidEventConnector:
    """Publishes the account events of a VNeID outbox to `topic`, each once the broker confirms it."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        outbox: Outbox,
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
            confirmed, failure = self._publish(batch)
            self.outbox.mark_sent([e.event_id for e in confirmed])
            report.published += len(confirmed)
            report.batches += 1
            if failure is not None:
                raise DeliveryError(
                    f"{len(batch) - len(confirmed)} account events were not confirmed by the broker on topic "
                    f"{self.topic!r} ({len(confirmed)} were, and are marked sent); they stay in the outbox "
                    f"for the next drain. First failure: {failure}"
                )
        if report.published:
            log.info("published %d VNeID account events to %s", report.published, self.topic)
        return report

    def _publish(self, batch: list[AccountEvent]) -> tuple[list[AccountEvent], str | None]:
        """Send a batch, wait for the broker; the confirmed prefix and the first failure (if any)."""
        futures: list[Any] = []
        for event in batch:
            futures.append(
                self._producer.send(
                    self.topic,
                    key=event.personal_id.encode(),
                    value=_message(event),
                    headers=[(HEADER_EVENT_ID, event.event_id.encode())],
                )
            )
        # A flush that times out is not the verdict: each future below says what the broker confirmed.
        with contextlib.suppress(KafkaError):
            self._producer.flush(timeout=self.send_timeout_s)
        confirmed: list[AccountEvent] = []
        for event, future in zip(batch, futures, strict=True):
            try:
                future.get(timeout=self.send_timeout_s)
            except KafkaError as exc:
                # The error names the broker's reason, never the message's key or value.
                return confirmed, str(exc) or type(exc).__name__
            confirmed.append(event)
        return confirmed, None

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        """Drain, then wait `interval_s` (or until `stop` is set), until `stop` is set; broker failures are
        logged and retried at the next round."""
        while not stop.is_set():
            try:
                self.drain()
            except DeliveryError as exc:
                log.warning("%s", exc)
            stop.wait(interval_s)
