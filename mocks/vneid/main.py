"""Builds the mock VNeID FastAPI app: `create_app(settings, citizens=…)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from mocks.common.body_limit import BodyLimitMiddleware
from mocks.common.errors import install_error_answers
from mocks.common.methods import MethodGuardMiddleware
from mocks.common.ratelimit import RateLimiter
from mocks.common.settings import token_service
from mocks.ndxp.db import PopulationStore, open_population
from mocks.ndxp.middleware import FaultInjector, RequestIdMiddleware
from mocks.vneid.accounts import AccountsStore, open_accounts
from mocks.vneid.api.main import api_router, oauth_router, oidc_router
from mocks.vneid.api.routes import health
from mocks.vneid.config import VneidSettings, get_settings
from mocks.vneid.deps import build_principals
from mocks.vneid.exceptions import AccountError, MatchError, PopulationUnavailableError
from mocks.vneid.logs import LOGGER, install_log_filters
from mocks.vneid.matching import CitizenLookup
from mocks.vneid.oidc.keys import SigningKey
from mocks.vneid.oidc.provider import OidcProvider
from mocks.vneid.service import AccountService

__all__ = ["create_app"]

_log = logging.getLogger(LOGGER)

DESCRIPTION = """\
Mock of Vietnam's national e-ID system (VNeID). Police units (scope `account.officer`) file
applications for level-1 and level-2 accounts, approve them (level 1: matched against the National
Population Database; level 2: verified in person) and lock or unlock them; citizens activate their
account and log in to relying parties through OpenID Connect (authorization code + PKCE S256);
agencies look an account's status up (audited, with a `purpose`). Every change is an event in an outbox.

**Authentication.** Agencies and police units get a short-lived bearer token with their OAuth2 client
credentials (`POST /oauth/token`, `grant_type=client_credentials`, HTTP Basic or form fields, optional
`scope`) and send it as `Authorization: Bearer …` on every `/v1` request. The older `X-API-Key` still
works where the operator configured keys, but is deprecated (answers carry `Deprecation: true`).

**Scopes decide the fields.** `account.status` (status, level, province, dates), `account.identity`
(the personal ID), `account.officer` (the police's operations), `audit.read` (auditors). A field outside
the token's scopes is left out of the look-up and named in its `withheld` list.

**Rate limits** per agency (token bucket): over the limit is `429` with `Retry-After` (seconds).

**Audit.** Every answer about an account to an agency or a police unit is one audit entry (fields shown,
agency, purpose, request ID), read at `GET /v1/audit` with `audit.read`. `X-Request-ID` is echoed (one is
made when absent): send your own to find your requests in the audit.
"""


def create_app(settings: VneidSettings | None = None, *, citizens: CitizenLookup | None = None) -> FastAPI:
    """The VNeID app for `settings` (default: `get_settings()`).

    `citizens` is the NPD look-up approvals match against; without it, the population database that
    `settings.population_url` names is opened, and without that, approvals answer 503.
    """
    settings = settings or get_settings()
    install_log_filters()
    key = (
        SigningKey.from_pem(settings.signing_key.get_secret_value())
        if settings.signing_key
        else SigningKey.generate()
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        population: PopulationStore | None = None
        try:
            db: AccountsStore = await run_in_threadpool(open_accounts, settings.database_url)
            lookup = citizens
            if lookup is None and settings.population_url:
                opened = await run_in_threadpool(open_population, settings.population_url)
                population, lookup = opened, opened.lookup_many
        except Exception as exc:
            app.state.startup_error = exc  # VneidServer reports it; uvicorn only logs it
            raise
        service = AccountService(db, lookup)
        app.state.service = service
        app.state.audit = db.audit_log()
        app.state.provider = OidcProvider(settings, service, key)
        _log.info("VNeID serving accounts in %s (%s)", db.location, settings.environment)
        try:
            yield
        finally:
            db.close()
            if population is not None:
                population.close()

    app = FastAPI(title="Mock VNeID", description=DESCRIPTION, version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.startup_error = None
    app.state.principals = build_principals(settings)  # the deprecated API keys
    app.state.tokens = token_service(
        settings.token_secret, audience="vneid", ttl_s=settings.agency_token_ttl_s
    )
    app.state.limiter = RateLimiter()  # rates per agency come from the settings at each check
    app.state.faults = FaultInjector(
        settings.login_error_rate, settings.login_latency_ms, settings.fault_seed
    )
    # The last middleware added is the outermost: a 413 or a 405 echoes a request ID too.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MethodGuardMiddleware)  # a 405 needs no body: answered before it is read
    app.add_middleware(RequestIdMiddleware)
    app.add_exception_handler(AccountError, _account_error)
    app.add_exception_handler(PopulationUnavailableError, _account_error)
    app.include_router(health.router)
    app.include_router(oauth_router)
    app.include_router(oidc_router)
    app.include_router(api_router, prefix="/v1")
    install_error_answers(app)
    return app


async def _account_error(_request: Request, exc: Exception) -> JSONResponse:
    """Account errors as `{"detail": …}` (and the differing `fields` of a failed match), with the status
    each error class names."""
    status_code = int(getattr(exc, "status_code", 400))
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, MatchError):
        body["fields"] = list(exc.fields)
    headers = {"Retry-After": "5"} if status_code == 503 else None
    return JSONResponse(body, status_code=status_code, headers=headers)
