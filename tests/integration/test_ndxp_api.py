"""Integration tests of the mock NDXP: the real app under uvicorn on a real socket, called over HTTP."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.exceptions import ServerStartError
from mocks.ndxp.models import BatchPublic
from mocks.ndxp.server import NdxpServer
from schemas.citizen import Citizen
from schemas.personal_id import make_personal_id

pytestmark = pytest.mark.integration

AGENCY_KEY = "test-key-lgsp-008"
OTHER_KEY = "test-key-lgsp-052"
AUDITOR_KEY = "test-key-c06-audit"


def citizen(**overrides: Any) -> Citizen:
    fields: dict[str, Any] = {
        "personal_id": "008090123456",
        "legacy_id": "123456789",
        "full_name": "Nguyễn Văn Đức",
        "date_of_birth": "1990-05-17",
        "gender": "male",
        "permanent_province": "008",
        "ethnicity": "Kinh",
    }
    fields.update(overrides)
    return Citizen.model_validate(fields)


DUC = citizen()
HOA = citizen(
    personal_id="019301000001", legacy_id=None, full_name="Trần Thị Hoa", date_of_birth="2001-02-03",
    gender="female", permanent_province="019",
)  # fmt: skip
TAM = citizen(
    personal_id="052050000777", legacy_id="052000777", full_name="Lê Văn Tám", date_of_birth="1950-01-01",
    status="deceased", date_of_death="2020-01-01", permanent_province="052",
)  # fmt: skip
ODD = citizen(personal_id="008190000002", legacy_id="987654321", date_of_birth="1985-03-04")
FILLER = [
    citizen(personal_id=make_personal_id("008", "female", 1980, n), legacy_id=None, full_name=f"Người {n}")
    for n in range(1, 1201)
]


def settings_for(path: Path, **overrides: Any) -> NdxpSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{path}",
        "api_keys": {"lgsp-008": AGENCY_KEY, "lgsp-052": OTHER_KEY},
        "auditor_keys": {"c06-audit": AUDITOR_KEY},
        "access_log": True,
    }
    values.update(overrides)
    return NdxpSettings(**values)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ndxp") / "npd.sqlite3"
    db = PopulationDB.create(path)
    try:
        db.load([DUC, HOA, TAM, ODD, *FILLER])
    finally:
        db.close()
    return path


@pytest.fixture(scope="module")
def server(db_path: Path) -> Iterator[NdxpServer]:
    with NdxpServer(settings_for(db_path)) as running:
        yield running


@pytest.fixture
def client(server: NdxpServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": AGENCY_KEY}, timeout=30) as c:
        yield c


@pytest.fixture
def auditor(server: NdxpServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": AUDITOR_KEY}, timeout=30) as c:
        yield c


def batch(client: httpx.Client, ids: list[Any], request_id: str | None = None) -> httpx.Response:
    headers = {"X-Request-ID": request_id} if request_id else {}
    return client.post("/v1/citizens/verify-batch", json={"ids": ids, "purpose": "cleanse"}, headers=headers)


def audit_of(auditor: httpx.Client, request_id: str) -> list[dict[str, Any]]:
    response = auditor.get("/v1/audit", params={"request_id": request_id, "limit": 10_000})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


# --- basics, auth -------------------------------------------------------------------------------


def test_health_and_docs_need_no_key(server: NdxpServer) -> None:
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.base_url}/docs").status_code == 200
    paths = httpx.get(f"{server.base_url}/openapi.json").json()["paths"]
    assert {"/v1/citizens/verify-batch", "/v1/citizens/verify", "/v1/citizens/{personal_id}"} <= set(paths)
    assert {"/v1/legacy/{legacy_id}", "/v1/audit"} <= set(paths)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "no-such-key"}, {"X-API-Key": ""}])
def test_v1_needs_a_known_key(server: NdxpServer, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=server.base_url, headers=headers) as anonymous:
        for response in (
            anonymous.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "x"}),
            batch(anonymous, [DUC.personal_id]),
            anonymous.post("/v1/citizens/verify", json={"id": DUC.personal_id, "purpose": "x"}),
            anonymous.get("/v1/legacy/123456789", params={"purpose": "x"}),
            anonymous.get("/v1/audit"),
        ):
            assert response.status_code == 401
            assert "X-API-Key" in response.json()["detail"] or "API key" in response.json()["detail"]


def test_auditor_key_reads_the_audit_only(auditor: httpx.Client) -> None:
    response = auditor.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "curiosity"})
    assert response.status_code == 403
    assert "auditor" in response.json()["detail"]


# --- one citizen --------------------------------------------------------------------------------


def test_read_citizen_gives_every_basic_field(client: httpx.Client) -> None:
    response = client.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "insurance card"})
    assert response.status_code == 200
    body = response.json()
    assert body.pop("withheld") == []  # an agency key carries every citizen scope
    assert Citizen.model_validate(body) == DUC
    assert response.json()["ethnicity"] == "Kinh"
    inconsistent = client.get(f"/v1/citizens/{ODD.personal_id}", params={"purpose": "x"}).json()
    assert inconsistent.pop("withheld") == []
    assert Citizen.model_validate(inconsistent) == ODD


def test_read_citizen_errors(client: httpx.Client) -> None:
    missing = client.get("/v1/citizens/008099999999", params={"purpose": "x"})
    assert missing.status_code == 404 and "no citizen" in missing.json()["detail"]
    assert client.get(f"/v1/citizens/{DUC.personal_id}").status_code == 422  # no purpose
    assert client.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "  "}).status_code == 422
    malformed = client.get("/v1/citizens/08090123456", params={"purpose": "x"})
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "personal_id"]
    assert "pattern" in malformed.json()["detail"][0]["msg"]


# --- batch --------------------------------------------------------------------------------------


def test_batch_answers_in_request_order(client: httpx.Client) -> None:
    ids: list[Any] = [
        TAM.personal_id, "008099999999", "123456789", 8090123456, HOA.personal_id, " 019301000001",
        None, "٠١٩٣٠١٠٠٠٠٠١", "000000000", DUC.personal_id, "abc",
    ]  # fmt: skip
    response = batch(client, ids)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    results = BatchPublic.model_validate(response.json()).results
    assert [r.query_id for r in results] == ids
    assert [r.found for r in results] == [
        True,
        False,
        True,
        False,
        True,
        False,
        False,
        False,
        False,
        True,
        False,
    ]
    errors = [r.error is not None for r in results]
    assert errors == [False, False, False, True, False, True, True, True, False, False, True]
    by_position = {
        i: Citizen.model_validate(r.citizen.model_dump()) for i, r in enumerate(results) if r.citizen
    }
    assert by_position == {0: TAM, 2: DUC, 4: HOA, 9: DUC}
    assert all(r.citizen is None for r in results if not r.found)
    assert results[3].error == "not an ID: expected a string of 9 or 12 ASCII digits"


def test_batch_of_1000_ok_1001_refused_empty_refused(client: httpx.Client) -> None:
    ids = [c.personal_id for c in FILLER[:1000]]
    response = batch(client, ids)
    assert response.status_code == 200
    assert all(r["found"] for r in response.json()["results"])
    too_many = batch(client, [*ids, HOA.personal_id])
    assert too_many.status_code == 422
    assert "at most 1000" in str(too_many.json()["detail"])
    empty = batch(client, [])
    assert empty.status_code == 422 and "at least 1" in str(empty.json()["detail"])
    no_purpose = client.post("/v1/citizens/verify-batch", json={"ids": [DUC.personal_id]})
    assert no_purpose.status_code == 422


def test_concurrent_batches_all_answer(server: NdxpServer) -> None:
    def one(start: int) -> int:
        with httpx.Client(base_url=server.base_url, headers={"X-API-Key": OTHER_KEY}, timeout=60) as c:
            response = batch(c, [p.personal_id for p in FILLER[start : start + 300]])
            return sum(r["found"] for r in response.json()["results"])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(0, 1200, 150))) == [300] * 6 + [300, 150]


# --- legacy IDs ---------------------------------------------------------------------------------


def test_legacy_resolution(client: httpx.Client) -> None:
    response = client.get("/v1/legacy/123456789", params={"purpose": "map CMND"})
    assert response.status_code == 200
    assert response.json() == {"legacy_id": "123456789", "personal_id": DUC.personal_id}
    assert client.get("/v1/legacy/000000001", params={"purpose": "x"}).status_code == 404
    assert client.get("/v1/legacy/12345678", params={"purpose": "x"}).status_code == 422
    assert client.get("/v1/legacy/123456789").status_code == 422


# --- single verification ------------------------------------------------------------------------


def verify(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/citizens/verify", json={"purpose": "check", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(
    ("claimed", "expected"),
    [
        ("Nguyễn Văn Đức", "match"),
        (unicodedata.normalize("NFD", " nguyễn  văn ĐỨC "), "match"),
        ("Nguyen Van Duc", "match_without_diacritics"),
        (unicodedata.normalize("NFD", "Nguyễn Văn Dức"), "match_without_diacritics"),
        ("Nguyễn Văn Đực", "match_without_diacritics"),
        ("Nguyễn Văn Minh", "mismatch"),
    ],
)
def test_verify_name(client: httpx.Client, claimed: str, expected: str) -> None:
    result = verify(client, id=DUC.personal_id, full_name=claimed)
    assert result == {
        "found": True,
        "personal_id": DUC.personal_id,
        "fields": {"full_name": expected},
        "deceased": False,
        "permanent_province": "008",
        "withheld": [],
    }


def test_verify_each_claimed_field(client: httpx.Client) -> None:
    result = verify(
        client, id="052000777", full_name="Le Van Tam", date_of_birth="1950-01-01", gender="female"
    )
    assert result["found"] and result["personal_id"] == TAM.personal_id
    assert result["fields"] == {
        "full_name": "match_without_diacritics",
        "date_of_birth": "match",
        "gender": "mismatch",
    }
    assert (result["deceased"], result["permanent_province"]) == (True, "052")
    only_date = verify(client, id=HOA.personal_id, date_of_birth="2001-02-04")
    assert only_date["fields"] == {"date_of_birth": "mismatch"}


def test_verify_not_found_and_bad_requests(client: httpx.Client) -> None:
    assert verify(client, id="008099999999", full_name="X") == {
        "found": False,
        "personal_id": None,
        "fields": {},
        "deceased": None,
        "permanent_province": None,
        "withheld": [],
    }
    for bad in (
        {"id": "0080901234", "purpose": "x"},
        {"id": DUC.personal_id},
        {"id": DUC.personal_id, "purpose": "x", "gender": "Nam"},
        {"id": DUC.personal_id, "purpose": "x", "date_of_birth": "17/05/1990"},
        # A number is no date (pydantic alone read 643_593_600 as seconds since 1970: 1990-05-17).
        {"id": DUC.personal_id, "purpose": "x", "date_of_birth": 643_593_600},
        {"id": DUC.personal_id, "purpose": "x", "date_of_birth": "643593600"},
        {"id": DUC.personal_id, "purpose": "x", "date_of_birth": "1990-05-17T00:00:00"},
    ):
        answer = client.post("/v1/citizens/verify", json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert isinstance(answer.json()["detail"], list)  # FastAPI's list of reasons, as documented


def test_a_method_the_resource_lacks_is_405_with_allow(client: httpx.Client) -> None:
    # GET /v1/citizens/verify matched GET /v1/citizens/{personal_id} and was a 422 about the ID "verify".
    for path in ("/v1/citizens/verify", "/v1/citizens/verify-batch"):
        answer = client.get(path, params={"purpose": "x"})
        assert answer.status_code == 405 and answer.headers["allow"] == "POST", answer.text
    options = client.options(f"/v1/citizens/{DUC.personal_id}")
    assert options.status_code == 405 and options.headers["allow"] == "GET"
    assert client.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "x"}).status_code == 200


# --- audit --------------------------------------------------------------------------------------


def test_batch_audits_exactly_one_row_per_citizen_disclosed(
    client: httpx.Client, auditor: httpx.Client
) -> None:
    request_id = f"batch-{uuid.uuid4().hex}"
    ids = [
        DUC.personal_id,
        "123456789",
        DUC.personal_id,
        HOA.personal_id,
        "008099999999",
        "bad",
        TAM.personal_id,
    ]
    ids += [p.personal_id for p in FILLER[:50]]
    response = batch(client, ids, request_id)
    assert response.headers["X-Request-ID"] == request_id
    entries = audit_of(auditor, request_id)
    assert len(entries) == 3 + 50  # Đức once (asked three ways), Hoa, Tám, the fifty
    assert {e["personal_id"] for e in entries} == {DUC.personal_id, HOA.personal_id, TAM.personal_id} | {
        p.personal_id for p in FILLER[:50]
    }
    entry = next(e for e in entries if e["personal_id"] == DUC.personal_id)
    assert entry["agency"] == "lgsp-008" and entry["purpose"] == "cleanse"
    assert entry["endpoint"] == "citizens.verify_batch"
    assert {"full_name", "date_of_birth", "gender", "ethnicity"} <= set(entry["fields"])
    assert entry["at"].endswith("Z") or entry["at"].endswith("+00:00")


def test_each_endpoint_audits_what_it_disclosed(client: httpx.Client, auditor: httpx.Client) -> None:
    rid = uuid.uuid4().hex
    client.get(f"/v1/citizens/{HOA.personal_id}", params={"purpose": "school"}, headers={"X-Request-ID": rid})
    (read,) = audit_of(auditor, rid)
    assert (read["personal_id"], read["purpose"], read["endpoint"]) == (
        HOA.personal_id,
        "school",
        "citizens.read",
    )

    rid = uuid.uuid4().hex
    client.post(
        "/v1/citizens/verify",
        json={"id": DUC.personal_id, "gender": "male", "purpose": "check"},
        headers={"X-Request-ID": rid},
    )
    (checked,) = audit_of(auditor, rid)
    assert checked["fields"] == ["personal_id", "deceased", "permanent_province", "gender"]

    rid = uuid.uuid4().hex
    client.get("/v1/legacy/052000777", params={"purpose": "map"}, headers={"X-Request-ID": rid})
    (mapped,) = audit_of(auditor, rid)
    assert (mapped["personal_id"], mapped["fields"]) == (TAM.personal_id, ["personal_id"])

    rid = uuid.uuid4().hex
    client.get("/v1/citizens/008099999999", params={"purpose": "x"}, headers={"X-Request-ID": rid})
    assert audit_of(auditor, rid) == []  # nothing found, nothing disclosed


def test_audit_filters_and_is_auditor_only(
    server: NdxpServer, client: httpx.Client, auditor: httpx.Client
) -> None:
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": OTHER_KEY}) as other:
        rid = uuid.uuid4().hex
        batch(other, [HOA.personal_id], rid)
        forbidden = other.get("/v1/audit")
        assert forbidden.status_code == 403 and "auditor" in forbidden.json()["detail"]
    assert client.get("/v1/audit").status_code == 403
    by_agency = auditor.get("/v1/audit", params={"agency": "lgsp-052", "limit": 5}).json()
    assert by_agency["count"] == len(by_agency["entries"]) >= 1
    assert {e["agency"] for e in by_agency["entries"]} == {"lgsp-052"}
    assert auditor.get("/v1/audit", params={"limit": 1}).json()["count"] == 1
    assert auditor.get("/v1/audit", params={"limit": 0}).status_code == 422
    assert auditor.delete("/v1/audit").status_code == 405


# --- request IDs, faults, logs -------------------------------------------------------------------


def test_request_id_echoed_or_made(server: NdxpServer, client: httpx.Client) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "x"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    refused = httpx.get(f"{server.base_url}/v1/audit", headers={"X-Request-ID": "on-a-401"})
    assert refused.status_code == 401 and refused.headers["X-Request-ID"] == "on-a-401"
    junk = client.get("/health", headers={"X-Request-ID": "a b"})
    assert junk.headers["X-Request-ID"] != "a b"


def test_error_rate_injects_503s_on_v1_only(db_path: Path) -> None:
    with (
        NdxpServer(settings_for(db_path, error_rate=1.0)) as flaky,
        httpx.Client(base_url=flaky.base_url, headers={"X-API-Key": AGENCY_KEY}) as c,
    ):
        response = batch(c, [DUC.personal_id], "during-outage")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.headers["X-Request-ID"] == "during-outage"
        assert "unavailable" in response.json()["detail"]
        assert c.get("/health").status_code == 200
        flaky.faults.error_rate = 0.0  # the outage ends
        assert batch(c, [DUC.personal_id]).status_code == 200
        assert flaky.faults.injected == 1
        flaky.faults.latency_ms = 300  # and the platform turns slow
        started = time.perf_counter()
        assert batch(c, [DUC.personal_id]).status_code == 200
        assert time.perf_counter() - started >= 0.3


def test_seeded_error_rate_is_deterministic(db_path: Path) -> None:
    def statuses() -> list[int]:
        with (
            NdxpServer(settings_for(db_path, error_rate=0.5, fault_seed=42)) as flaky,
            httpx.Client(base_url=flaky.base_url, headers={"X-API-Key": AGENCY_KEY}) as c,
        ):
            return [batch(c, [HOA.personal_id]).status_code for _ in range(30)]

    first = statuses()
    assert set(first) == {200, 503}
    assert statuses() == first


def test_server_that_cannot_open_its_database_fails_to_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    server = NdxpServer(settings_for(blocker / "npd.sqlite3"), startup_timeout=10)
    with pytest.raises(ServerStartError, match=r"stopped while starting: .*(directory|exists)"):
        server.start()
    server.stop()


def test_access_log_masks_ids(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    access = logging.getLogger("uvicorn.access")
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    previous, access.propagate = access.propagate, True  # another app may have turned access logs off
    try:
        client.get(f"/v1/citizens/{DUC.personal_id}", params={"purpose": "x"})
        client.get("/v1/legacy/123456789", params={"purpose": "x"})
    finally:
        access.propagate = previous
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "/v1/citizens/008*******56" in text
    assert DUC.personal_id not in text and "123456789" not in text
