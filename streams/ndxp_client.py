"""Async client of the mock NDXP's batch verification, with retries on transient failures."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
    wait_exponential_jitter,
)

from schemas.citizen import Citizen
from streams.exceptions import ConfigurationError, NdxpUnavailableError, StreamsError
from streams.metrics import WorkerMetrics

__all__ = ["NdxpClient", "error_kind"]

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("NDXP call failed (attempt %d): %s; retrying", state.attempt_number, exc)


def error_kind(exc: httpx.TransportError) -> str:
    """The `kind` label of a failed call that got no HTTP answer."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "transport"  # the connection broke mid-exchange (reset, protocol error)


class NdxpClient:
    """Looks up batches of IDs; a transient failure is retried until the NDXP answers.

    Retrying without limit is deliberate: giving up would leave records without an outcome, and
    the brief's rule is that every record ends in exactly one. An outage shows as growing lag.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        max_backoff_s: float = 10.0,
        purpose: str = "reconcile sector records (Project 06 cleansing)",
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("STREAMS_NDXP_API_KEY is empty: the NDXP requires an agency API key")
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"X-API-Key": api_key},
            timeout=timeout_s,
            transport=transport,
        )
        self._purpose = purpose
        self._max_backoff_s = max_backoff_s
        self._metrics = metrics
        self.calls = 0
        self.retries = 0

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
            wait=wait_exponential_jitter(initial=0.2, max=self._max_backoff_s),
            stop=stop_never,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post(ids, request_id)
        raise AssertionError("unreachable: tenacity retries forever or re-raises")  # pragma: no cover

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        if self._metrics is not None:
            self._metrics.ndxp_retries.inc()
        _log_retry(state)

    async def _post(self, ids: list[str], request_id: str | None) -> dict[str, Citizen]:
        self.calls += 1
        headers = {"X-Request-ID": request_id} if request_id else {}
        started = time.perf_counter()
        try:
            response = await self._client.post(
                "/v1/citizens/verify-batch", json={"ids": ids, "purpose": self._purpose}, headers=headers
            )
        except httpx.TransportError as exc:
            if self._metrics is not None:
                self._metrics.ndxp_call.observe(time.perf_counter() - started)
                self._metrics.ndxp_errors.labels(error_kind(exc)).inc()
            raise
        if self._metrics is not None:
            self._metrics.ndxp_call.observe(time.perf_counter() - started)
            if response.status_code >= 400:
                self._metrics.ndxp_errors.labels(str(response.status_code)).inc()
        if response.status_code in _TRANSIENT_STATUS:
            raise NdxpUnavailableError(f"NDXP answered {response.status_code}")
        if response.status_code in (401, 403):
            raise ConfigurationError(
                f"NDXP refused the API key ({response.status_code}): check STREAMS_NDXP_API_KEY"
            )
        response.raise_for_status()
        return self._parse(response.json())

    @staticmethod
    def _parse(body: dict[str, Any]) -> dict[str, Citizen]:
        out: dict[str, Citizen] = {}
        for item in body["results"]:
            if item.get("found") and item.get("citizen"):
                try:
                    out[item["query_id"]] = Citizen.model_validate(item["citizen"])
                except ValidationError as exc:  # not transient: a retry would get the same answer
                    raise StreamsError(
                        f"NDXP sent a citizen popsync cannot read ({exc.error_count()} errors); is the NDXP "
                        "version the one this worker expects?"
                    ) from None
        return out
