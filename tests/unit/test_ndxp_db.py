"""Unit tests of the mock NDXP's storage (population and audit in SQLite) and its pure parts."""

from __future__ import annotations

import json
import logging
import sqlite3
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import ValidationError

from mocks.common.audit import AuditLog, Disclosure
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB, open_population, read_population_file
from mocks.ndxp.disclosure import judge_name
from mocks.ndxp.exceptions import (
    DuplicateCitizenError,
    NdxpError,
    PopulationFileError,
    UnsupportedDatabaseError,
)
from mocks.ndxp.logs import MaskIdsFilter
from mocks.ndxp.middleware import FaultInjector
from mocks.ndxp.sqlite import sqlite_path
from schemas.citizen import Citizen
from schemas.personal_id import consistent_with, make_personal_id

pytestmark = pytest.mark.unit


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
    gender="female", permanent_province="019", ethnicity="Tày", father_id=None,
)  # fmt: skip
TAM = citizen(
    personal_id="052050000777", legacy_id="052000777", full_name="Lê Văn Tám", date_of_birth="1950-01-01",
    status="deceased", date_of_death="2020-01-01", permanent_province="052",
)  # fmt: skip
# The NPD is not perfect: this ID says female born 1990, the citizen is a man born 1985.
ODD = citizen(personal_id="008190000002", legacy_id="987654321", date_of_birth="1985-03-04")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[PopulationDB]:
    database = PopulationDB.create(tmp_path / "npd.sqlite3")
    yield database
    database.close()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- population: load and look up -------------------------------------------------------------


def test_load_counts_and_round_trips_every_field(db: PopulationDB) -> None:
    assert db.load([DUC, HOA, TAM, ODD]) == 4
    assert db.count() == 4
    found = db.lookup_many([DUC.personal_id, TAM.personal_id])
    assert found[DUC.personal_id] == DUC
    assert found[DUC.personal_id].model_extra == {"ethnicity": "Kinh", "father_id": "008060000001"}
    assert found[TAM.personal_id].deceased
    assert found[TAM.personal_id].date_of_death == date(2020, 1, 1)


def test_lookup_many_maps_each_queried_id_of_either_kind(db: PopulationDB) -> None:
    db.load([DUC, HOA, TAM, ODD])
    queried = [DUC.personal_id, "123456789", "052000777", HOA.personal_id, "000000000", "008099999999"]
    found = db.lookup_many(queried)
    assert set(found) == {DUC.personal_id, "123456789", "052000777", HOA.personal_id}
    assert found["123456789"] == DUC
    assert found["052000777"] == TAM


def test_lookup_many_ignores_ids_of_other_shapes(db: PopulationDB) -> None:
    db.load([DUC])
    odd_shapes = [" 008090123456", "08090123456", "٠٠٨٠٩٠١٢٣٤٥٦", "12345678", "", "1234567890"]
    assert db.lookup_many(odd_shapes) == {}
    assert db.lookup_many([]) == {}


def test_lookup_many_of_both_ids_of_one_citizen_and_repeats(db: PopulationDB) -> None:
    db.load([DUC])
    found = db.lookup_many([DUC.personal_id, "123456789", DUC.personal_id])
    assert found == {DUC.personal_id: DUC, "123456789": DUC}


def test_lookup_many_spans_several_query_chunks(db: PopulationDB) -> None:
    people = [
        citizen(personal_id=make_personal_id("008", "female", 1970, n), legacy_id=f"{n:09d}")
        for n in range(2500)
    ]
    db.load(people, batch=700)
    ids = [p.personal_id for p in people[::2]] + [p.legacy_id for p in people[1::2] if p.legacy_id]
    found = db.lookup_many(ids)
    assert len(found) == 2500
    assert all(found[p.personal_id] == p for p in people[::2])


def test_citizen_whose_id_contradicts_gender_and_year_is_kept(db: PopulationDB, tmp_path: Path) -> None:
    assert not consistent_with(ODD.personal_id, ODD.gender, ODD.date_of_birth.year)
    db.load([ODD])
    assert db.lookup_many([ODD.personal_id]) == {ODD.personal_id: ODD}
    path = write_lines(tmp_path / "odd.jsonl", [ODD.model_dump_json()])
    other = PopulationDB.create(tmp_path / "other.sqlite3")
    try:
        assert other.load_file(path) == 1
        assert other.lookup_many(["987654321"])["987654321"] == ODD
    finally:
        other.close()


def test_duplicate_personal_id_loads_nothing(db: PopulationDB) -> None:
    with pytest.raises(DuplicateCitizenError, match=r"citizen #3: personal_id 008\*+56 is already loaded"):
        db.load([DUC, HOA, citizen(full_name="Someone Else")])
    assert db.count() == 0
    db.load([DUC])
    with pytest.raises(DuplicateCitizenError):
        db.load([HOA, DUC])
    assert db.count() == 1


# --- population files -------------------------------------------------------------------------


def test_load_file_reads_contract_lines_skipping_bom_and_blank_lines(
    db: PopulationDB, tmp_path: Path
) -> None:
    path = tmp_path / "population.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + DUC.model_dump_json().encode()
        + b"\n\n   \n"
        + HOA.model_dump_json().encode()
        + b"\n"
    )
    assert db.load_file(path) == 2
    assert db.lookup_many([HOA.personal_id])[HOA.personal_id] == HOA
    assert [c.personal_id for c in read_population_file(path)] == [DUC.personal_id, HOA.personal_id]


def test_minimal_contract_line_gets_defaults(db: PopulationDB, tmp_path: Path) -> None:
    line = {
        "personal_id": "052301234567",
        "full_name": "Phạm Thị Lan",
        "date_of_birth": "2001-07-08",
        "gender": "female",
        "permanent_province": "052",
    }
    db.load_file(write_lines(tmp_path / "p.jsonl", [json.dumps(line, ensure_ascii=False)]))
    got = db.lookup_many(["052301234567"])["052301234567"]
    assert (got.birth_province, got.status, got.legacy_id, got.deceased) == ("052", "alive", None, False)


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ({**DUC.model_dump(mode="json"), "date_of_birth": "1990-02-30"}, "date_of_birth"),
        ({**DUC.model_dump(mode="json"), "personal_id": "08090123456"}, "personal_id"),
        (
            {k: v for k, v in DUC.model_dump(mode="json").items() if k != "full_name"},
            "full_name: Field required",
        ),
        ({**DUC.model_dump(mode="json"), "permanent_province": "099"}, "permanent_province"),
        ("not json at all", "Invalid JSON"),
        ([1, 2, 3], "object"),
    ],
)
def test_bad_line_names_file_line_and_field_and_loads_nothing(
    db: PopulationDB, tmp_path: Path, bad_line: Any, problem: str
) -> None:
    raw = bad_line if isinstance(bad_line, str) else json.dumps(bad_line)
    path = write_lines(tmp_path / "population.jsonl", [HOA.model_dump_json(), "", raw, TAM.model_dump_json()])
    with pytest.raises(PopulationFileError) as info:
        db.load_file(path)
    assert (info.value.path, info.value.line) == (path, 3)
    assert str(info.value).startswith(f"{path}:3: ")
    assert problem in str(info.value)
    assert db.count() == 0
    assert isinstance(info.value, NdxpError)


def test_file_errors_do_not_echo_personal_data(db: PopulationDB, tmp_path: Path) -> None:
    bad = {**DUC.model_dump(mode="json"), "gender": "Nam"}
    path = write_lines(tmp_path / "p.jsonl", [json.dumps(bad, ensure_ascii=False)])
    with pytest.raises(PopulationFileError) as info:
        db.load_file(path)
    assert "gender" in str(info.value)
    assert DUC.personal_id not in str(info.value) and "Đức" not in str(info.value)


def test_duplicate_in_file_names_the_line(db: PopulationDB, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "p.jsonl", [DUC.model_dump_json(), HOA.model_dump_json(), DUC.model_dump_json()]
    )
    with pytest.raises(DuplicateCitizenError, match=r"p\.jsonl:3: personal_id"):
        db.load_file(path)


# --- URLs ---------------------------------------------------------------------------------------


def test_sqlite_urls(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///data/npd.db") == Path("data/npd.db")
    assert sqlite_path("sqlite:////var/npd.db") == Path("/var/npd.db")
    database = open_population(f"sqlite:///{tmp_path}/sub/npd.db")
    try:
        assert database.path == tmp_path / "sub" / "npd.db"
        assert database.count() == 0
    finally:
        database.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secret@db/npd", "write sqlite:///PATH or postgresql://"),
        ("npd.sqlite3", "no scheme"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_other_urls_fail_clearly(url: str, message: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match=message) as info:
        open_population(url)
    assert "secret" not in str(info.value)


# --- audit --------------------------------------------------------------------------------------


def test_audit_records_and_reads_with_filters(db: PopulationDB) -> None:
    audit = AuditLog(db.connections)
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    audit.record(
        [
            Disclosure("lgsp-008", DUC.personal_id, ["full_name", "gender"], "insurance", "r1", "e", at),
            Disclosure("lgsp-008", HOA.personal_id, ["full_name", "gender"], "insurance", "r1", "e", at),
            Disclosure("lgsp-052", TAM.personal_id, ["personal_id"], "labour", "r2", "e", at),
        ]
    )
    audit.record([])
    assert audit.count() == 3
    newest_first = audit.read()
    assert [e.personal_id for e in newest_first] == [TAM.personal_id, HOA.personal_id, DUC.personal_id]
    assert [e.personal_id for e in audit.read(agency="lgsp-008")] == [HOA.personal_id, DUC.personal_id]
    assert [e.agency for e in audit.read(request_id="r2")] == ["lgsp-052"]
    (entry,) = audit.read(personal_id=DUC.personal_id)
    assert (entry.fields, entry.purpose, entry.at) == (["full_name", "gender"], "insurance", at)
    assert len(audit.read(limit=2)) == 2


def test_audit_is_append_only_in_the_database(db: PopulationDB) -> None:
    audit = AuditLog(db.connections)
    audit.record([Disclosure("lgsp-008", DUC.personal_id, ["personal_id"], "p", "r", "e")])
    conn = db.connections.get()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET agency = 'nobody'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit")
    assert audit.count() == 1


# --- settings, faults, names, logs (pure) ------------------------------------------------------


def test_production_refuses_built_in_keys() -> None:
    with pytest.raises(ValidationError, match="built-in development API keys"):
        NdxpSettings(environment="production")
    with pytest.raises(ValidationError, match="built-in development API keys"):
        NdxpSettings(environment="production", api_keys={"lgsp-008": "s3cret-1"})  # auditor keys default
    ok = NdxpSettings(
        environment="production", api_keys={"lgsp-008": "s3cret-1"}, auditor_keys={"c06": "s3cret-2"}
    )
    assert ok.api_keys["lgsp-008"].get_secret_value() == "s3cret-1"
    assert "s3cret" not in repr(ok)


def test_settings_refuse_shared_keys_bad_rates_and_other_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="share an API key"):
        NdxpSettings(api_keys={"a": "k", "b": "k"})
    with pytest.raises(ValidationError, match="error_rate"):
        NdxpSettings(error_rate=1.5)
    with pytest.raises(ValidationError, match="write sqlite:///PATH or postgresql://"):
        NdxpSettings(database_url="mysql://db/npd")
    assert NdxpSettings(database_url="postgresql://npd@db:5432/npd").database_url.startswith("postgresql")
    monkeypatch.setenv("NDXP_API_KEYS", '{"lgsp-019": "from-env"}')
    monkeypatch.setenv("NDXP_ERROR_RATE", "0.25")
    from_env = NdxpSettings()
    assert from_env.api_keys["lgsp-019"].get_secret_value() == "from-env"
    assert from_env.error_rate == 0.25


def test_fault_injector_is_deterministic_for_a_seed() -> None:
    first, second = FaultInjector(0.3, seed=7), FaultInjector(0.3, seed=7)
    a = [first.should_fail() for _ in range(200)]
    b = [second.should_fail() for _ in range(200)]
    assert a == b
    assert 30 < sum(a) < 90 and first.injected == sum(a)
    assert not any(FaultInjector(0.0, seed=1).should_fail() for _ in range(100))
    assert all(FaultInjector(1.0).should_fail() for _ in range(100))


@pytest.mark.parametrize(
    ("claimed", "result"),
    [
        ("Nguyễn Văn Đức", "match"),
        ("  nguyễn   VĂN đức ", "match"),
        (unicodedata.normalize("NFD", "Nguyễn Văn Đức"), "match"),
        (unicodedata.normalize("NFD", "Nguyen Văn Đuc"), "match_without_diacritics"),
        ("Nguyen Van Duc", "match_without_diacritics"),
        ("Nguyễn Văn Dức", "match_without_diacritics"),
        ("Nguyễn Văn Đực", "match_without_diacritics"),
        ("Nguyễn Văn Minh", "mismatch"),
    ],
)
def test_judge_name(claimed: str, result: str) -> None:
    assert judge_name(claimed, "Nguyễn Văn Đức") == result


def test_log_filter_masks_ids_in_message_and_positional_args() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v1/citizens/008090123456?purpose=x", "1.1", 200), None,
    )  # fmt: skip
    assert MaskIdsFilter().filter(record)
    assert record.args is not None and len(record.args) == 5  # uvicorn's formatter unpacks five
    message = record.getMessage()
    assert "008090123456" not in message and "/v1/citizens/008*******56" in message
    plain = logging.LogRecord("mocks.ndxp", logging.INFO, __file__, 1, "legacy 123456789 seen", None, None)
    MaskIdsFilter().filter(plain)
    assert plain.getMessage() == "legacy 123****89 seen"


@pytest.mark.slow
def test_loads_a_province_in_chunks_and_finds_every_citizen(tmp_path: Path) -> None:
    # How fast it loads is the `npd-load` benchmark's business (a ratio there, no time limit here).
    template = citizen(full_name="Nguyễn Thị Minh Khai", father_id=None)

    def people(first: int, count: int) -> list[Citizen]:
        out = []
        for n in range(first, first + count):
            gender: Literal["male", "female"] = "female" if n % 2 else "male"
            year = 1930 + n % 90
            update: dict[str, Any] = {
                "personal_id": make_personal_id("008", gender, year, n),
                "legacy_id": f"{n:09d}" if n % 4 == 0 else None,
                "date_of_birth": date(year, 1 + n % 12, 1 + n % 28),
                "gender": gender,
            }
            out.append(template.model_copy(update=update))
        return out

    database = PopulationDB.create(tmp_path / "big.sqlite3")
    try:
        groups = [people(first, 50_000) for first in range(0, 200_000, 50_000)]
        for group in groups:
            assert database.load(group, batch=7_000) == 50_000  # chunks that do not divide a load evenly
        assert database.count() == 200_000
        sample = [c for group in groups for c in group[::997]]
        found = database.lookup_many([c.personal_id for c in sample])
        expected = {c.personal_id: c.model_dump() for c in sample}
        assert {pid: c.model_dump() for pid, c in found.items()} == expected
    finally:
        database.close()
