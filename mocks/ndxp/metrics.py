"""Prometheus metrics of the mock NDXP: an ASGI middleware, a counting audit log and `GET /metrics`.

`/metrics` needs no API key, like `/health`: a Prometheus scraper holds no agency key, and nothing it
shows is personal. Labels are route *templates* (`/v1/citizens/{personal_id}`, never the raw path,
which holds an ID), status codes and agency names; counts only. In a real deployment the operator would
still keep the port off the public network.
"""

from __future__ import annotations

import re
import time
from collections import Counter as Tally
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks.common.audit import AuditEntry, AuditStore, Disclosure, DisclosureBatch
from mocks.ndxp.middleware import FaultInjector

__all__ = ["MeteredAuditLog", "MetricsMiddleware", "NdxpMetrics", "RouteTemplates", "router"]

# A request to a path no route matches: its raw path may hold an ID, so it is never a label.
UNMATCHED = "unmatched"
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _FaultsCollector(Collector):
    """`ndxp_faults_injected_total`, read from the live fault injector at scrape time."""

    def __init__(self, faults: FaultInjector) -> None:
        self._faults = faults

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "ndxp_faults_injected",
            "Requests answered 503 by fault injection (NDXP_ERROR_RATE)",
            value=self._faults.injected,
        )

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("ndxp_faults_injected", "")


class NdxpMetrics:
    """Every metric of one NDXP app, in `registry` (a new one by default: tests build several apps)."""

    def __init__(self, faults: FaultInjector, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "ndxp_requests",
            "HTTP requests answered, by route template and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "ndxp_request_seconds",
            "Time to answer a request (injected latency included), by route template",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.disclosures = Counter(
            "ndxp_disclosures",
            "Citizens disclosed to an agency (audit entries written), by agency",
            ["agency"],
            registry=self.registry,
        )
        self.registry.register(_FaultsCollector(faults))

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def add_disclosures(self, disclosures: Sequence[Disclosure]) -> None:
        for agency, n in Tally(d.agency for d in disclosures).items():
            self.disclosures.labels(agency).inc(n)


class RouteTemplates:
    """Method and raw path → the template of the route the router picks for them, or `unmatched`.

    Built once from the app's OpenAPI paths (every API route, with its full prefix) and its plain routes
    (/docs, /openapi.json), and matched here rather than read from the routed scope: a request answered
    before routing (an injected 503) gets its template too, and FastAPI's internals stay out of it.
    Like the router, the first route matching path and method wins, else the first matching the path.
    """

    def __init__(self, app: Any) -> None:
        table: list[tuple[re.Pattern[str], frozenset[str], str]] = []
        for path, operations in app.openapi().get("paths", {}).items():
            table.append((compile_path(path)[0], frozenset(m.upper() for m in operations), path))
        known = {path for _, _, path in table}
        for route in app.routes:
            path, methods = getattr(route, "path", None), getattr(route, "methods", None)
            if isinstance(path, str) and path not in known:
                table.append((compile_path(path)[0], frozenset(methods or ()), path))
        self._table = table

    def __call__(self, method: str, path: str) -> str:
        method = "GET" if method == "HEAD" else method
        partial = None
        for regex, methods, template in self._table:
            if regex.match(path):
                if method in methods:
                    return template
                partial = partial or template  # answered 405 by the router
        return partial or UNMATCHED


class MetricsMiddleware:
    """Count and time every HTTP request by route template and status (the outermost middleware, so
    injected faults and latency are seen as a client sees them)."""

    def __init__(self, app: ASGIApp, metrics: NdxpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: RouteTemplates | None = None  # built on the first request: routes are complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting a response

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            if self._templates is None:
                self._templates = RouteTemplates(scope["app"])
            route = self._templates(scope["method"], scope["path"])
            self.metrics.observe_request(route, status, time.perf_counter() - started)


class MeteredAuditLog:
    """An audit store (SQLite or PostgreSQL), counting each disclosure by agency once it is written."""

    def __init__(self, audit: AuditStore, metrics: NdxpMetrics) -> None:
        self.audit = audit
        self._metrics = metrics

    def record(self, disclosures: Sequence[Disclosure]) -> None:
        self.audit.record(disclosures)
        self._metrics.add_disclosures(disclosures)

    def record_batch(self, batch: DisclosureBatch) -> None:
        self.audit.record_batch(batch)
        if batch.citizens:  # as `add_disclosures`: no series for an agency that was shown nobody
            self._metrics.disclosures.labels(batch.agency).inc(len(batch.citizens))

    async def arecord(self, disclosures: Sequence[Disclosure]) -> None:
        await self.audit.arecord(disclosures)
        self._metrics.add_disclosures(disclosures)

    async def arecord_batch(self, batch: DisclosureBatch) -> None:
        await self.audit.arecord_batch(batch)
        if batch.citizens:
            self._metrics.disclosures.labels(batch.agency).inc(len(batch.citizens))

    def read(
        self,
        *,
        agency: str | None = None,
        request_id: str | None = None,
        personal_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        return self.audit.read(agency=agency, request_id=request_id, personal_id=personal_id, limit=limit)

    def count(self) -> int:
        return self.audit.count()


router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def read_metrics(request: Request) -> Response:
    """Prometheus metrics (text format); no key needed: counts by route template, status and agency."""
    metrics: NdxpMetrics = request.app.state.metrics
    # A few dozen series rendered in memory: no I/O, so it stays on the event loop.
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
