"""Builds the mock NDXP FastAPI app: `create_app(settings)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from mocks.ndxp.api.main import api_router
from mocks.ndxp.api.routes import health
from mocks.ndxp.config import NdxpSettings, get_settings
from mocks.ndxp.db import open_population
from mocks.ndxp.deps import build_principals
from mocks.ndxp.logs import install_log_filters
from mocks.ndxp.metrics import MeteredAuditLog, MetricsMiddleware, NdxpMetrics
from mocks.ndxp.metrics import router as metrics_router
from mocks.ndxp.middleware import FaultInjector, FaultMiddleware, RequestIdMiddleware

__all__ = ["create_app"]

_log = logging.getLogger("mocks.ndxp")

DESCRIPTION = """\
Mock of Vietnam's national data integration and sharing platform (NDXP) in front of a mock
National Population Database. Every request under `/v1` needs an agency's key in `X-API-Key`
and states a `purpose`; every disclosure of a citizen is audited. `X-Request-ID` is echoed
(one is made when absent).
"""


def create_app(settings: NdxpSettings | None = None) -> FastAPI:
    """The NDXP app for `settings` (default: `get_settings()`); opens its database on startup."""
    settings = settings or get_settings()
    install_log_filters()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            db = await run_in_threadpool(open_population, settings.database_url)
        except Exception as exc:
            app.state.startup_error = exc  # NdxpServer reports it; uvicorn only logs it
            raise
        app.state.db = db
        app.state.audit = MeteredAuditLog(db.connections, app.state.metrics)
        _log.info("NDXP serving the population in %s (%s)", db.path, settings.environment)
        try:
            yield
        finally:
            db.close()

    app = FastAPI(
        title="Mock NDXP",
        description=DESCRIPTION,
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.startup_error = None
    app.state.principals = build_principals(settings)
    app.state.faults = FaultInjector(settings.error_rate, settings.latency_ms, settings.fault_seed)
    app.state.metrics = NdxpMetrics(app.state.faults)  # a registry per app: tests build several
    # The last middleware added is the outermost: request IDs wrap the faults, so a 503 echoes one too.
    app.add_middleware(FaultMiddleware, faults=app.state.faults)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: sees 503s and latency
    app.include_router(health.router)
    app.include_router(metrics_router)  # GET /metrics, no key: counts only (see mocks/ndxp/metrics.py)
    app.include_router(api_router, prefix="/v1")
    return app
