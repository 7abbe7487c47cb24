"""ASGI middleware: request IDs (echoed in `X-Request-ID`) and injected faults (503s, latency) on /v1."""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FaultInjector", "FaultMiddleware", "RequestIdMiddleware"]

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request ID is echoed only when it is short printable ASCII; otherwise a fresh one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


class RequestIdMiddleware:
    """Give every HTTP request an ID (the caller's `X-Request-ID`, or a new one) and echo it back.

    The ID is what the audit records with each disclosure: a caller that sends its own (the workers
    send the connector's `x-request-id` of the batch) can find its requests in the NDXP's audit and log.
    An answer to a caller that authenticated with the deprecated `X-API-Key` (the `deprecated_auth`
    flag in the request state) also carries `Deprecation: true` and a link to the token endpoint.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                if state.get("deprecated_auth"):
                    headers["Deprecation"] = "true"
                    headers["Link"] = '</oauth/token>; rel="successor-version"'
            await send(message)

        await self.app(scope, receive, send_with_id)


class FaultInjector:
    """The instability of the national systems, on demand: a seeded RNG decides which requests fail.

    Mutable so a running server can be made flaky (or healthy) mid-test: set `error_rate`/`latency_ms`.
    """

    def __init__(self, error_rate: float = 0.0, latency_ms: float = 0.0, seed: int | None = None) -> None:
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        self._rng = random.Random(seed)
        self.injected = 0  # 503s answered so far

    def should_fail(self) -> bool:
        if self.error_rate <= 0.0:
            return False
        fail = self._rng.random() < self.error_rate
        self.injected += fail
        return fail


class FaultMiddleware:
    """Delay every /v1 request by `latency_ms` and answer a fraction `error_rate` of them 503."""

    def __init__(self, app: ASGIApp, faults: FaultInjector, prefix: str = "/v1/") -> None:
        self.app = app
        self.faults = faults
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if not self.faults.should_fail():
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "NDXP temporarily unavailable (injected fault); retry later"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
