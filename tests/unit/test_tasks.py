"""Correction tasks (`streams.tasks`): what goes back to a province for each unsynced outcome."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from schemas.citizen import Citizen
from schemas.outcomes import Outcome
from schemas.records import Record, parse_object
from schemas.rules import Decision, decide
from streams.tasks import NPD_FIELDS, correction_task, task_lookup_key

pytestmark = pytest.mark.unit

AN_ID = "008190000123"  # Tuyên Quang, female, born 1990
AN_LEGACY = "123456789"
AN = Citizen(
    personal_id=AN_ID,
    legacy_id=AN_LEGACY,
    full_name="Nguyễn Thị Ánh",
    date_of_birth=date(1990, 2, 1),
    gender="female",
    permanent_province="008",
)
AN_DEAD = AN.model_copy(update={"status": "deceased", "date_of_death": date(2023, 5, 6)})
AN_MOVED = AN.model_copy(update={"permanent_province": "052"})
BASE: dict[str, Any] = {
    "record_id": "r1",
    "sector": "insurance",
    "province": "008",
    "personal_id": AN_ID,
    "full_name": "Nguyễn Thị Ánh",
    "date_of_birth": "01/02/1990",
    "gender": "Nữ",
    "insurance_code": "0123456789",
    "note": "kept as published",
}
ABSENT: Any = object()
TASK_KEYS = {"record_id", "sector", "province", "outcome", "fields", "npd", "version", "decided_ms", "record"}


def record(**changes: Any) -> Record:
    raw = {**BASE, **changes}
    parsed = parse_object({k: v for k, v in raw.items() if v is not ABSENT})
    assert isinstance(parsed, Record), parsed
    return parsed


def task(rec: Record, decision: Decision, citizen: Citizen | None = AN) -> dict[str, Any]:
    made = correction_task(rec, decision, citizen, version=1, decided_ms=1_700_000_000_000)
    assert made is not None
    return made


# --- correction_task -------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [Outcome.CLEANED, Outcome.CORRECTED, Outcome.REJECTED])
def test_no_task_when_nothing_is_to_be_corrected(outcome: Outcome) -> None:
    assert correction_task(record(), Decision(outcome), AN, version=1, decided_ms=1) is None


def test_no_task_for_records_the_rules_find_synced() -> None:
    cleaned = decide(record(), AN, None)
    corrected = decide(record(personal_id=AN_LEGACY), AN, None)
    assert (cleaned.outcome, corrected.outcome) == (Outcome.CLEANED, Outcome.CORRECTED)
    assert correction_task(record(), cleaned, AN, version=1, decided_ms=1) is None
    assert correction_task(record(personal_id=AN_LEGACY), corrected, AN, version=1, decided_ms=1) is None


def test_a_task_carries_the_record_and_the_decision() -> None:
    rec = record(gender="X")
    decision = decide(rec, None, None)
    made = correction_task(rec, decision, AN, version=3, decided_ms=42)
    assert made is not None
    assert set(made) == TASK_KEYS
    assert made["record_id"] == "r1"
    assert (made["sector"], made["province"]) == ("insurance", "008")
    assert made["outcome"] == "unsynced/missing_fields"
    assert made["fields"] == ["gender"]
    assert (made["version"], made["decided_ms"]) == (3, 42)
    assert made["record"] == {**BASE, "gender": "X"}, "the record as published, unread fields and all"


def test_the_task_holds_a_copy_of_the_raw_record() -> None:
    rec = record(gender="X")
    made = task(rec, decide(rec, None, None))
    made["record"]["gender"] = "female"
    assert rec.raw["gender"] == "X"


@pytest.mark.parametrize(
    ("changes", "fields", "npd"),
    [
        ({"gender": "X"}, ["gender"], {"gender": "female"}),
        ({"gender": ABSENT}, ["gender"], {"gender": "female"}),
        ({"full_name": "   "}, ["full_name"], {"full_name": "Nguyễn Thị Ánh"}),
        ({"date_of_birth": "30/02/1990"}, ["date_of_birth"], {"date_of_birth": "1990-02-01"}),
        ({"insurance_code": "012345678"}, ["insurance_code"], {}),  # the NPD holds no insurance code
        (
            {"date_of_birth": None, "insurance_code": ABSENT},
            ["date_of_birth", "insurance_code"],
            {"date_of_birth": "1990-02-01"},
        ),
        (
            {"full_name": None, "gender": 1, "date_of_birth": ""},
            ["full_name", "date_of_birth", "gender"],
            {"full_name": "Nguyễn Thị Ánh", "date_of_birth": "1990-02-01", "gender": "female"},
        ),
    ],
)
def test_missing_fields_carry_the_npd_values_it_holds(
    changes: dict[str, Any], fields: list[str], npd: dict[str, Any]
) -> None:
    rec = record(**changes)
    decision = decide(rec, None, None)
    assert decision.outcome is Outcome.MISSING_FIELDS
    made = task(rec, decision)
    assert made["fields"] == fields
    assert made["npd"] == npd


def test_a_missing_personal_id_is_named_but_never_carried() -> None:
    # Without an ID there is no citizen to look up; the NPD's ID is not a field a task discloses either.
    rec = record(personal_id=ABSENT)
    decision = decide(rec, None, None)
    assert decision.fields == ("personal_id",)
    assert task(rec, decision)["npd"] == {}
    assert "personal_id" not in NPD_FIELDS


@pytest.mark.parametrize(
    ("changes", "fields", "npd"),
    [
        ({"full_name": "Trần Văn Bình"}, ["full_name"], {"full_name": "Nguyễn Thị Ánh"}),
        ({"date_of_birth": "1990-02-02"}, ["date_of_birth"], {"date_of_birth": "1990-02-01"}),
        ({"gender": "male"}, ["gender"], {"gender": "female"}),
        (
            {"full_name": "Trần Văn Bình", "date_of_birth": "1991-02-01", "gender": "Nam"},
            ["full_name", "date_of_birth", "gender"],
            {"full_name": "Nguyễn Thị Ánh", "date_of_birth": "1990-02-01", "gender": "female"},
        ),
    ],
)
def test_a_mismatch_carries_the_npd_value_of_each_differing_field(
    changes: dict[str, Any], fields: list[str], npd: dict[str, Any]
) -> None:
    rec = record(**changes)
    decision = decide(rec, AN, None)
    assert decision.outcome is Outcome.MISMATCH
    made = task(rec, decision)
    assert made["fields"] == fields
    assert made["npd"] == npd


def test_only_named_fields_the_npd_holds_are_carried() -> None:
    decision = Decision(Outcome.MISMATCH, ("full_name", "insurance_code", "occupation"))
    made = task(record(), decision)
    assert made["fields"] == ["full_name", "insurance_code", "occupation"]
    assert made["npd"] == {"full_name": "Nguyễn Thị Ánh"}


def test_a_deceased_citizen_task_carries_status_and_date_of_death() -> None:
    rec = record()
    decision = decide(rec, AN_DEAD, None)
    assert decision.outcome is Outcome.DECEASED
    made = task(rec, decision, AN_DEAD)
    assert made["fields"] == []
    assert made["npd"] == {"status": "deceased", "date_of_death": "2023-05-06"}


def test_a_deceased_citizen_without_a_date_of_death() -> None:
    dead = AN.model_copy(update={"status": "deceased"})
    assert task(record(), Decision(Outcome.DECEASED), dead)["npd"] == {
        "status": "deceased",
        "date_of_death": None,
    }


def test_a_moved_citizen_task_carries_the_new_province() -> None:
    rec = record(sector="labour", insurance_code=ABSENT)
    decision = decide(rec, AN_MOVED, None)
    assert decision.outcome is Outcome.MOVED
    made = task(rec, decision, AN_MOVED)
    assert made["fields"] == []
    assert made["npd"] == {"permanent_province": "052"}


@pytest.mark.parametrize("outcome", [Outcome.NOT_FOUND, Outcome.MALFORMED_ID, Outcome.DUPLICATE])
def test_an_id_that_is_wrong_unknown_or_repeated_carries_no_npd_values(outcome: Outcome) -> None:
    # Even when a citizen is at hand: the ID itself is what the province must fix.
    made = task(record(), Decision(outcome, ("personal_id",) if outcome is Outcome.MALFORMED_ID else ()))
    assert made["outcome"] == outcome.value
    assert made["npd"] == {}


def test_rules_decisions_for_wrong_ids_give_tasks_without_npd_values() -> None:
    malformed = record(personal_id="0081900001")
    duplicate = record(record_id="r2")
    cases = [
        (malformed, decide(malformed, None, None), Outcome.MALFORMED_ID),
        (record(), decide(record(), None, None), Outcome.NOT_FOUND),
        (duplicate, decide(duplicate, AN, "r1"), Outcome.DUPLICATE),
    ]
    for rec, decision, outcome in cases:
        assert decision.outcome is outcome
        made = task(rec, decision)
        assert (made["outcome"], made["npd"], made["record_id"]) == (outcome.value, {}, rec.record_id)


@pytest.mark.parametrize("outcome", [o for o in Outcome if o.unsynced])
def test_without_a_citizen_every_task_has_an_empty_npd(outcome: Outcome) -> None:
    made = task(record(), Decision(outcome, ("full_name", "gender")), None)
    assert made["outcome"] == outcome.value
    assert made["npd"] == {}
    assert made["fields"] == ["full_name", "gender"]


@pytest.mark.parametrize("outcome", [o for o in Outcome if o.unsynced])
def test_every_task_is_json_with_dates_as_iso_strings(outcome: Outcome) -> None:
    citizen = AN_DEAD if outcome is Outcome.DECEASED else AN
    made = task(record(), Decision(outcome, ("date_of_birth",)), citizen)
    assert json.loads(json.dumps(made, ensure_ascii=False)) == made
    for value in made["npd"].values():
        assert not isinstance(value, date)


def test_every_npd_field_is_read_from_the_citizen() -> None:
    made = task(record(), Decision(Outcome.MISMATCH, NPD_FIELDS), AN_DEAD)
    assert made["npd"] == {
        "full_name": "Nguyễn Thị Ánh",
        "date_of_birth": "1990-02-01",
        "gender": "female",
        "status": "deceased",
        "date_of_death": "2023-05-06",
        "permanent_province": "008",
    }


# --- task_lookup_key -------------------------------------------------------------------------------------


def test_no_lookup_for_a_record_missing_nothing() -> None:
    # Such a record is looked up by the rules themselves (`schemas.rules.lookup_key`).
    assert task_lookup_key(record()) is None


@pytest.mark.parametrize("pid", [ABSENT, None, "", "   ", 8190000123])
def test_no_lookup_when_the_personal_id_is_missing(pid: Any) -> None:
    rec = record(personal_id=pid, gender="X")
    assert "personal_id" in rec.missing
    assert task_lookup_key(rec) is None


@pytest.mark.parametrize("pid", ["0081900001", "008 190 000 123", "00819000012A", "000190000123", "12345678"])
def test_no_lookup_for_a_malformed_id(pid: str) -> None:
    assert task_lookup_key(record(personal_id=pid, gender="X")) is None


@pytest.mark.parametrize(
    ("pid", "key"),
    [(AN_ID, AN_ID), (f"  {AN_ID} ", AN_ID), (AN_LEGACY, AN_LEGACY), (f"{AN_LEGACY}\t", AN_LEGACY)],
)
def test_a_well_formed_id_is_looked_up_when_other_fields_are_missing(pid: str, key: str) -> None:
    assert task_lookup_key(record(personal_id=pid, gender="X")) == key
    assert task_lookup_key(record(personal_id=pid, insurance_code=ABSENT)) == key


def test_a_looked_up_citizen_fills_the_task_of_a_record_missing_fields() -> None:
    rec = record(date_of_birth="1990-2-1")
    npd = {AN_ID: AN}
    key = task_lookup_key(rec)
    assert key is not None
    made = task(rec, decide(rec, None, None), npd.get(key))
    assert made["npd"] == {"date_of_birth": "1990-02-01"}
