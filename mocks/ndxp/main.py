"""Builds the mock NDXP FastAPI app: `create_app(settings)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client import Counter

from mocks.common.body_limit import BodyLimitMiddleware
from mocks.common.errors import install_error_answers
from mocks.common.methods import MethodGuardMiddleware
from mocks.common.ratelimit import RateLimiter
from mocks.common.settings import token_service
from mocks.ndxp.api.main import api_router
from mocks.ndxp.api.routes import health, oauth
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
National Population Database (systems connected to the NPD are level-3 information systems).

**Authentication.** An agency gets a short-lived bearer token with its OAuth2 client credentials
(`POST /oauth/token`, `grant_type=client_credentials`, HTTP Basic or form fields, optional `scope`)
and sends it as `Authorization: Bearer …` on every `/v1` request. The older `X-API-Key` still works
where the operator configured keys, but is deprecated (answers carry `Deprecation: true`).

**Scopes decide the fields.** `citizen.identity` (IDs, name, birth date, gender), `citizen.residence`,
`citizen.status` (alive/deceased, date of death), `citizen.family`, `citizen.other` (ethnicity,
religion, … and any other field); `audit.read` for auditors. A field outside the token's scopes is
left out of the answer and named in its `withheld` list.

**Rate limits** per agency (token bucket): over the limit is `429` with `Retry-After` (seconds).

**Audit.** Every request states a `purpose`; every citizen disclosed is one audit entry with the
fields actually shown, the agency, the purpose and the request ID. `X-Request-ID` is echoed (one is
made when absent): send your own to find your requests in the audit.
"""


def create_app(settings: NdxpSettings | None = None) -> FastAPI:
    """The NDXP app for `settings` (default: `get_settings()`); opens its database on startup."""
    settings = settings or get_settings()
    install_log_filters()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            # Checkpoints on a thread of their own: no request waits for one (mocks/ndxp/sqlite.py).
            db = await run_in_threadpool(open_population, settings.database_url, checkpoint_every_s=0.25)
        except Exception as exc:
            app.state.startup_error = exc  # NdxpServer reports it; uvicorn only logs it
            raise
        app.state.db = db
        app.state.audit = MeteredAuditLog(db.audit_log(), app.state.metrics)
        _log.info("NDXP serving the population in %s (%s)", db.location, settings.environment)
        try:
            yield
        finally:
            await db.aclose()  # the async pool, in the loop that opened it
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
    app.state.tokens = token_service(settings.token_secret, audience="ndxp", ttl_s=settings.token_ttl_s)
    app.state.limiter = RateLimiter()  # rates per agency come from the settings at each check
    app.state.faults = FaultInjector(settings.error_rate, settings.latency_ms, settings.fault_seed)
    app.state.metrics = NdxpMetrics(app.state.faults)  # a registry per app: tests build several
    app.state.rate_limited = Counter(
        "ndxp_rate_limited",
        "Requests answered 429 because the agency was over its rate limit, by agency",
        ["agency"],
        registry=app.state.metrics.registry,
    )
    # The last middleware added is the outermost: request IDs wrap the faults, the body limit and the
    # method guard, so a 503, a 413 or a 405 echoes one too.
    app.add_middleware(FaultMiddleware, faults=app.state.faults)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MethodGuardMiddleware)  # a 405 needs no body: answered before it is read
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: sees 503s and latency
    app.include_router(health.router)
    app.include_router(metrics_router)  # GET /metrics, no key: counts only (see mocks/ndxp/metrics.py)
    app.include_router(oauth.router)
    app.include_router(api_router, prefix="/v1")
    install_error_answers(app)
    return app
