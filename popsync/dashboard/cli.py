"""`popsync dashboard`: the live dashboard of a deployment's topics, until Ctrl-C."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from popsync.lagwatch import LagMonitor

__all__ = ["register", "serve_dashboard"]

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the `dashboard` command to the `popsync` app."""
    app.command("dashboard")(dashboard)


def dashboard(
    topic_prefix: Annotated[
        str,
        typer.Option(
            envvar="STREAMS_TOPIC_PREFIX", help="the run's topic prefix, e.g. popsync.demo-1a2b3c4d"
        ),
    ],
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers", envvar="POPSYNC_BOOTSTRAP_SERVERS", help="host:port of a Kafka cluster"
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: a free one)")] = 8700,
    group_prefix: Annotated[
        str | None,
        typer.Option(help="consumer groups to watch (default: the workers' group, popsync-<topic prefix>)"),
    ] = None,
) -> None:
    """Serve a live dashboard of a deployment's results: figures in the seeds' style, lag, consumers."""
    from popsync.exceptions import PopsyncError

    if not bootstrap_servers:
        raise PopsyncError(
            "dashboard needs a running broker: pass --bootstrap-servers or set POPSYNC_BOOTSTRAP_SERVERS"
        )
    serve_dashboard(bootstrap_servers, topic_prefix, host=host, port=port, group_prefix=group_prefix)


def _check_topics(bootstrap_servers: str, results_topic: str) -> None:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    from popsync.exceptions import PopsyncError
    from streams.kafka_security import get_kafka_security

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id="popsync-dashboard-check",
            **get_kafka_security().kafka_python_config(),
        )
    except KafkaError as exc:
        raise PopsyncError(f"no Kafka broker answers at {bootstrap_servers}: {exc!r}") from exc
    try:
        topics = consumer.topics()
    finally:
        consumer.close()
    if results_topic not in topics:
        prefixes = sorted({t.rsplit(".", 1)[0] for t in topics if t.endswith(".results")})
        known = ", ".join(prefixes) if prefixes else "none"
        raise PopsyncError(
            f"no topic {results_topic} at {bootstrap_servers}: is --topic-prefix right? "
            f"prefixes with a results topic: {known}"
        )


def _lag_monitor(bootstrap_servers: str, group_prefix: str) -> LagMonitor:
    from popsync.lagwatch import LagMonitor

    monitor = LagMonitor(bootstrap_servers, group_prefix=group_prefix)
    monitor.start()
    return monitor


def serve_dashboard(
    bootstrap_servers: str,
    topic_prefix: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    group_prefix: str | None = None,
) -> None:
    """Collect the results of `topic_prefix` and serve the dashboard until interrupted."""
    from popsync.collector import Collector
    from popsync.dashboard.server import DashboardServer
    from popsync.dashboard.state import RunView
    from popsync.exceptions import ServiceError
    from streams.topics import TopicNames

    topics = TopicNames(topic_prefix)
    _check_topics(bootstrap_servers, topics.results)
    with ExitStack() as stack:
        # The per-record results topic: what every deployment writes, whoever produced the results.
        collector = Collector(bootstrap_servers, topics, per_record=True).start()
        stack.callback(collector.stop)
        monitor = _lag_monitor(bootstrap_servers, group_prefix or f"popsync-{topic_prefix}")
        stack.callback(monitor.stop)
        server = DashboardServer(RunView(collector, lag_monitor=monitor), host=host, port=port)
        url = server.start()
        stack.callback(server.stop)
        console.print(f"popsync dashboard of {topic_prefix}: {url}  (Ctrl-C stops it)", markup=False)
        stopped = threading.Event()
        while not stopped.wait(1.0):  # Ctrl-C interrupts the wait; the reader's failure ends it too
            try:
                collector.check()
            except RuntimeError as exc:
                raise ServiceError(f"the dashboard stopped: {exc}") from exc
