"""The NPD's writes (`mocks.ndxp.civil_db`): registrations applied, replayed, all or nothing; residences."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import civil_helpers
import pytest
from civil_helpers import BINH, BIRTH, FATHER, LAN

from mocks.ndxp.civil_db import CivilRegistry, ResidenceConflictError, UnknownCitizenError
from mocks.ndxp.db import PopulationDB
from schemas.citizen import Citizen

pytestmark = pytest.mark.unit

MOTHER = civil_helpers.MOTHER.model_copy(update={"ethnicity": "Kinh"})
DEATH: dict[str, Any] = {**civil_helpers.DEATH, "personal_id": "123456789", "full_name": "Le Van Binh"}
MARRIAGE: dict[str, Any] = {
    **DEATH,
    "record_id": "m1",
    "event": "marriage",
    "event_date": "2023-02-14",
    "registration_no": "KH-2023-003",
    "personal_id": BINH.personal_id,
    "full_name": "Lê Văn Bình",
    "spouse_id": LAN.personal_id,
}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[PopulationDB]:
    population = PopulationDB.create(tmp_path / "npd.sqlite3")
    population.load([FATHER, MOTHER, BINH, LAN])
    try:
        yield population
    finally:
        population.close()


@pytest.fixture
def registry(db: PopulationDB) -> CivilRegistry:
    return CivilRegistry(db)


def citizen(db: PopulationDB, pid: str) -> Citizen:
    return db.lookup_many([pid])[pid]


def rows(db: PopulationDB, table: str) -> list[tuple[Any, ...]]:
    return db.connections.get().execute(f"SELECT * FROM {table}").fetchall()


def test_birth_adds_the_child_and_stores_the_registration(db: PopulationDB, registry: CivilRegistry) -> None:
    (result,) = registry.register([BIRTH])
    assert result.outcome == "cleaned" and not result.replayed
    pid = result.personal_id
    assert pid is not None and pid.startswith("0083")
    child = citizen(db, pid)
    assert child.full_name == "Nguyễn Minh An" and child.permanent_province == "008"
    assert child.model_extra is not None
    assert child.model_extra["residence_status"] == "pending"
    assert child.model_extra["mother_name"] == "Trần Thị Hoa"
    assert db.count() == 5
    ((province, number, record_id, event, outcome, *_),) = rows(db, "civil_registrations")
    assert (province, number, record_id, event, outcome) == ("008", "KS-2024-001", "b1", "birth", "cleaned")
    assert dict(result.touched)[pid][0] == "personal_id"


def test_replay_answers_the_same_and_changes_nothing(db: PopulationDB, registry: CivilRegistry) -> None:
    (first,) = registry.register([BIRTH])
    (again,) = registry.register([BIRTH])
    assert again.replayed
    assert again.public() == {**first.public(), "replayed": True}
    assert db.count() == 5
    assert len(rows(db, "civil_registrations")) == 1
    assert again.touched == ((first.personal_id, ("personal_id",)),)


def test_replay_within_one_request_and_duplicate_by_another_record(
    db: PopulationDB, registry: CivilRegistry
) -> None:
    results = registry.register(
        [BIRTH, BIRTH, {**BIRTH, "record_id": "b2", "registration_no": " KS-2024-001 "}]
    )
    assert [(r.outcome, r.replayed) for r in results] == [
        ("cleaned", False),
        ("cleaned", True),
        ("unsynced/duplicate", False),
    ]
    assert results[2].personal_id is None
    assert db.count() == 5


def test_same_number_in_another_province_is_another_registration(registry: CivilRegistry) -> None:
    a, b = registry.register([BIRTH, {**BIRTH, "record_id": "b2", "province": "019"}])
    assert a.outcome == b.outcome == "cleaned"
    assert a.personal_id != b.personal_id


def test_two_births_never_share_an_id(db: PopulationDB, registry: CivilRegistry) -> None:
    births = [{**BIRTH, "record_id": f"b{n}", "registration_no": f"KS-{n}"} for n in range(50)]
    ids = [r.personal_id for r in registry.register(births)]
    assert len(set(ids)) == 50 and None not in ids
    assert db.count() == 54


def test_issued_id_is_deterministic_across_databases(tmp_path: Path) -> None:
    issued = []
    for name in ("a", "b"):
        population = PopulationDB.create(tmp_path / f"{name}.sqlite3")
        population.load([FATHER, MOTHER])
        issued.append(CivilRegistry(population).register([BIRTH])[0].personal_id)
        population.close()
    assert issued[0] == issued[1]


def test_death_corrected_and_applied(db: PopulationDB, registry: CivilRegistry) -> None:
    (result,) = registry.register([DEATH])
    assert result.outcome == "corrected"
    assert result.corrections == {"personal_id": BINH.personal_id, "full_name": "Lê Văn Bình"}
    assert result.personal_id == BINH.personal_id
    dead = citizen(db, BINH.personal_id)
    assert dead.deceased and dead.status == "deceased" and dead.date_of_death == date(2024, 1, 15)
    assert dead.legacy_id == "123456789"  # the rest of the row is kept
    # A second death registration of the same person (another number) finds them deceased.
    (again,) = registry.register([{**DEATH, "record_id": "d2", "registration_no": "KT-2"}])
    assert (again.outcome, again.personal_id) == ("unsynced/deceased", None)


def test_marriage_updates_both(db: PopulationDB, registry: CivilRegistry) -> None:
    (result,) = registry.register([MARRIAGE])
    assert (result.outcome, result.personal_id, result.spouse_personal_id) == (
        "cleaned",
        BINH.personal_id,
        LAN.personal_id,
    )
    binh, lan = citizen(db, BINH.personal_id), citizen(db, LAN.personal_id)
    assert binh.model_extra == {
        "marital_status": "married",
        "spouse_id": LAN.personal_id,
        "spouse_name": LAN.full_name,
    }
    assert lan.model_extra == {
        "marital_status": "married",
        "spouse_id": BINH.personal_id,
        "spouse_name": BINH.full_name,
    }
    assert sorted(pid for pid, _ in result.touched) == sorted([BINH.personal_id, LAN.personal_id])


def test_records_see_the_changes_of_earlier_ones_in_the_request(registry: CivilRegistry) -> None:
    # Married, then dead: the second marriage of the widow's husband is refused (deceased).
    results = registry.register([MARRIAGE, DEATH, {**MARRIAGE, "record_id": "m2", "registration_no": "KH-9"}])
    assert [r.outcome for r in results] == ["cleaned", "corrected", "unsynced/deceased"]


def test_unsynced_stores_nothing_and_a_corrected_republication_is_decided_afresh(
    db: PopulationDB, registry: CivilRegistry
) -> None:
    (bad,) = registry.register([{**DEATH, "gender": "female"}])
    assert (bad.outcome, bad.fields) == ("unsynced/mismatch", ("gender",))
    assert rows(db, "civil_registrations") == [] and not citizen(db, BINH.personal_id).deceased
    (good,) = registry.register([DEATH])
    assert good.outcome == "corrected" and not good.replayed


def test_rejected_and_other_sector_items_do_not_stop_the_batch(registry: CivilRegistry) -> None:
    results = registry.register([[1], {**DEATH, "province": "999"}, {**DEATH, "sector": "labour"}, BIRTH])
    assert [r.outcome for r in results] == ["rejected", "rejected", "rejected", "cleaned"]
    assert results[0].detail == "not a JSON object (got a JSON array)"
    assert results[1].record_id == "d1" and "province" in (results[1].detail or "")
    assert "civil_status records only" in (results[2].detail or "")


def test_all_or_nothing(db: PopulationDB, registry: CivilRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    original = registry._register_one
    calls = 0

    def failing(conn: sqlite3.Connection, obj: object) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return original(conn, obj)

    monkeypatch.setattr(registry, "_register_one", failing)
    with pytest.raises(sqlite3.OperationalError):
        registry.register([BIRTH, MARRIAGE, DEATH])
    assert db.count() == 4
    assert rows(db, "civil_registrations") == []
    assert "marital_status" not in (citizen(db, BINH.personal_id).model_extra or {})
    monkeypatch.undo()
    assert [r.replayed for r in registry.register([BIRTH, MARRIAGE, DEATH])] == [False, False, False]


# ---------------------------------------------------------------- residence


def test_register_residence_and_replay(db: PopulationDB, registry: CivilRegistry) -> None:
    (birth,) = registry.register([BIRTH])
    assert birth.personal_id is not None
    change = registry.register_residence("lgsp-008", birth.personal_id, "019", date(2024, 3, 20), "ref-1")
    assert (change.residence_status, change.replayed) == ("registered", False)
    child = citizen(db, birth.personal_id)
    assert child.permanent_province == "019"
    assert child.model_extra is not None and child.model_extra["residence_status"] == "registered"
    again = registry.register_residence("lgsp-008", birth.personal_id, "019", date(2024, 3, 20), "ref-1")
    assert again.replayed and again.touched == ("personal_id",)
    # The same reference of another agency is another change.
    assert not registry.register_residence(
        "lgsp-052", birth.personal_id, "019", date(2024, 3, 20), "ref-1"
    ).replayed


def test_reference_reused_for_another_change_is_a_conflict(registry: CivilRegistry) -> None:
    registry.register_residence("a", LAN.personal_id, "019", date(2024, 1, 1), "r")
    with pytest.raises(ResidenceConflictError, match="already used"):
        registry.register_residence("a", LAN.personal_id, "008", date(2024, 1, 1), "r")
    with pytest.raises(ResidenceConflictError, match="already used"):
        registry.end_residence("a", LAN.personal_id, date(2024, 1, 1), "r")


def test_residence_of_unknown_citizen(registry: CivilRegistry) -> None:
    with pytest.raises(UnknownCitizenError):
        registry.register_residence("a", "008190999999", "008", date(2024, 1, 1), "r")
    with pytest.raises(UnknownCitizenError):
        registry.end_residence("a", "008190999999", date(2024, 1, 1), "r")


def test_deceased_cannot_register_but_deregisters(db: PopulationDB, registry: CivilRegistry) -> None:
    registry.register([DEATH])
    with pytest.raises(ResidenceConflictError, match="deceased") as refused:
        registry.register_residence("a", BINH.personal_id, "052", date(2024, 2, 1), "r1")
    assert refused.value.disclosed == ("status",)
    change = registry.end_residence("a", BINH.personal_id, date(2024, 1, 15), "r2")
    assert (change.residence_status, change.replayed) == ("ended", False)
    extra = citizen(db, BINH.personal_id).model_extra or {}
    assert (extra["residence_status"], extra["residence_ended_on"]) == ("ended", "2024-01-15")
    assert registry.end_residence("a", BINH.personal_id, date(2024, 1, 15), "r2").replayed
    with pytest.raises(ResidenceConflictError, match="already ended on 2024-01-15"):
        registry.end_residence("a", BINH.personal_id, date(2024, 1, 16), "r3")


def test_living_citizen_may_deregister_and_register_again(db: PopulationDB, registry: CivilRegistry) -> None:
    registry.end_residence("a", LAN.personal_id, date(2024, 1, 1), "out")
    registry.register_residence("a", LAN.personal_id, "001", date(2024, 6, 1), "in")
    extra = citizen(db, LAN.personal_id).model_extra or {}
    assert extra["residence_status"] == "registered" and "residence_ended_on" not in extra


def test_residence_dates_before_birth_are_conflicts(registry: CivilRegistry) -> None:
    with pytest.raises(ResidenceConflictError, match="before the citizen's birth date"):
        registry.register_residence("a", LAN.personal_id, "019", date(1992, 7, 7), "r1")
    with pytest.raises(ResidenceConflictError, match="before the citizen's birth date"):
        registry.end_residence("a", LAN.personal_id, date(1992, 7, 7), "r2")


def test_a_refused_residence_change_changes_nothing(db: PopulationDB, registry: CivilRegistry) -> None:
    with pytest.raises(ResidenceConflictError):
        registry.end_residence("a", LAN.personal_id, date(1990, 1, 1), "r")
    assert rows(db, "residence_changes") == []
    # The reference is still free.
    assert not registry.end_residence("a", LAN.personal_id, date(2024, 1, 1), "r").replayed
