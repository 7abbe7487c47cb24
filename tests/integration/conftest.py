"""Integration fixtures: one real Kafka broker per session, unique topic and group names per test."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from popsync.kafka_local import KafkaUnavailableError, kafka_broker

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration is an integration test, marked or not."""
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker: $POPSYNC_BOOTSTRAP_SERVERS if set, else one popsync starts.

    Skips when no broker can be had here (no Java, no Docker) — except under CI, where that fails.
    """
    with contextlib.ExitStack() as stack:
        try:
            bootstrap = stack.enter_context(kafka_broker())
        except KafkaUnavailableError as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"no Kafka broker available: {exc}")
        yield bootstrap


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """A factory of unique topic/group names, so tests sharing the session broker never collide."""

    def make(prefix: str = "test") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make
