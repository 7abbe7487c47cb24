"""`MethodGuardMiddleware`: a method the resource does not have is 405, with an `Allow` that lists every
method of the resource, whatever order the routes were declared in.

The router alone gets two cases wrong. `GET /v1/citizens/verify` matches the template
`GET /v1/citizens/{personal_id}` and was answered 422 ("verify" is no personal ID), though the path names
the `POST`-only resource `/verify`: a path without parameters is the more specific one, so its methods
decide. And when two routes share a path (`GET` and `POST /authorize`), a 405 listed the methods of the
first one only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MethodGuardMiddleware", "Resources"]


class Resources:
    """The app's paths and the methods each takes, from its OpenAPI paths (every API route with its full
    prefix: FastAPI keeps included routers nested, so `app.routes` does not list them) and its plain
    routes (/docs, /openapi.json). Each takes the methods its routes take: FastAPI's routes take no `HEAD`
    they do not declare, Starlette's plain ones take it with `GET`."""

    def __init__(self, app: Any) -> None:
        methods: dict[str, set[str]] = {}
        for path, operations in app.openapi().get("paths", {}).items():
            methods.setdefault(path, set()).update(m.upper() for m in operations)
        for route in app.routes:
            path, route_methods = getattr(route, "path", None), getattr(route, "methods", None)
            if isinstance(path, str) and route_methods:
                methods.setdefault(path, set()).update(route_methods)
        self._table: list[tuple[re.Pattern[str], bool, frozenset[str]]] = []
        for path, names in methods.items():
            self._table.append((compile_path(path)[0], "{" not in path, frozenset(names)))

    def allowed(self, path: str) -> frozenset[str] | None:
        """The methods of the resource at `path`: those of the paths without parameters that match it if
        any do, else those of every template that matches it; None when nothing matches (a 404)."""
        matching = [(literal, names) for regex, literal, names in self._table if regex.match(path)]
        chosen = [names for literal, names in matching if literal] or [names for _, names in matching]
        return frozenset().union(*chosen) if chosen else None


class MethodGuardMiddleware:
    """Answer 405 (with `Allow`) to a request whose method the resource at its path does not have."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._resources: Resources | None = None  # built on the first request: the routes are complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._resources is None:
            self._resources = Resources(scope["app"])
        methods = self._resources.allowed(scope["path"])
        if methods is None or scope["method"] in methods:
            await self.app(scope, receive, send)
            return
        payload = json.dumps({"detail": "Method Not Allowed"}).encode()
        headers = [
            (b"allow", ", ".join(sorted(methods)).encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": 405, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
