"""Async client of the mock NDXP's batch verification: OAuth2 tokens, retries on transient failures.

Credentials: OAuth2 client credentials (`STREAMS_NDXP_CLIENT_ID`/`_SECRET`/`_SCOPE`; a bearer token
fetched, cached, refreshed before expiry and once more after a 401), else the deprecated
`STREAMS_NDXP_API_KEY`. HTTPS is verified against `STREAMS_NDXP_CA_FILE` when set.

Failures:
- transient (5xx, 429, timeouts, connection errors): retried without limit, after the `Retry-After`
  the NDXP sent (429/503) or an exponential backoff; records must not be lost, an outage shows as lag;
- refused credentials, or a citizen whose fields the rules need came back `withheld` (the token's
  scopes do not cover them): `ConfigurationError`, at once; deciding on partial data would be wrong.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
)

from schemas.citizen import Citizen
from streams.config import StreamsSettings, get_settings
from streams.exceptions import ConfigurationError, NdxpUnavailableError, StreamsError
from streams.metrics import WorkerMetrics
from streams.ndxp_auth import (
    TRANSIENT_STATUS,
    ClientCredentials,
    NdxpBusyError,
    TokenSource,
    busy_error,
    error_kind,
)

__all__ = ["REQUIRED_FIELDS", "REQUIRED_SCOPES", "NdxpClient", "error_kind"]

log = logging.getLogger(__name__)

# What the outcome rules read of a citizen (schemas/rules.py), and the NDXP scopes that disclose it.
REQUIRED_FIELDS = frozenset(
    {"personal_id", "full_name", "date_of_birth", "gender", "permanent_province", "status", "date_of_death"}
)
REQUIRED_SCOPES = ("citizen.identity", "citizen.residence", "citizen.status")


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("NDXP call failed (attempt %d): %s; retrying in %.1f s", state.attempt_number, exc, wait)


def _verify(ca_file: Path | str | None) -> ssl.SSLContext | bool:
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"STREAMS_NDXP_CA_FILE {str(ca_file)!r} is not a readable PEM CA file: {exc}"
        ) from None


class NdxpClient:
    """Looks up batches of IDs; a transient failure is retried until the NDXP answers.

    Retrying without limit is deliberate: giving up would leave records without an outcome, and
    the brief's rule is that every record ends in exactly one. An outage shows as growing lag.

    Credentials are `credentials`, else the API key; when neither is given (a worker built with an
    unset `STREAMS_NDXP_API_KEY`), the client credentials and CA file of the process settings.
    `from_settings` is the explicit form.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        *,
        credentials: ClientCredentials | None = None,
        ca_file: Path | str | None = None,
        timeout_s: float = 30.0,
        max_backoff_s: float = 10.0,
        max_retry_after_s: float = 60.0,
        purpose: str = "reconcile sector records (Project 06 cleansing)",
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if credentials is None and not api_key and ca_file is None:
            settings = get_settings()
            credentials, ca_file = _credentials(settings), settings.ndxp_ca_file
        if credentials is None and not api_key:
            raise ConfigurationError(
                "no NDXP credentials: set STREAMS_NDXP_CLIENT_ID and STREAMS_NDXP_CLIENT_SECRET "
                "(or the deprecated STREAMS_NDXP_API_KEY)"
            )
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={} if credentials else {"X-API-Key": api_key},
            timeout=timeout_s,
            transport=transport,
            verify=_verify(ca_file),
        )
        self.tokens = (
            TokenSource(self._client, credentials, required_scopes=REQUIRED_SCOPES, metrics=metrics)
            if credentials
            else None
        )
        self._purpose = purpose
        self._max_backoff_s = max_backoff_s
        self._max_retry_after_s = max_retry_after_s
        self._metrics = metrics
        self.calls = 0
        self.retries = 0

    @classmethod
    def from_settings(
        cls,
        settings: StreamsSettings,
        *,
        metrics: WorkerMetrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> NdxpClient:
        """The client a worker with `settings` uses: client credentials if set, else the API key."""
        return cls(
            settings.ndxp_url,
            settings.ndxp_api_key.get_secret_value(),
            credentials=_credentials(settings),
            ca_file=settings.ndxp_ca_file,
            timeout_s=settings.ndxp_timeout_s,
            max_backoff_s=settings.ndxp_max_backoff_s,
            transport=transport,
            metrics=metrics,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def lookup_many(self, ids: Sequence[str], request_id: str | None = None) -> dict[str, Citizen]:
        """Map each ID (12-digit or 9-digit legacy) to its citizen; IDs not found are absent."""
        if not ids:
            return {}
        unique = list(dict.fromkeys(ids))
        found: dict[str, Citizen] = {}
        for start in range(0, len(unique), 1000):
            found.update(await self._batch(unique[start : start + 1000], request_id))
        return found

    async def _batch(self, ids: list[str], request_id: str | None) -> dict[str, Citizen]:
        if self._metrics is not None:
            self._metrics.ndxp_batch_size.observe(len(ids))
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((NdxpUnavailableError, httpx.TransportError)),
            wait=self._wait,
            stop=stop_never,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post(ids, request_id)
        raise AssertionError("unreachable: tenacity retries forever or re-raises")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        """The NDXP's `Retry-After` when it sent one (capped), else the exponential backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, NdxpBusyError) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_retry_after_s)
        # Exponential from 0.2 s with up to 1 s of jitter, capped (tenacity's wait_exponential_jitter).
        backoff = 0.2 * 2.0 ** min(state.attempt_number - 1, 30) + random.uniform(0, 1)
        return min(backoff, self._max_backoff_s)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        if self._metrics is not None:
            self._metrics.ndxp_retries.inc()
        _log_retry(state)

    async def _post(self, ids: list[str], request_id: str | None) -> dict[str, Citizen]:
        self.calls += 1
        headers = {"X-Request-ID": request_id} if request_id else {}
        body = {"ids": ids, "purpose": self._purpose}
        token = await self.tokens.token() if self.tokens else None
        response = await self._send(body, headers, token)
        if response.status_code == 401 and self.tokens is not None and token is not None:
            # Expired early, or the NDXP restarted with a new signing key: one new token, once.
            self.tokens.invalidate(token)
            response = await self._send(body, headers, await self.tokens.token())
        if response.status_code in TRANSIENT_STATUS:
            raise busy_error(response, "verify-batch")
        if response.status_code in (401, 403):
            how = "STREAMS_NDXP_CLIENT_ID/SECRET/SCOPE" if self.tokens else "STREAMS_NDXP_API_KEY"
            raise ConfigurationError(
                f"NDXP refused the credentials ({response.status_code}: {_detail(response)}): check {how}"
            )
        response.raise_for_status()
        return self._parse(response.json())

    async def _send(self, body: dict[str, Any], headers: dict[str, str], token: str | None) -> httpx.Response:
        if token is not None:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        try:
            response = await self._client.post("/v1/citizens/verify-batch", json=body, headers=headers)
        except httpx.TransportError as exc:
            if self._metrics is not None:
                self._metrics.ndxp_call.observe(time.perf_counter() - started)
                self._metrics.ndxp_errors.labels(error_kind(exc)).inc()
            raise
        if self._metrics is not None:
            self._metrics.ndxp_call.observe(time.perf_counter() - started)
            if response.status_code >= 400:
                self._metrics.ndxp_errors.labels(str(response.status_code)).inc()
        return response

    @staticmethod
    def _parse(body: dict[str, Any]) -> dict[str, Citizen]:
        out: dict[str, Citizen] = {}
        for item in body["results"]:
            needed = sorted(REQUIRED_FIELDS.intersection(item.get("withheld") or ()))
            if needed:  # not transient: the token's scopes decide, and the next answer would be the same
                raise ConfigurationError(
                    f"the NDXP withheld {', '.join(needed)}, which the outcome rules need: the client's "
                    f"scopes must include {' '.join(REQUIRED_SCOPES)} (STREAMS_NDXP_SCOPE and the NDXP's "
                    "client registration); no record was decided on partial data"
                )
            if item.get("found") and item.get("citizen"):
                try:
                    out[item["query_id"]] = Citizen.model_validate(item["citizen"])
                except ValidationError as exc:  # not transient: a retry would get the same answer
                    raise StreamsError(
                        f"NDXP sent a citizen popsync cannot read ({exc.error_count()} errors); is the NDXP "
                        "version the one this worker expects?"
                    ) from None
        return out


def _credentials(settings: StreamsSettings) -> ClientCredentials | None:
    if not settings.ndxp_client_id:
        return None
    return ClientCredentials(settings.ndxp_client_id, settings.ndxp_client_secret, settings.ndxp_scope)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))
    except ValueError:
        return "no JSON body"
