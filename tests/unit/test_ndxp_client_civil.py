"""The streams client's civil-status and residence calls (`NdxpClient.register_civil`, `register_residence`,
`end_residence`) against scripted answers: chunks, retries, token refresh, permanent refusals."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from streams.exceptions import ConfigurationError, StreamsError
from streams.ndxp_auth import ClientCredentials
from streams.ndxp_client import CivilResult, NdxpClient, ResidenceResult

pytestmark = pytest.mark.unit

SCOPES = "citizen.identity citizen.residence citizen.status civil.register residence.write"
Step = httpx.Response | Callable[[httpx.Request], httpx.Response]


def scripted(steps: list[Step], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps.pop(0)
        return step(request) if callable(step) else step

    return httpx.MockTransport(handler)


def token_answer(token: str) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "expires_in": 300, "scope": SCOPES})


def client(steps: list[Step], seen: list[httpx.Request], **kwargs: Any) -> NdxpClient:
    return NdxpClient(
        "http://ndxp.test",
        credentials=ClientCredentials("streams", SecretStr("s"), SCOPES),
        max_backoff_s=0.01,
        transport=scripted(steps, seen),
        **kwargs,
    )


def echo_results(request: httpx.Request) -> httpx.Response:
    """Every record cleaned, with an ID made from its record_id."""
    records = json.loads(request.content)["registrations"]
    return httpx.Response(
        200,
        json={
            "results": [
                {
                    "record_id": r["record_id"],
                    "outcome": "cleaned",
                    "fields": [],
                    "corrections": {},
                    "personal_id": f"008324{int(r['record_id']):06d}",
                    "spouse_personal_id": None,
                    "replayed": False,
                }
                for r in records
            ]
        },
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_register_civil_chunks_by_1000_in_order() -> None:
    seen: list[httpx.Request] = []
    ndxp = client([token_answer("t"), echo_results, echo_results, echo_results], seen)
    records = [{"record_id": str(n), "sector": "civil_status"} for n in range(2500)]

    async def go() -> list[CivilResult]:
        try:
            return await ndxp.register_civil(records, request_id="rid-1")
        finally:
            await ndxp.aclose()

    results = run(go())
    assert [r.record_id for r in results] == [str(n) for n in range(2500)]
    assert results[7] == CivilResult("7", "cleaned", personal_id="008324000007")
    calls = [r for r in seen if r.url.path == "/v1/civil-status/registrations"]
    assert [len(json.loads(r.content)["registrations"]) for r in calls] == [1000, 1000, 500]
    assert all(
        r.headers["X-Request-ID"] == "rid-1" and r.headers["Authorization"] == "Bearer t" for r in calls
    )
    assert json.loads(calls[0].content)["purpose"]


def test_register_civil_nothing_to_send_makes_no_call() -> None:
    seen: list[httpx.Request] = []
    ndxp = client([], seen)
    assert run(ndxp.register_civil([])) == []
    assert seen == []


def test_register_civil_reads_every_field() -> None:
    item = {
        "record_id": "m1",
        "outcome": "corrected",
        "fields": [],
        "corrections": {"full_name": "Lê Văn Bình"},
        "personal_id": "052090123456",
        "spouse_personal_id": "019192000001",
        "replayed": True,
    }
    rejected = {"record_id": None, "outcome": "rejected", "detail": "not a JSON object (got a JSON array)"}
    seen: list[httpx.Request] = []
    ndxp = client([token_answer("t"), httpx.Response(200, json={"results": [item, rejected]})], seen)
    first, second = run(ndxp.register_civil([{"record_id": "m1"}, {"x": 1}]))
    assert first == CivilResult(
        "m1", "corrected", (), {"full_name": "Lê Văn Bình"}, "052090123456", "019192000001", True
    )
    assert second == CivilResult(None, "rejected", detail="not a JSON object (got a JSON array)")


def test_register_civil_retries_transient_answers_and_refreshes_the_token_once() -> None:
    seen: list[httpx.Request] = []
    steps: list[Step] = [
        token_answer("t1"),
        httpx.Response(401, json={"detail": "expired"}),
        token_answer("t2"),
        httpx.Response(429, headers={"Retry-After": "0.3"}, json={"detail": "slow down"}),
        httpx.Response(503, json={"detail": "unavailable"}),
        echo_results,
    ]
    ndxp = client(steps, seen)

    async def go() -> float:
        started = time.perf_counter()
        (result,) = await ndxp.register_civil([{"record_id": "1"}])
        assert result.outcome == "cleaned"
        return time.perf_counter() - started

    assert run(go()) >= 0.3
    assert ndxp.retries == 2
    posts = [r for r in seen if r.url.path == "/v1/civil-status/registrations"]
    assert [r.headers["Authorization"] for r in posts] == ["Bearer t1", "Bearer t2", "Bearer t2", "Bearer t2"]
    # A retry sends the same records: the NDXP answers them as replays.
    assert len({r.content for r in posts}) == 1


def test_register_civil_transport_errors_are_retried() -> None:
    seen: list[httpx.Request] = []

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    ndxp = client([token_answer("t"), broken, echo_results], seen)
    assert run(ndxp.register_civil([{"record_id": "1"}]))[0].outcome == "cleaned"


@pytest.mark.parametrize("status", [401, 403])
def test_register_civil_refused_credentials_are_a_configuration_error(status: int) -> None:
    seen: list[httpx.Request] = []
    refusal = httpx.Response(status, json={"detail": "streams may not register civil-status events"})
    steps: list[Step] = [token_answer("t1"), refusal]
    if status == 401:
        steps += [token_answer("t2"), refusal]
    ndxp = client(steps, seen)
    with pytest.raises(ConfigurationError, match=r"civil\.register") as error:
        run(ndxp.register_civil([{"record_id": "1"}]))
    assert "may not register" in str(error.value)


def test_register_civil_answer_of_the_wrong_length_is_an_error() -> None:
    seen: list[httpx.Request] = []
    ndxp = client([token_answer("t"), httpx.Response(200, json={"results": []})], seen)
    with pytest.raises(StreamsError, match="0 results for 1"):
        run(ndxp.register_civil([{"record_id": "1"}]))


def test_register_residence_ok_and_replayed() -> None:
    seen: list[httpx.Request] = []
    answer = {
        "personal_id": "008324000001",
        "residence_status": "registered",
        "reference": "r",
        "replayed": True,
    }
    ndxp = client([token_answer("t"), httpx.Response(503), httpx.Response(200, json=answer)], seen)
    result = run(ndxp.register_residence("008324000001", "008", "2024-03-20", "r", request_id="rid"))
    assert result == ResidenceResult(True, 200, "008324000001", "registered", replayed=True)
    post = seen[-1]
    assert post.url.path == "/v1/residence/registrations"
    assert json.loads(post.content) == {
        "personal_id": "008324000001",
        "province": "008",
        "since": "2024-03-20",
        "reference": "r",
    }
    assert post.headers["X-Request-ID"] == "rid"


@pytest.mark.parametrize("status", [404, 409])
def test_residence_refusals_are_permanent_answers_never_retried(status: int) -> None:
    seen: list[httpx.Request] = []
    refusal = httpx.Response(status, json={"detail": "citizen 052*******56 is recorded as deceased"})
    ndxp = client([token_answer("t"), refusal], seen)
    result = run(ndxp.end_residence("052090123456", "2024-01-15", "r"))
    assert result == ResidenceResult(
        False, status, "052090123456", detail="citizen 052*******56 is recorded as deceased"
    )
    assert ndxp.retries == 0 and len(seen) == 2
    assert seen[-1].url.path == "/v1/residence/deregistrations"
    assert json.loads(seen[-1].content) == {
        "personal_id": "052090123456",
        "on": "2024-01-15",
        "reference": "r",
    }


def test_residence_without_the_scope_is_a_configuration_error() -> None:
    seen: list[httpx.Request] = []
    ndxp = client([token_answer("t"), httpx.Response(403, json={"detail": "no"})], seen)
    with pytest.raises(ConfigurationError, match=r"residence\.write"):
        run(ndxp.end_residence("052090123456", "2024-01-15", "r"))


def test_lookup_many_still_posts_to_verify_batch() -> None:
    seen: list[httpx.Request] = []
    found = {"results": [{"query_id": "008090123456", "found": False, "withheld": []}]}
    ndxp = client([token_answer("t"), httpx.Response(200, json=found)], seen)
    assert run(ndxp.lookup_many(["008090123456"])) == {}
    assert seen[-1].url.path == "/v1/citizens/verify-batch"
    assert json.loads(seen[-1].content)["ids"] == ["008090123456"]
