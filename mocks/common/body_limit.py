"""`BodyLimitMiddleware`: a request body over the mock's limit is refused with 413, having read no more
of it than the limit (and nothing at all when its `Content-Length` already says it is too large).

The body is read here, up to the limit, before the app sees the request, then handed on whole: FastAPI
reads every body whole anyway (JSON, forms), and reading it here means a chunked body is counted as it
streams in, with no exception thrown through the app (FastAPI would turn one into a 400).
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "MiB", "too_large"]

MiB = 1024 * 1024


def too_large(max_bytes: int) -> str:
    """The 413 answer's `detail`."""
    return (
        f"the request body is larger than this server accepts ({max_bytes} bytes); "
        "send less per request (split a batch)"
    )


class BodyLimitMiddleware:
    """Answer 413 to an HTTP request whose body is over `max_bytes`; pass every other one on unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        # uvicorn refuses a Content-Length that is not a number before the app is called.
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        payload = json.dumps({"detail": too_large(self.max_bytes)}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
