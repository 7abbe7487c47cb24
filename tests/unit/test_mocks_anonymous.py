"""Every route of both mocks answers a caller without credentials 401, unless it is on the short allow-list
below, which each mock's SECURITY.md documents ("Anonymous routes"). In process, no sockets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI

from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.main import create_app as create_ndxp
from mocks.vneid.config import VneidSettings
from mocks.vneid.main import create_app as create_vneid

pytestmark = pytest.mark.unit

MOCKS = Path(__file__).resolve().parents[2] / "mocks"
# What each route's path parameters are given: well-formed values, so a refusal is about credentials.
PATH_VALUES = {"personal_id": "008090123456", "legacy_id": "123456789"}
# The routes a caller without credentials may reach, and why. HEAD goes with GET wherever a route takes it.
COMMON = {
    ("GET", "/health"): "liveness, for probes and the servers' own start-up wait",
    ("GET", "/openapi.json"): "the API description",
    ("GET", "/docs"): "the API description, as a page",
    ("GET", "/docs/oauth2-redirect"): "the docs page's OAuth2 helper",
    ("GET", "/redoc"): "the API description, as a page",
    ("POST", "/oauth/token"): "client credentials: the client authenticates in the request itself",
}
ALLOWED = {
    "ndxp": {**COMMON, ("GET", "/metrics"): "Prometheus scrape: counts by route template, status, agency"},
    "vneid": {
        **COMMON,
        ("GET", "/.well-known/openid-configuration"): "OIDC discovery",
        ("GET", "/jwks"): "the public keys of the ID tokens",
        ("GET", "/authorize"): "the citizen's log-in page",
        ("POST", "/authorize"): "the citizen's log-in: personal ID and passcode are the credentials",
        ("POST", "/token"): "the relying party's code exchange: code, PKCE verifier and client auth",
        ("POST", "/v1/accounts/{personal_id}/activate"): "the one-time activation code is the credential",
    },
}


def routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every route of `app`, those of included routers (and any hidden from the
    OpenAPI) too: FastAPI keeps included routers nested, `iter_route_contexts` walks them."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in walk(app.routes) if walk else app.routes:  # older FastAPI keeps `app.routes` flat
        for method in sorted(route.methods or ()):
            yield method, route.path


def concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in PATH_VALUES, f"give the path parameter {name!r} of {path} a value in PATH_VALUES"
        return PATH_VALUES[name]

    return re.sub(r"\{(\w+)\}", value, path)


def ndxp_app(tmp: Path) -> FastAPI:
    PopulationDB.create(tmp / "npd.sqlite3").close()
    return create_ndxp(NdxpSettings(database_url=f"sqlite:///{tmp / 'npd.sqlite3'}", access_log=False))


def vneid_app(tmp: Path) -> FastAPI:
    return create_vneid(VneidSettings(database_url=f"sqlite:///{tmp / 'vneid.sqlite3'}", access_log=False))


def anonymous_answers(app: FastAPI) -> dict[tuple[str, str], httpx.Response]:
    async def go() -> dict[tuple[str, str], httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
                return {
                    (method, path): await client.request(method, concrete(path))
                    for method, path in routes(app)
                }

    return asyncio.run(go())


@pytest.mark.parametrize("mock", ["ndxp", "vneid"])
def test_every_route_but_the_allowed_ones_answers_401_without_credentials(mock: str, tmp_path: Path) -> None:
    app = ndxp_app(tmp_path) if mock == "ndxp" else vneid_app(tmp_path)
    answers = anonymous_answers(app)
    # The walk must see the API routes themselves, not only the top-level ones (or this test says nothing).
    assert {path for _, path in answers} >= set(app.openapi()["paths"])
    allowed = ALLOWED[mock]
    open_routes = {}
    for (method, path), answer in answers.items():
        listed = (method, path) in allowed or (method == "HEAD" and ("GET", path) in allowed)
        assert answer.status_code < 500, (method, path, answer.status_code, answer.text)
        if listed:
            # On the list only if it needs it: a route that refuses anonymous callers belongs off it.
            assert answer.status_code != 401, f"{method} {path} is allow-listed but answers 401"
        elif answer.status_code != 401:
            open_routes[f"{method} {path}"] = answer.status_code
        else:
            challenge = answer.headers["www-authenticate"]
            assert challenge.isascii() and challenge.startswith("Bearer realm="), (method, path, challenge)
    assert open_routes == {}, f"answer without credentials but are not on the allow-list: {open_routes}"
    assert {route for route in allowed if route not in answers} == set(), "allow-listed routes that are gone"


@pytest.mark.parametrize("mock", ["ndxp", "vneid"])
def test_security_md_documents_the_allow_list(mock: str) -> None:
    text = (MOCKS / mock / "SECURITY.md").read_text(encoding="utf-8")
    assert "\n## Anonymous routes\n" in text, f"mocks/{mock}/SECURITY.md has no 'Anonymous routes' section"
    section = text.split("\n## Anonymous routes\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(GET|POST) (/[^`]*)`", section))
    assert documented == set(ALLOWED[mock]), "SECURITY.md and this test's allow-list differ"
