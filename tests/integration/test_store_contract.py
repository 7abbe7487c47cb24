"""One contract for every NPD store: the same tests against SQLite and a real PostgreSQL (issue 12):
the population, the audit, and the NPD's writers (civil status, residence).

Each test gets a `Backend`: a database URL of its own, opened through `open_population` as the NDXP opens
it, and a way to send raw SQL past the store (to show the database itself refuses to change the audit).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import civil_helpers
import psycopg
import pytest
from civil_helpers import BIRTH, DEATH

from mocks.common.audit import AuditStore, Disclosure, DisclosureBatch
from mocks.ndxp.civil_db import CivilRegistry, ResidenceConflictError, UnknownCitizenError
from mocks.ndxp.db import PopulationStore, open_population
from mocks.ndxp.exceptions import DuplicateCitizenError, PopulationFileError
from mocks.ndxp.population import generate_population, write_population
from schemas.citizen import Citizen


@dataclass
class Backend:
    name: str
    url: str
    raw: Callable[[str], None]  # runs one statement in a connection of its own, autocommit

    def open(self) -> PopulationStore:
        return open_population(self.url)


def _sqlite_raw(path: Path) -> Callable[[str], None]:
    def run(sql: str) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(sql)
        finally:
            conn.close()

    return run


def _postgres_raw(url: str) -> Callable[[str], None]:
    def run(sql: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.encode())

    return run


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "npd.sqlite3"
        return Backend("sqlite", f"sqlite:///{path}", _sqlite_raw(path))
    url = request.getfixturevalue("postgres_url")
    return Backend("postgresql", url, _postgres_raw(url))


@pytest.fixture
def store(backend: Backend) -> Iterator[PopulationStore]:
    opened = backend.open()
    yield opened
    opened.close()


def citizen(**overrides: Any) -> Citizen:
    fields: dict[str, Any] = {
        "personal_id": "008090123456",
        "legacy_id": "123456789",
        "full_name": "Nguyễn Văn Đức",
        "date_of_birth": "1990-05-17",
        "gender": "male",
        "permanent_province": "008",
        "ethnicity": "Kinh",
        "father_id": "008060000001",
    }
    fields.update(overrides)
    return Citizen.model_validate(fields)


DUC = citizen()
HOA = citizen(
    personal_id="019301000001", legacy_id=None, full_name="Trần Thị Hoa", date_of_birth="2001-02-03",
    gender="female", permanent_province="019", ethnicity=None, father_id=None,
)  # fmt: skip
TAM = citizen(
    personal_id="052050000777", legacy_id="052000777", full_name='Lê "Văn" Tám\\/\t',
    date_of_birth="1950-01-01", status="deceased", date_of_death="2020-01-01", permanent_province="052",
    note={"a": [1, 2.5, None]},
)  # fmt: skip
# Two citizens sharing a legacy ID (the data is at fault): the smaller personal_id answers.
TWIN = citizen(personal_id="008090999999", full_name="Nguyễn Văn Twin")
BARE = Citizen.model_validate(
    {
        "personal_id": "001099000001",
        "legacy_id": None,
        "full_name": "Hà Anh",
        "date_of_birth": "1999-12-31",
        "gender": "female",
        "permanent_province": "001",
    }
)
EVERYONE = [DUC, HOA, TAM, TWIN, BARE]


# --- the population ------------------------------------------------------------------------------


def test_load_then_count_and_look_up_by_either_id(store: PopulationStore) -> None:
    assert store.count() == 0
    assert store.load(EVERYONE, batch=2) == 5
    assert store.count() == 5
    found = store.lookup_many([DUC.personal_id, "052000777", "999999999999", "123456789", "x", "12345"])
    assert set(found) == {DUC.personal_id, "052000777", "123456789"}
    assert found[DUC.personal_id] == DUC
    assert found["052000777"] == TAM
    assert found["123456789"] == DUC  # shared with TWIN: the smaller personal_id
    assert store.lookup_many([TWIN.personal_id])[TWIN.personal_id] == TWIN
    assert store.lookup_many([]) == {}
    assert store.lookup_many(["٠١٢٣٤٥٦٧٨٩٠١"]) == {}  # other scripts' digits are not an ID


def test_lookup_json_is_the_models_json_byte_for_byte(store: PopulationStore) -> None:
    store.load(EVERYONE)
    found = store.lookup_json([c.personal_id for c in EVERYONE] + ["123456789"])
    for c in EVERYONE:
        personal_id, extra, body = found[c.personal_id]
        assert personal_id == c.personal_id
        assert body == c.model_dump_json().encode()
        assert (extra is None) == (not c.model_extra)
    assert found["123456789"][0] == DUC.personal_id


def test_a_generated_population_reads_back_as_it_was(store: PopulationStore, tmp_path: Path) -> None:
    people = list(generate_population(7, {"008": 300, "052": 200}))
    path = tmp_path / "population.jsonl"
    write_population(path, people)
    assert store.load_file(path) == 500
    ids = [c.personal_id for c in people] + [c.legacy_id for c in people if c.legacy_id]
    found = store.lookup_many(ids)
    assert all(found[c.personal_id] == c for c in people)
    bodies = store.lookup_json([c.personal_id for c in people])
    assert all(bodies[c.personal_id][2] == c.model_dump_json().encode() for c in people)


def test_a_repeated_personal_id_keeps_nothing_of_the_load(store: PopulationStore) -> None:
    store.load([DUC])
    with pytest.raises(DuplicateCitizenError, match=r"citizen #2: personal_id 008\*{7}56 is already loaded"):
        store.load([HOA, DUC, TAM])
    with pytest.raises(DuplicateCitizenError, match="citizen #3"):
        store.load([HOA, TAM, HOA], batch=10)
    assert store.count() == 1
    assert store.lookup_many([HOA.personal_id]) == {}


def test_a_bad_line_keeps_nothing_of_the_file(store: PopulationStore, tmp_path: Path) -> None:
    path = tmp_path / "population.jsonl"
    path.write_text(DUC.model_dump_json() + "\n" + '{"personal_id": "1"}\n', encoding="utf-8")
    with pytest.raises(PopulationFileError, match=r"population.jsonl:2:"):
        store.load_file(path)
    assert store.count() == 0


def test_two_stores_over_one_database_see_the_same_citizens(store: PopulationStore, backend: Backend) -> None:
    other = backend.open()  # a second replica's store: its own connections
    try:
        store.load([DUC, HOA])
        assert other.count() == 2
        assert other.lookup_many([HOA.personal_id]) == {HOA.personal_id: HOA}
        other.load([TAM])
        assert store.lookup_many([TAM.personal_id]) == {TAM.personal_id: TAM}
    finally:
        other.close()


# --- the audit -----------------------------------------------------------------------------------

AT = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _three(audit: AuditStore) -> None:
    audit.record(
        [
            Disclosure("lgsp-008", DUC.personal_id, ["full_name", "gender"], "insurance", "r1", "e", AT),
            Disclosure("lgsp-008", HOA.personal_id, ["full_name", "gender"], "insurance", "r1", "e", AT),
            Disclosure("lgsp-052", TAM.personal_id, ["personal_id"], "labour", "r2", "e", AT),
        ]
    )


def test_audit_records_and_reads_with_filters(store: PopulationStore) -> None:
    audit = store.audit_log()
    _three(audit)
    audit.record([])
    assert audit.count() == 3
    assert [e.personal_id for e in audit.read()] == [TAM.personal_id, HOA.personal_id, DUC.personal_id]
    assert [e.personal_id for e in audit.read(agency="lgsp-008")] == [HOA.personal_id, DUC.personal_id]
    assert [e.agency for e in audit.read(request_id="r2")] == ["lgsp-052"]
    (entry,) = audit.read(personal_id=DUC.personal_id)
    assert (entry.fields, entry.purpose, entry.at, entry.endpoint) == (
        ["full_name", "gender"],
        "insurance",
        AT,
        "e",
    )
    assert len(audit.read(limit=2)) == 2
    seqs = [e.seq for e in audit.read()]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 3


def test_a_batch_writes_the_rows_record_would(store: PopulationStore) -> None:
    audit = store.audit_log()
    citizens = [
        (DUC.personal_id, ["full_name"]),
        (HOA.personal_id, ["gender", "x"]),
        (TAM.personal_id, ["full_name"]),
    ]
    audit.record_batch(DisclosureBatch("lgsp-019", "health", "rb", "citizens.verify_batch", citizens, AT))
    audit.record_batch(DisclosureBatch("lgsp-019", "health", "empty", "e", [], AT))
    entries = list(reversed(audit.read(request_id="rb")))
    assert [(e.personal_id, e.fields) for e in entries] == citizens
    assert {(e.agency, e.purpose, e.endpoint, e.at) for e in entries} == {
        ("lgsp-019", "health", "citizens.verify_batch", AT)
    }
    assert audit.count() == 3


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit SET agency = 'nobody'",
        "UPDATE audit SET purpose = 'x' WHERE request_id = 'r2'",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE request_id = 'r1'",
    ],
)
def test_the_database_refuses_to_change_the_audit(
    store: PopulationStore, backend: Backend, statement: str
) -> None:
    audit = store.audit_log()
    _three(audit)
    with pytest.raises((sqlite3.DatabaseError, psycopg.Error), match="append-only") as refused:
        backend.raw(statement)
    if backend.name == "postgresql":
        assert isinstance(refused.value, psycopg.errors.InsufficientPrivilege)
    assert audit.count() == 3
    assert {e.agency for e in audit.read()} == {"lgsp-008", "lgsp-052"}


def test_postgres_refuses_truncate_and_changes_of_no_row(store: PopulationStore, backend: Backend) -> None:
    if backend.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE, and its row triggers see no change of zero rows")
    _three(store.audit_log())
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: TRUNCATE refused"):
        backend.raw("TRUNCATE audit")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: UPDATE refused"):
        backend.raw("UPDATE audit SET purpose = 'x' WHERE seq = -1")
    assert store.audit_log().count() == 3


def test_two_replicas_append_to_one_audit(store: PopulationStore, backend: Backend) -> None:
    other = backend.open()
    try:
        _three(store.audit_log())
        other.audit_log().record([Disclosure("lgsp-019", BARE.personal_id, ["gender"], "p", "r3", "e", AT)])
        assert store.audit_log().count() == other.audit_log().count() == 4
        assert store.audit_log().read(limit=1)[0].request_id == "r3"
    finally:
        other.close()


# --- the NPD's writers: civil status and residence ------------------------------------------------


@pytest.fixture
def civil(store: PopulationStore) -> CivilRegistry:
    store.load([civil_helpers.FATHER, civil_helpers.MOTHER, civil_helpers.BINH, civil_helpers.LAN])
    return CivilRegistry(store, today=lambda: date(2024, 6, 1))


def test_a_birth_is_registered_once_and_replayed(store: PopulationStore, civil: CivilRegistry) -> None:
    (first,) = civil.register([BIRTH])
    assert first.outcome == "cleaned" and not first.replayed and first.personal_id
    child = store.lookup_many([first.personal_id])[first.personal_id]
    assert child.full_name == "Nguyễn Minh An" and (child.model_extra or {})["mother_name"] == "Trần Thị Hoa"
    again, duplicate = civil.register(
        [BIRTH, {**BIRTH, "record_id": "b2", "registration_no": " KS-2024-001 "}]
    )
    assert again.public() == {**first.public(), "replayed": True}
    assert (duplicate.outcome, duplicate.personal_id) == ("unsynced/duplicate", None)
    assert store.count() == 5


def test_a_refusal_is_remembered_and_a_death_applied(store: PopulationStore, civil: CivilRegistry) -> None:
    wrong = {**DEATH, "record_id": "d9", "date_of_birth": "1991-01-02"}
    (refused,) = civil.register([wrong])
    assert refused.outcome.startswith("unsynced/") and not refused.replayed
    (same,) = civil.register([wrong])
    assert (same.outcome, same.replayed) == (refused.outcome, True)
    (death,) = civil.register([DEATH])
    assert death.outcome == "cleaned"
    assert store.lookup_many([civil_helpers.BINH_ID])[civil_helpers.BINH_ID].deceased


def test_one_request_is_all_or_nothing(store: PopulationStore, civil: CivilRegistry) -> None:
    births = [{**BIRTH, "record_id": f"b{n}", "registration_no": f"KS-{n}"} for n in range(3)]
    calls = iter(range(10))

    def failing_today() -> date:  # the third record's decision fails: the first two must not stay
        if next(calls) == 2:
            raise RuntimeError("the NPD's clock failed")
        return date(2024, 6, 1)

    with pytest.raises(RuntimeError, match="clock failed"):
        CivilRegistry(store, today=failing_today).register(births)
    assert store.count() == 4
    assert len({r.personal_id for r in civil.register(births)}) == 3 and store.count() == 7


def test_residence_changes_are_idempotent_by_reference(store: PopulationStore, civil: CivilRegistry) -> None:
    lan = civil_helpers.LAN_ID
    change = civil.register_residence("lgsp-019", lan, "019", date(2024, 1, 1), "ref-1")
    assert (change.residence_status, change.replayed) == ("registered", False)
    assert civil.register_residence("lgsp-019", lan, "019", date(2024, 1, 1), "ref-1").replayed
    with pytest.raises(ResidenceConflictError, match="different residence change"):
        civil.register_residence("lgsp-019", lan, "008", date(2024, 1, 1), "ref-1")
    ended = civil.end_residence("lgsp-019", lan, date(2024, 5, 1), "ref-2")
    assert ended.residence_status == "ended"
    with pytest.raises(ResidenceConflictError, match="already ended"):
        civil.end_residence("lgsp-019", lan, date(2024, 5, 2), "ref-3")
    with pytest.raises(UnknownCitizenError):
        civil.end_residence("lgsp-019", "008190999999", date(2024, 5, 2), "ref-4")
    extra = store.lookup_many([lan])[lan].model_extra or {}
    assert (extra["residence_status"], extra["residence_ended_on"]) == ("ended", "2024-05-01")


def test_two_replicas_register_in_turn(
    store: PopulationStore, civil: CivilRegistry, backend: Backend
) -> None:
    other = backend.open()
    replicas = [civil, CivilRegistry(other, today=lambda: date(2024, 6, 1))]
    births = [{**BIRTH, "record_id": f"r{n}", "registration_no": f"KS-R{n}"} for n in range(40)]
    answers: list[list[str | None]] = [[], []]

    def register(index: int) -> None:
        for birth in births[index::2] + births:  # its own half, then everything again (replays)
            answers[index].append(civil_helpers_result(replicas[index], birth))

    threads = [threading.Thread(target=register, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    other.close()
    issued = answers[0][:20] + answers[1][:20]
    assert None not in issued and len(set(issued)) == 40  # every birth once, no ID issued twice
    assert answers[0][20:] == answers[1][20:]  # the replays answer the same on either replica
    assert store.count() == 44


def civil_helpers_result(registry: CivilRegistry, birth: dict[str, Any]) -> str | None:
    (result,) = registry.register([birth])
    return result.personal_id


# --- the async methods the NDXP's read routes use ---------------------------------------------------


def test_the_async_methods_answer_as_the_sync_ones(store: PopulationStore) -> None:
    store.load(EVERYONE)
    ids = [c.personal_id for c in EVERYONE] + ["123456789", "052000777", "999999999999", "x"]
    audit = store.audit_log()
    batch = DisclosureBatch("lgsp-019", "health", "async-b", "e", [(DUC.personal_id, ["gender"])], AT)

    async def main() -> tuple[dict[str, Citizen], dict[str, Any]]:
        try:
            many = await store.alookup_many(ids)
            bodies = await store.alookup_json(ids)
            assert await store.alookup_many([]) == {} and await store.alookup_json(["12"]) == {}
            await audit.arecord([Disclosure("lgsp-008", HOA.personal_id, ["x"], "p", "async-r", "e", AT)])
            await audit.arecord([])
            await audit.arecord_batch(batch)
            return many, dict(bodies)
        finally:
            await store.aclose()

    many, bodies = asyncio.run(main())
    assert many == store.lookup_many(ids) and len(many) == 7
    assert bodies == store.lookup_json(ids)
    assert [(e.personal_id, e.fields, e.at) for e in audit.read(request_id="async-r")] == [
        (HOA.personal_id, ["x"], AT)
    ]
    assert [(e.personal_id, e.fields) for e in audit.read(request_id="async-b")] == [
        (DUC.personal_id, ["gender"])
    ]
    assert audit.count() == 2
