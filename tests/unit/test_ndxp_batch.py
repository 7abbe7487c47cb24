"""verify-batch built from stored rows (`mocks/ndxp/batch.py`) answers and audits byte for byte as the
model-built answer did: every citizen validated into `Citizen`, dumped by pydantic, one `Disclosure` each."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from pydantic import JsonValue
from pydantic_core import to_json

from mocks.common.audit import AuditLog, Disclosure, DisclosureBatch
from mocks.ndxp.batch import answer_batch, is_id
from mocks.ndxp.db import COLUMNS, PopulationDB
from mocks.ndxp.disclosure import BAD_ID, FieldFilter, citizen_fields
from mocks.ndxp.metrics import MeteredAuditLog, NdxpMetrics
from mocks.ndxp.middleware import FaultInjector
from mocks.ndxp.population import generate_population
from mocks.ndxp.scopes import CITIZEN_SCOPES, IDENTITY, OTHER, RESIDENCE, STATUS
from schemas.citizen import Citizen

pytestmark = pytest.mark.unit


def citizen(personal_id: str, **fields: Any) -> Citizen:
    base: dict[str, Any] = {
        "personal_id": personal_id,
        "full_name": "Nguyễn Văn Đức",
        "date_of_birth": "1990-05-17",
        "gender": "male",
        "permanent_province": "008",
    }
    return Citizen.model_validate({**base, **fields})


ODD_TEXT = 'a "quoted" \\ back\tslash\n\x00\x1f\x7f \u2028\u2029 \ufeff 😀 Đặng'
PEOPLE = [
    citizen("008090123456", legacy_id="123456789", ethnicity="Kinh", father_id="008060000001"),
    citizen("008090000002"),  # no extras at all
    citizen(
        "052050000777",
        legacy_id="052000777",
        full_name=ODD_TEXT,
        gender="female",
        status="deceased",
        date_of_death="2020-01-01",
        birth_province="019",
        permanent_province="052",
    ),
    citizen(
        "019301000001",
        nickname=ODD_TEXT,
        height=1.7,
        children=[1, 2.5, None, True, {"a": [ODD_TEXT]}],
        big=2**70,
        empty={},
        marital_status="married",
        current_residence="019",
    ),
    # Two citizens share a legacy ID (the data is at fault): the smaller personal_id answers it.
    citizen("008190000002", legacy_id="987654321", religion="Không"),
    citizen("008090000009", legacy_id="987654321", blood_type="O"),
]
SCOPE_SETS = [
    frozenset(CITIZEN_SCOPES),
    frozenset({IDENTITY}),
    frozenset({RESIDENCE, STATUS}),
    frozenset({IDENTITY, OTHER}),
    frozenset(),
]
QUERIES: list[JsonValue] = [
    "008090123456", "123456789", "008090123456", "052000777", "052050000777", "008099999999",
    "000000000", "987654321", "019301000001", "008090000002", "008190000002", "008090000009",
    8090123456, None, True, 1.5, 2**70, [], ["008090123456"], {"id": "008090123456"}, "",
    " 008090123456", "٠٠٨٠٩٠١٢٣٤٥٦", "00809012345x", ODD_TEXT, "12345678", "1234567890",
]  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Iterator[PopulationDB]:
    database = PopulationDB.create(tmp_path / "npd.sqlite3")
    database.load(PEOPLE)
    yield database
    database.close()


def model_built_answer(ids: Sequence[JsonValue], found: dict[str, Citizen], fields: FieldFilter) -> bytes:
    """The answer as the endpoint built it before rows: a model per citizen, dumped by pydantic."""
    parts = []
    for query_id in ids:
        qid = to_json(query_id).decode()
        if not is_id(query_id):
            parts.append(
                f'{{"query_id":{qid},"found":false,"citizen":null,"withheld":[],'
                f'"error":{to_json(BAD_ID).decode()}}}'
            )
        elif (c := found.get(query_id)) is None:
            parts.append(f'{{"query_id":{qid},"found":false,"citizen":null,"withheld":[],"error":null}}')
        else:
            split = fields.split(c)
            body = c.model_dump_json(include=split.include)
            withheld = split.withheld_json.decode()
            parts.append(
                f'{{"query_id":{qid},"found":true,"citizen":{body},"withheld":{withheld},"error":null}}'
            )
    return f'{{"results":[{",".join(parts)}]}}'.encode()


def audit_rows(db: PopulationDB, request_id: str) -> list[tuple[Any, ...]]:
    return (
        db.connections.get()
        .execute(
            "SELECT at, agency, personal_id, fields, purpose, endpoint FROM audit "
            "WHERE request_id = ? ORDER BY seq",
            (request_id,),
        )
        .fetchall()
    )


def test_columns_are_the_citizen_fields_in_order() -> None:
    assert tuple(Citizen.model_fields) == COLUMNS


def test_is_id_takes_strings_of_9_or_12_ascii_digits_only() -> None:
    assert [q for q in QUERIES if is_id(q)] == [q for q in QUERIES[:12]]


@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=lambda s: ",".join(sorted(s)) or "none")
def test_sqlite_writes_each_citizen_as_pydantic_dumps_it(db: PopulationDB, scopes: frozenset[str]) -> None:
    found = db.lookup_json([c.personal_id for c in PEOPLE])
    fields = FieldFilter(scopes)
    for c in PEOPLE:
        split = fields.split(c)
        assert fields.json_split(found[c.personal_id]) == split
        assert fields.json_body(found[c.personal_id]) == c.model_dump_json(include=split.include).encode()


@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=lambda s: ",".join(sorted(s)) or "none")
def test_the_answer_is_the_model_built_answer(db: PopulationDB, scopes: frozenset[str]) -> None:
    audit = AuditLog(db.connections)
    answer = answer_batch(
        db, audit, QUERIES, FieldFilter(scopes), agency="lgsp-008", purpose="p", request_id="r", endpoint="e"
    )
    found = db.lookup_many([q for q in QUERIES if isinstance(q, str)])
    assert found["987654321"].personal_id == "008090000009"  # the smaller of the two
    assert answer == model_built_answer(QUERIES, found, FieldFilter(scopes))


@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=lambda s: ",".join(sorted(s)) or "none")
def test_the_audit_is_one_disclosure_per_citizen_as_before(db: PopulationDB, scopes: frozenset[str]) -> None:
    audit = AuditLog(db.connections)
    fields = FieldFilter(scopes)
    answer_batch(db, audit, QUERIES, fields, agency="lgsp-008", purpose="p", request_id="new", endpoint="e")
    (at,) = {row[0] for row in audit_rows(db, "new")}
    found = db.lookup_many([q for q in QUERIES if isinstance(q, str)])
    when = datetime.fromisoformat(at)
    audit.record(
        [
            Disclosure("lgsp-008", pid, fields.disclosed(c), "p", "old", "e", when)
            for pid, c in sorted({c.personal_id: c for c in found.values()}.items())
        ]
    )
    assert audit_rows(db, "new") == audit_rows(db, "old")
    assert [row[2] for row in audit_rows(db, "new")] == sorted({c.personal_id for c in found.values()})
    if scopes == frozenset(CITIZEN_SCOPES):  # a full disclosure: every field of each citizen
        expected = {json.dumps(citizen_fields(c)) for c in found.values()}
        assert {row[3] for row in audit_rows(db, "new")} == expected


def test_a_batch_with_nobody_found_writes_no_audit_row(db: PopulationDB) -> None:
    audit = AuditLog(db.connections)
    ids: list[JsonValue] = ["008099999999", 12, "bad"]
    answer = answer_batch(db, audit, ids, FieldFilter(frozenset(CITIZEN_SCOPES)), agency="a", purpose="p",
                          request_id="r", endpoint="e")  # fmt: skip
    assert answer == model_built_answer(ids, {}, FieldFilter(frozenset()))
    assert audit.count() == 0


def test_a_batch_is_one_select_whatever_its_size(tmp_path: Path) -> None:
    people = list(generate_population(4, {"008": 1500, "052": 1500}))
    database = PopulationDB.create(tmp_path / "big.sqlite3")
    try:
        database.load(people)
        statements: list[str] = []
        database.connections.get().set_trace_callback(statements.append)
        ids = [c.personal_id for c in people[:2500]] + [c.legacy_id for c in people if c.legacy_id]
        found = database.lookup_json(ids)
        assert [s.split()[0] for s in statements] == ["SELECT"]
        assert {found[c.personal_id][0] for c in people[:2500]} == {c.personal_id for c in people[:2500]}
    finally:
        database.close()


def test_record_batch_writes_the_rows_record_writes(db: PopulationDB) -> None:
    audit = AuditLog(db.connections)
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    citizens = [("008090123456", ("personal_id", "full_name")), ("019301000001", ("personal_id",))]
    audit.record_batch(DisclosureBatch("lgsp-008", "p", "batch", "e", citizens, at))
    audit.record([Disclosure("lgsp-008", pid, list(f), "p", "one-by-one", "e", at) for pid, f in citizens])
    audit.record_batch(DisclosureBatch("lgsp-008", "p", "empty", "e", [], at))
    assert audit_rows(db, "batch") == audit_rows(db, "one-by-one")
    assert audit.count() == 4
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.connections.get().execute("DELETE FROM audit WHERE request_id = 'batch'")


def test_metered_record_batch_counts_each_citizen_by_agency(db: PopulationDB) -> None:
    metrics = NdxpMetrics(FaultInjector())
    audit = MeteredAuditLog(AuditLog(db.connections), metrics)
    audit.record_batch(DisclosureBatch("nobody-shown", "p", "r0", "e", []))
    audit.record_batch(DisclosureBatch("lgsp-008", "p", "r1", "e", [("008090123456", ("personal_id",))] * 3))
    assert metrics.registry.get_sample_value("ndxp_disclosures_total", {"agency": "lgsp-008"}) == 3
    assert "nobody-shown" not in generate_latest(metrics.registry).decode()
