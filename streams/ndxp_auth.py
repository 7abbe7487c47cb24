"""A worker's NDXP credentials: OAuth2 client credentials → a bearer token, cached and refreshed early.

`TokenSource.token()` returns the cached token until shortly before it expires (a fifth of its
lifetime, at most 30 s, before), then fetches a new one; concurrent callers share one fetch. The caller
`invalidate`s a token the NDXP refused (401) and asks again once. A transient failure of the token
endpoint raises `NdxpBusyError` (or an httpx transport error), which the client retries like any other;
refused credentials or scopes raise `ConfigurationError`: retrying cannot fix them.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus

import httpx
from pydantic import SecretStr

from streams.exceptions import ConfigurationError, NdxpUnavailableError
from streams.metrics import WorkerMetrics

__all__ = [
    "TRANSIENT_STATUS",
    "ClientCredentials",
    "NdxpBusyError",
    "TokenSource",
    "busy_error",
    "error_kind",
    "retry_after_s",
]

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_REFRESH_MARGIN_S = 30.0


class NdxpBusyError(NdxpUnavailableError):
    """A transient answer (429, 503 …), with the wait the NDXP asked for in `Retry-After`, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ClientCredentials:
    """An agency's OAuth2 client at the NDXP and the scopes to ask for (space-separated)."""

    client_id: str
    client_secret: SecretStr
    scope: str = ""


def error_kind(exc: httpx.TransportError) -> str:
    """The `kind` label of a failed call that got no HTTP answer."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "transport"  # the connection broke mid-exchange (reset, protocol error)


def retry_after_s(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def busy_error(response: httpx.Response, what: str) -> NdxpBusyError:
    """The retryable error for a transient answer to `what`, carrying its Retry-After."""
    wait = retry_after_s(response.headers.get("Retry-After"))
    hint = f", Retry-After {wait:g} s" if wait is not None else ""
    return NdxpBusyError(f"NDXP answered {response.status_code} to {what}{hint}", wait)


class TokenSource:
    """Fetches, caches and refreshes the bearer token of one client over the client's HTTP pool."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: ClientCredentials,
        *,
        required_scopes: Iterable[str] = (),
        metrics: WorkerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not credentials.client_id or not credentials.client_secret.get_secret_value():
            raise ConfigurationError(
                "STREAMS_NDXP_CLIENT_ID and STREAMS_NDXP_CLIENT_SECRET must both be set for the NDXP's OAuth"
            )
        self._http = http
        self._credentials = credentials
        self._required = tuple(required_scopes)
        self._metrics = metrics
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0  # tokens obtained so far
        self.scopes: frozenset[str] = frozenset()  # granted with the current token

    async def token(self) -> str:
        """A token valid for a while yet: the cached one, or a new one."""
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:  # nobody fetched meanwhile
                await self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` (the NDXP refused it); the next `token()` fetches a new one."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> None:
        c = self._credentials
        # RFC 6749 §2.3.1: the Basic parts are form-urlencoded first.
        auth = httpx.BasicAuth(quote_plus(c.client_id), quote_plus(c.client_secret.get_secret_value()))
        data = {"grant_type": "client_credentials"}
        if c.scope:
            data["scope"] = c.scope
        try:
            response = await self._http.post("/oauth/token", data=data, auth=auth)
        except httpx.TransportError as exc:
            self._count_error(error_kind(exc))
            raise
        if response.status_code >= 400:
            self._count_error(str(response.status_code))
        if response.status_code in TRANSIENT_STATUS:
            raise busy_error(response, "a token request")
        if response.status_code >= 400:
            raise ConfigurationError(
                f"the NDXP refused client {c.client_id!r} a token ({response.status_code} "
                f"{_oauth_error(response)}): check STREAMS_NDXP_CLIENT_ID, STREAMS_NDXP_CLIENT_SECRET and "
                "STREAMS_NDXP_SCOPE against the client the NDXP operator registered"
            )
        body = response.json()
        expires_in = float(body.get("expires_in") or 60)
        granted = frozenset(str(body.get("scope") or c.scope).split())
        missing = [s for s in self._required if s not in granted]
        if missing:
            raise ConfigurationError(
                f"the NDXP granted client {c.client_id!r} the scopes {sorted(granted)}, without {missing}, "
                "which the outcome rules need; ask the operator to register them and list them in "
                "STREAMS_NDXP_SCOPE"
            )
        self._token = str(body["access_token"])
        self.scopes = granted
        self.fetched += 1
        self._refresh_at = self._clock() + expires_in - min(_REFRESH_MARGIN_S, expires_in / 5)

    def _count_error(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.ndxp_errors.labels(kind).inc()


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no JSON body"
    return f"{body.get('error', '?')}: {body.get('error_description', '')}"
