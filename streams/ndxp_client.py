"""Async client of the mock NDXP: batch verification, civil-status registrations, residence changes;
OAuth2 tokens, retries on transient failures.

Credentials: OAuth2 client credentials (`STREAMS_NDXP_CLIENT_ID`/`_SECRET`/`_SCOPE`; a bearer token
fetched, cached, refreshed before expiry and once more after a 401), else the deprecated
`STREAMS_NDXP_API_KEY`. HTTPS is verified against `STREAMS_NDXP_CA_FILE` when set.

Failures:
- transient (5xx, 429, timeouts, connection errors): retried without limit, after the `Retry-After`
  the NDXP sent (429/503) or an exponential backoff; records must not be lost, an outage shows as lag;
- refused credentials or scopes (401/403), or a citizen whose fields the rules need came back
  `withheld` (the token's scopes do not cover them): `ConfigurationError`, at once; deciding on partial
  data would be wrong;
- a residence change the NPD refuses (404 unknown citizen, 409 not allowed): a permanent answer,
  returned as `ResidenceResult(ok=False, …)`, never retried.

Every call is safe to retry: look-ups change nothing, civil-status registrations are idempotent by
(province, registration_no, record_id) and residence changes by their `reference`.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
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

__all__ = [
    "MAX_BATCH",
    "REQUIRED_FIELDS",
    "REQUIRED_SCOPES",
    "CivilResult",
    "NdxpClient",
    "ResidenceResult",
    "error_kind",
]

log = logging.getLogger(__name__)

# What the outcome rules read of a citizen (schemas/rules.py), and the NDXP scopes that disclose it.
REQUIRED_FIELDS = frozenset(
    {"personal_id", "full_name", "date_of_birth", "gender", "permanent_province", "status", "date_of_death"}
)
REQUIRED_SCOPES = ("citizen.identity", "citizen.residence", "citizen.status")
MAX_BATCH = 1000  # items per NDXP call (verify-batch IDs, civil-status registrations)
_VERIFY = "/v1/citizens/verify-batch"
_CIVIL = "/v1/civil-status/registrations"
_RESIDENCE = "/v1/residence/registrations"
_END_RESIDENCE = "/v1/residence/deregistrations"
# Scopes each write path takes, for the message when the NDXP refuses them.
_WRITE_SCOPES = {
    _CIVIL: "civil.register citizen.identity",
    _RESIDENCE: "residence.write",
    _END_RESIDENCE: "residence.write",
}


@dataclass(frozen=True, slots=True)
class CivilResult:
    """The NDXP's answer for one civil-status record (docs/civil-status.md)."""

    record_id: str | None
    outcome: str  # cleaned, corrected, unsynced/…, rejected
    fields: tuple[str, ...] = ()
    corrections: Mapping[str, str] = field(default_factory=dict)
    personal_id: str | None = None  # synced: the ID issued (birth) or resolved (death, marriage)
    spouse_personal_id: str | None = None
    replayed: bool = False  # registered before; nothing changed this time
    detail: str | None = None  # rejected: why

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> CivilResult:
        return cls(
            record_id=item.get("record_id"),
            outcome=str(item["outcome"]),
            fields=tuple(item.get("fields") or ()),
            corrections=dict(item.get("corrections") or {}),
            personal_id=item.get("personal_id"),
            spouse_personal_id=item.get("spouse_personal_id"),
            replayed=bool(item.get("replayed", False)),
            detail=item.get("detail"),
        )


@dataclass(frozen=True, slots=True)
class ResidenceResult:
    """A residence change: applied (`ok`, maybe `replayed`), or refused for good (404/409, `detail`)."""

    ok: bool
    status_code: int
    personal_id: str
    residence_status: str | None = None  # registered / ended when ok
    replayed: bool = False
    detail: str | None = None


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
        civil_purpose: str = "register civil-status events (Project 06 linked procedures)",
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
        self._civil_purpose = civil_purpose
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
        for start in range(0, len(unique), MAX_BATCH):
            found.update(await self._batch(unique[start : start + MAX_BATCH], request_id))
        return found

    async def register_civil(
        self, records: Sequence[Mapping[str, Any]], request_id: str | None = None
    ) -> list[CivilResult]:
        """Register civil-status records (as the sector published them), in order, 1000 per call; one
        result per record, in order. Each call is all or nothing at the NDXP, and a retried call is
        answered from its registrations (`replayed`), so retrying never registers anything twice."""
        results: list[CivilResult] = []
        for start in range(0, len(records), MAX_BATCH):
            chunk = [dict(r) for r in records[start : start + MAX_BATCH]]
            body = {"registrations": chunk, "purpose": self._civil_purpose}
            response = await self._call(_CIVIL, body, request_id, "civil-status registrations")
            items = orjson.loads(response.content)["results"]
            if len(items) != len(chunk):  # not transient: the NDXP broke its contract
                raise StreamsError(
                    f"NDXP answered {len(items)} results for {len(chunk)} civil-status records"
                )
            results += [CivilResult.from_json(item) for item in items]
        return results

    async def register_residence(
        self, personal_id: str, province: str, since: str, reference: str, request_id: str | None = None
    ) -> ResidenceResult:
        """Register the citizen's permanent residence in `province` from `since` (`YYYY-MM-DD`).

        `reference` is the idempotency key: a retry with it changes nothing and answers `replayed`.
        A refusal (unknown citizen, deceased …) comes back `ok=False` with the NDXP's `detail`.
        """
        body = {"personal_id": personal_id, "province": province, "since": since, "reference": reference}
        return await self._residence(_RESIDENCE, body, personal_id, request_id)

    async def end_residence(
        self, personal_id: str, on: str, reference: str, request_id: str | None = None
    ) -> ResidenceResult:
        """End the citizen's permanent residence on `on` (`YYYY-MM-DD`); idempotent by `reference`."""
        body = {"personal_id": personal_id, "on": on, "reference": reference}
        return await self._residence(_END_RESIDENCE, body, personal_id, request_id)

    async def _residence(
        self, path: str, body: dict[str, Any], personal_id: str, request_id: str | None
    ) -> ResidenceResult:
        response = await self._call(path, body, request_id, "a residence change", permanent=(404, 409))
        if response.status_code in (404, 409):
            return ResidenceResult(False, response.status_code, personal_id, detail=_detail(response))
        answer = response.json()
        return ResidenceResult(
            True,
            response.status_code,
            str(answer.get("personal_id", personal_id)),
            residence_status=answer.get("residence_status"),
            replayed=bool(answer.get("replayed", False)),
        )

    async def _batch(self, ids: list[str], request_id: str | None) -> dict[str, Citizen]:
        if self._metrics is not None:
            self._metrics.ndxp_batch_size.observe(len(ids))
        body = {"ids": ids, "purpose": self._purpose}
        response = await self._call(_VERIFY, body, request_id, "verify-batch")
        return self._parse(orjson.loads(response.content))

    async def _call(
        self,
        path: str,
        body: dict[str, Any],
        request_id: str | None,
        what: str,
        permanent: tuple[int, ...] = (),
    ) -> httpx.Response:
        """POST until the NDXP gives a final answer: 2xx or a `permanent` status; transient ones retried."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((NdxpUnavailableError, httpx.TransportError)),
            wait=self._wait,
            stop=stop_never,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post(path, body, request_id, what, permanent)
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

    async def _post(
        self, path: str, body: dict[str, Any], request_id: str | None, what: str, permanent: tuple[int, ...]
    ) -> httpx.Response:
        self.calls += 1
        headers = {"X-Request-ID": request_id} if request_id else {}
        token = await self.tokens.token() if self.tokens else None
        response = await self._send(path, body, headers, token)
        if response.status_code == 401 and self.tokens is not None and token is not None:
            # Expired early, or the NDXP restarted with a new signing key: one new token, once.
            self.tokens.invalidate(token)
            response = await self._send(path, body, headers, await self.tokens.token())
        if response.status_code in TRANSIENT_STATUS:
            raise busy_error(response, what)
        if response.status_code in (401, 403):
            how = "STREAMS_NDXP_CLIENT_ID/SECRET/SCOPE" if self.tokens else "STREAMS_NDXP_API_KEY"
            needs = f" ({what} needs the scopes {_WRITE_SCOPES[path]})" if path in _WRITE_SCOPES else ""
            refused = f"NDXP refused the credentials ({response.status_code}: {_detail(response)})"
            raise ConfigurationError(f"{refused}{needs}: check {how}")
        if response.status_code in permanent:
            return response
        response.raise_for_status()
        return response

    async def _send(
        self, path: str, body: dict[str, Any], headers: dict[str, str], token: str | None
    ) -> httpx.Response:
        if token is not None:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        try:
            # orjson: several times faster than httpx's stdlib encoding for a 1,000-ID batch.
            response = await self._client.post(
                path, content=orjson.dumps(body), headers={**headers, "Content-Type": "application/json"}
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
