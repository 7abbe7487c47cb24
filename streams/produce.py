"""Many messages to one partition sent as one Kafka record batch: one future per batch, not per message.

A worker sends a result for every record. Through `app.producer.send` each message costs a partitioner
call (pure-Python murmur2), a future and its callback; profiled at 300,000 records that was over a third
of a worker's time (streams.reconcile). Here the messages of a batch are grouped by (topic, partition)
and appended to aiokafka record batches (`create_batch` / `send_batch`), each acknowledged as a whole.
Only for messages whose partition the caller chooses: a topic that other producers key with Kafka's
default partitioner must keep using `app.producer.send`, or one key could land on two partitions.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

__all__ = ["Batches"]


class Batches:
    """Messages collected by (topic, partition), then sent as record batches (`send`)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._messages: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        self._messages.setdefault((topic, partition), []).append((key, value))

    def __len__(self) -> int:
        return sum(map(len, self._messages.values()))

    async def send(self) -> list[Awaitable[Any]]:
        """Hand every collected message to the producer; the futures resolve when the broker has them."""
        producer = self._app.producer
        native = getattr(producer, "_ensure_producer", None)
        pending: list[Awaitable[Any]] = []
        for (topic, partition), messages in self._messages.items():
            if native is None:  # not faust's aiokafka producer (a test's stand-in): one send a message
                for key, value in messages:
                    pending.append(await producer.send(topic, key, value, partition, None, None))
                continue
            pending.extend(await _send_batches(native(), producer, topic, partition, messages))
        self._messages.clear()
        return pending


async def _send_batches(
    aio: Any, producer: Any, topic: str, partition: int, messages: list[tuple[bytes | None, bytes]]
) -> list[Awaitable[Any]]:
    pending: list[Awaitable[Any]] = []
    batch = aio.create_batch()
    for key, value in messages:
        if batch.append(timestamp=None, key=key, value=value) is not None:
            continue
        if batch.record_count():
            pending.append(await aio.send_batch(batch, topic, partition=partition))
            batch = aio.create_batch()
            if batch.append(timestamp=None, key=key, value=value) is not None:
                continue
        # Larger than a whole batch may be: a message of its own.
        pending.append(await producer.send(topic, key, value, partition, None, None))
    if batch.record_count():
        pending.append(await aio.send_batch(batch, topic, partition=partition))
    return pending
