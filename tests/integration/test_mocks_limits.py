"""Both mocks on real sockets against oversized and invalid bodies: 413 above the limit, having read no more
than the limit (nothing when `Content-Length` says it all), and error answers that stay small whatever
was sent."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from test_ndxp_api import AGENCY_KEY, DUC, settings_for
from test_vneid_api import CLIENTS, bearer

from mocks.common.body_limit import MiB
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.server import NdxpServer
from mocks.vneid.config import VneidSettings
from mocks.vneid.server import VneidServer

pytestmark = pytest.mark.integration

NDXP_LIMIT = 4 * MiB  # the defaults
VNEID_LIMIT = MiB
SMALL_ANSWER = 16 * 1024  # what an error answer stays under, whatever the request held


@pytest.fixture(scope="module")
def ndxp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NdxpServer]:
    path = tmp_path_factory.mktemp("limits-ndxp") / "npd.sqlite3"
    db = PopulationDB.create(path)
    db.load([DUC])
    db.close()
    with NdxpServer(settings_for(path, access_log=False, log_level="warning")) as server:
        assert server.settings.max_body_bytes == NDXP_LIMIT
        yield server


@pytest.fixture(scope="module")
def vneid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VneidServer]:
    tmp = tmp_path_factory.mktemp("limits-vneid")
    settings = VneidSettings(
        database_url=f"sqlite:///{tmp / 'vneid.sqlite3'}",
        clients=CLIENTS,
        api_keys={},
        officer_keys={},
        access_log=False,
        log_level="warning",
    )
    with VneidServer(settings) as server:
        assert server.settings.max_body_bytes == VNEID_LIMIT
        yield server


def raw_exchange(base_url: str, head: str, body_parts: Iterable[bytes] = ()) -> tuple[int, bytes]:
    """Send `head` and whatever `body_parts` yields (stopping early if the server answers), then read one
    answer: its status and body. The socket timeout turns a server waiting for more into a failure."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port or 80), timeout=30) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            sock.sendall(part)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed without answering: {received!r}"
            received += chunk
        headers, _, body = received.partition(b"\r\n\r\n")
        length = int(dict(h.lower().split(b": ", 1) for h in headers.split(b"\r\n")[1:])[b"content-length"])
        while len(body) < length:
            body += sock.recv(65536)
        return int(headers.split(b" ")[1]), body


def post_head(path: str, host: str, *headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json", *headers]
    return "\r\n".join(lines) + "\r\n\r\n"


@pytest.mark.parametrize(("mock", "path"), [("ndxp", "/v1/citizens/verify-batch"), ("vneid", "/v1/accounts")])
def test_a_declared_length_over_the_limit_is_413_before_any_of_the_body_is_sent(
    mock: str, path: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(mock)
    # 10 GiB declared, nothing sent: a server that waited for the body would never answer.
    head = post_head(path, "mock", f"Content-Length: {10 * 1024**3}")
    status, body = raw_exchange(server.base_url, head)
    assert status == 413 and str(server.settings.max_body_bytes) in json.loads(body)["detail"]


@pytest.mark.parametrize(("mock", "path"), [("ndxp", "/v1/citizens/verify-batch"), ("vneid", "/v1/accounts")])
def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    mock: str, path: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(mock)
    chunk = b"x" * 65536
    # Chunks up to 64 KiB past the limit, and never the last (empty) chunk: the answer can only come from
    # counting what streamed in.
    count = server.settings.max_body_bytes // len(chunk) + 2
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * count
    status, body = raw_exchange(server.base_url, post_head(path, "mock", "Transfer-Encoding: chunked"), parts)
    assert status == 413 and "split" in json.loads(body)["detail"]


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_not(ndxp: NdxpServer) -> None:
    def body_of(size: int) -> bytes:
        start = b'{"ids": ["008090123456"], "purpose": "'
        return start + b"p" * (size - len(start) - 2) + b'"}'

    url = f"{ndxp.base_url}/v1/citizens/verify-batch"
    headers = {"Content-Type": "application/json", "X-API-Key": AGENCY_KEY}
    at_limit = httpx.post(url, content=body_of(NDXP_LIMIT), headers=headers)
    assert at_limit.status_code == 422  # read and validated: the purpose is over 500 characters
    assert len(at_limit.content) < SMALL_ANSWER
    assert httpx.post(url, content=body_of(NDXP_LIMIT + 1), headers=headers).status_code == 413


def test_a_20_mb_invalid_application_gets_a_small_413(vneid: VneidServer) -> None:
    # What an outside probe sent: the 422 echoed the input and came back 147 MB.
    body = json.dumps({"personal_id": "1" * 20_000_000, "full_name": ["x"], "extra": {"a": "b" * 10}})
    answer = httpx.post(
        f"{vneid.base_url}/v1/accounts",
        content=body,
        headers={**bearer(vneid, "police-052"), "Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 413 and len(answer.content) < 1024


def big_invalid_application(size: int) -> dict[str, Any]:
    filler = "9" * (size // 4)
    return {
        "personal_id": filler,  # not 12 digits
        "full_name": [filler],  # not a string
        "date_of_birth": filler,  # not a date
        "gender": filler,
        "province": filler,
        **{f"extra-{n}-{'k' * 500}": n for n in range(200)},  # not allowed, 200 times
    }


def test_an_invalid_body_under_the_limit_gets_a_bounded_422(vneid: VneidServer, ndxp: NdxpServer) -> None:
    application = big_invalid_application(VNEID_LIMIT // 2)
    answer = httpx.post(
        f"{vneid.base_url}/v1/accounts", json=application, headers=bearer(vneid, "police-052"), timeout=60
    )
    assert answer.status_code == 422 and len(answer.content) < SMALL_ANSWER, len(answer.content)
    detail = answer.json()["detail"]
    assert len(detail) == 21 and detail[-1]["type"] == "too_many_errors"
    assert detail[0]["loc"] == ["body", "personal_id"] and len(detail[0]["input"]) <= 100

    claim = {"id": DUC.personal_id, "purpose": "x", "full_name": "", "date_of_birth": "9" * 3_000_000}
    verify = httpx.post(f"{ndxp.base_url}/v1/citizens/verify", json=claim, headers={"X-API-Key": AGENCY_KEY})
    assert verify.status_code == 422 and len(verify.content) < SMALL_ANSWER, len(verify.content)


def test_a_body_that_is_not_utf8_json_is_400_as_documented(ndxp: NdxpServer) -> None:
    answer = httpx.post(
        f"{ndxp.base_url}/v1/citizens/verify",
        content=b"\xff\xfe{",
        headers={"Content-Type": "application/json", "X-API-Key": AGENCY_KEY},
    )
    assert answer.status_code == 400 and "detail" in answer.json()
    documented = httpx.get(f"{ndxp.base_url}/openapi.json").json()
    assert {"400", "413"} <= set(documented["paths"]["/v1/citizens/verify"]["post"]["responses"])
