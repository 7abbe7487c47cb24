"""Prometheus metrics of the LGSP connector, in a registry of its own; `serve_metrics` exposes one.

The names are a contract shared with the alert rules and dashboards. Labels carry sector, province and
stage only: never an ID, a name or a birth date.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from connectors.exceptions import ConnectorError

__all__ = ["PUBLISH_BUCKETS", "ConnectorMetrics", "serve_metrics"]

# One publication: a handful of records in milliseconds up to a province's 757,543 in minutes.
PUBLISH_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class ConnectorMetrics:
    """The connector's metrics in `registry` (a new, unserved one by default: the connector always has
    somewhere to count, with or without a metrics server)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.published = Counter(
            "popsync_records_published",
            "Records sent to their sector topic (counted in steps of up to 1,000 lines; a publication "
            "the broker does not confirm in full fails with DeliveryError)",
            ["sector", "province"],
            registry=self.registry,
        )
        self.deadletter = Counter(
            "popsync_deadletter",
            "Messages sent to the dead-letter topic, by the stage that rejected them",
            ["stage"],
            registry=self.registry,
        )
        self._deadletter_connector = self.deadletter.labels("connector")
        self.publish_seconds = Histogram(
            "popsync_publish_seconds",
            "Duration of one publication (a file or a generated source), until the broker confirmed it",
            buckets=PUBLISH_BUCKETS,
            registry=self.registry,
        )

    def add_published(self, by_source: Mapping[tuple[str, str], int]) -> None:
        """Count records sent, per (sector, province): one increment per source, not per record."""
        for (sector, province), n in by_source.items():
            if n:
                self.published.labels(sector, province).inc(n)

    def add_dead_letter(self) -> None:
        self._deadletter_connector.inc()


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> int:
    """Serve `registry` at http://host:port/metrics from a daemon thread; returns the bound port
    (the one the OS chose when `port` is 0)."""
    try:
        server, _thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise ConnectorError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
    return int(server.server_port)
