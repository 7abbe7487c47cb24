"""Integration fixtures: one real Kafka broker and one real PostgreSQL server per session, unique topic,
group and database names per test."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from popsync.kafka_local import KafkaUnavailableError, kafka_broker
from popsync.postgres import LocalPostgres, PostgresUnavailableError, local_postgres

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server for the session: started from the local binaries on a free 127.0.0.1 port
    in a temporary directory (as `nobody` when the tests run as root), stopped and deleted after.

    Skips when no server binaries are installed (`make test-tools` installs them) — except under CI,
    where that fails.
    """
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(local_postgres())
        except PostgresUnavailableError as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"no PostgreSQL server available: {exc}")
        yield server


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres) -> str:
    """The URL of a new, empty database on the session's server: every test gets its own."""
    return postgres_server.create_database("test")


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """A factory of unique topic/group names, so tests sharing the session broker never collide."""

    def make(prefix: str = "test") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make
