"""schemathesis against both mocks' OpenAPI, on real servers: anonymous, then with a token whose client holds
every scope but the auditor's. Every operation gets `FUZZ_EXAMPLES` generated cases (valid and invalid),
each answer runs schemathesis' checks (no 5xx, status, content type, headers and body as documented,
invalid data refused, valid data accepted, 405 with `Allow`, authentication not ignored), and the server
itself counts its answers, so a 5xx to a request a check sent on its own is caught too.

Where a check cannot apply to an operation, it is switched off there, in `CONFIG`, with the reason.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.schemas import BaseSchema
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from test_ndxp_api import DUC, HOA, ODD, TAM
from test_ndxp_api import settings_for as ndxp_settings
from test_vneid_api import CITIZENS, REDIRECT

from mocks.ndxp.db import PopulationDB
from mocks.ndxp.main import create_app as create_ndxp
from mocks.ndxp.server import NdxpServer
from mocks.vneid.config import RelyingParty, VneidSettings
from mocks.vneid.main import create_app as create_vneid
from mocks.vneid.server import VneidServer

pytestmark = pytest.mark.integration

# Cases per operation and credentials: with about 15 operations per mock and two sets of credentials, the
# module makes about 4,300 requests, in under a minute on two cores. Set POPSYNC_FUZZ_EXAMPLES higher to
# search longer by hand (400: about 20,000 requests, under 4 minutes).
FUZZ_EXAMPLES = int(os.environ.get("POPSYNC_FUZZ_EXAMPLES", "50"))
SECRET = "fuzz-secret-0123456789"
NDXP_SCOPES = [
    "citizen.identity", "citizen.residence", "citizen.status", "citizen.family", "citizen.other",
    "civil.register", "residence.write",
]  # fmt: skip
VNEID_SCOPES = ["account.officer", "account.status", "account.identity"]
CONFIG: dict[str, Any] = {
    "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES},
    "operations": [
        {
            # An authorization request is checked against the registered clients and their redirect URIs,
            # which no schema can say; by RFC 6749 §4.1.2.1 a bad one is an error page (400) while the
            # client or URI is in doubt and a redirect to the client (302/303) after. So schema-valid data
            # is refused, and invalid data answered 3xx, as the protocol wants.
            "include-path": "/authorize",
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"enabled": False},
            },
        },
        {
            # Approving matches the application against the NPD: an application that fits the schema but
            # names a citizen the NPD does not hold (or holds otherwise) is 422 with the fields that differ.
            "include-path-regex": r"/v1/accounts/\{personal_id\}/(approve|verify-in-person)$",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
                }
            },
        },
    ],
}


class AnswerCounter:
    """ASGI middleware for the test: counts the server's answers by status."""

    def __init__(self, app: ASGIApp, counts: Counter[int]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.counts[int(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counting if scope["type"] == "http" else send)


def counted(app: FastAPI) -> tuple[FastAPI, Counter[int]]:
    counts: Counter[int] = Counter()
    app.add_middleware(AnswerCounter, counts=counts)
    return app, counts


def server_errors(counts: Counter[int]) -> dict[int, int]:
    return {status: n for status, n in counts.items() if status >= 500}


def token(base_url: str, scopes: list[str]) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": " ".join(scopes)},
        auth=("fuzz", SECRET),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def ndxp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NdxpServer, Counter[int]]]:
    path = tmp_path_factory.mktemp("fuzz-ndxp") / "npd.sqlite3"
    db = PopulationDB.create(path)
    db.load([DUC, HOA, TAM, ODD])
    db.close()
    config = ndxp_settings(
        path,
        clients={"fuzz": {"secret": SECRET, "scopes": NDXP_SCOPES}},
        token_ttl_s=3600,  # one token for the whole module
        access_log=False,
        log_level="warning",
    )
    app, counts = counted(create_ndxp(config))
    with NdxpServer(config, app=app) as server:
        yield server, counts


@pytest.fixture(scope="module")
def vneid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VneidServer, Counter[int]]]:
    tmp = tmp_path_factory.mktemp("fuzz-vneid")
    npd = PopulationDB.create(tmp / "npd.sqlite3")
    npd.load(CITIZENS)
    npd.close()
    config = VneidSettings(
        database_url=f"sqlite:///{tmp / 'vneid.sqlite3'}",
        population_url=f"sqlite:///{tmp / 'npd.sqlite3'}",
        clients={"fuzz": {"secret": SECRET, "scopes": VNEID_SCOPES}},
        agency_token_ttl_s=3600,
        api_keys={},
        officer_keys={},
        relying_parties={"dvc-052": RelyingParty(redirect_uris=[REDIRECT])},
        access_log=False,
        log_level="warning",
    )
    app, counts = counted(create_vneid(config))
    with VneidServer(config, app=app) as server:
        yield server, counts


def load(base_url: str) -> BaseSchema:
    return schemathesis.openapi.from_url(
        f"{base_url}/openapi.json", config=schemathesis.Config.from_dict(CONFIG)
    )


@pytest.fixture(scope="module")
def ndxp_schema(ndxp: tuple[NdxpServer, Counter[int]]) -> BaseSchema:
    return load(ndxp[0].base_url)


@pytest.fixture(scope="module")
def vneid_schema(vneid: tuple[VneidServer, Counter[int]]) -> BaseSchema:
    return load(vneid[0].base_url)


@pytest.fixture(scope="module")
def ndxp_token(ndxp: tuple[NdxpServer, Counter[int]]) -> dict[str, str]:
    return token(ndxp[0].base_url, NDXP_SCOPES)


@pytest.fixture(scope="module")
def vneid_token(vneid: tuple[VneidServer, Counter[int]]) -> dict[str, str]:
    return token(vneid[0].base_url, VNEID_SCOPES)


ndxp_api = schemathesis.pytest.from_fixture("ndxp_schema")
vneid_api = schemathesis.pytest.from_fixture("vneid_schema")
# The same cases on every run (derandomize): a build fails because a change broke something, not by luck;
# search further by hand with POPSYNC_FUZZ_EXAMPLES. No deadline: a case's time is the server's, and tests
# assert no wall-clock times. The health checks are about slow or filtered data generation.
fuzz = settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@ndxp_api.parametrize()
@fuzz
def test_ndxp_anonymous(case: schemathesis.Case, ndxp: tuple[NdxpServer, Counter[int]]) -> None:
    case.call_and_validate()
    assert not server_errors(ndxp[1])


@ndxp_api.parametrize()
@fuzz
def test_ndxp_with_token(
    case: schemathesis.Case, ndxp: tuple[NdxpServer, Counter[int]], ndxp_token: dict[str, str]
) -> None:
    case.call_and_validate(headers=ndxp_token)
    assert not server_errors(ndxp[1])


@vneid_api.parametrize()
@fuzz
def test_vneid_anonymous(case: schemathesis.Case, vneid: tuple[VneidServer, Counter[int]]) -> None:
    case.call_and_validate()
    assert not server_errors(vneid[1])


@vneid_api.parametrize()
@fuzz
def test_vneid_with_token(
    case: schemathesis.Case, vneid: tuple[VneidServer, Counter[int]], vneid_token: dict[str, str]
) -> None:
    case.call_and_validate(headers=vneid_token)
    assert not server_errors(vneid[1])
