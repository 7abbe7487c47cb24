"""The outcome rules 2–12 (`schemas.rules.decide`): every rule, every precedence, every reading.

Civil-status records are decided by `schemas.civil.decide_civil` (tests/unit/test_civil_rules.py);
`decide` refuses them, so the sectors here are insurance and labour.
"""

from __future__ import annotations

import itertools
import json
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import pytest

from schemas.citizen import Citizen
from schemas.outcomes import RECORD_OUTCOMES, Outcome
from schemas.personal_id import make_personal_id
from schemas.provinces import PROVINCES
from schemas.records import REQUIRED_FIELDS, Record, parse_object
from schemas.rules import Decision, decide, holder_key, lookup_key

pytestmark = pytest.mark.unit

Gender = Literal["male", "female"]
GENDERS: tuple[Gender, ...] = ("male", "female")

ABSENT: Any = object()  # as a field value: leave the key out of the record

AN_ID = "008190000123"  # Tuyên Quang, female, born 1990
AN_LEGACY = "123456789"
AN_NAME = "Nguyễn Thị Ánh"
AN: dict[str, Any] = {
    "personal_id": AN_ID,
    "legacy_id": AN_LEGACY,
    "full_name": AN_NAME,
    "date_of_birth": date(1990, 2, 1),
    "gender": "female",
    "permanent_province": "008",
}
BASE: dict[str, Any] = {
    "record_id": "r1",
    "province": "008",
    "personal_id": AN_ID,
    "full_name": AN_NAME,
    "date_of_birth": "1990-02-01",
    "gender": "female",
}
EXTRAS: dict[str, dict[str, Any]] = {
    "insurance": {"insurance_code": "0123456789"},
    "labour": {"occupation": "nông dân"},
}
SECTORS = ("insurance", "labour")
POST_IDENTITY = {
    Outcome.DUPLICATE,
    Outcome.DECEASED,
    Outcome.MOVED,
    Outcome.MISMATCH,
    Outcome.CORRECTED,
    Outcome.CLEANED,
}


def citizen(**changes: Any) -> Citizen:
    return Citizen(**(AN | changes))


def rec(sector: str = "insurance", **changes: Any) -> Record:
    obj = {**BASE, "sector": sector, **EXTRAS[sector]}
    for key, value in changes.items():
        if value is ABSENT:
            obj.pop(key, None)
        else:
            obj[key] = value
    parsed = parse_object(obj)
    assert isinstance(parsed, Record), parsed
    return parsed


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


CLEANED = Decision(Outcome.CLEANED, passed_identity=True)
MALFORMED = Decision(Outcome.MALFORMED_ID, ())  # fields list only mismatching or missing fields
NOT_FOUND = Decision(Outcome.NOT_FOUND)
DUPLICATE = Decision(Outcome.DUPLICATE, passed_identity=True)
DECEASED = Decision(Outcome.DECEASED, passed_identity=True)
MOVED = Decision(Outcome.MOVED, passed_identity=True)


def missing(*fields: str) -> Decision:
    return Decision(Outcome.MISSING_FIELDS, fields)


def mismatch(*fields: str) -> Decision:
    return Decision(Outcome.MISMATCH, fields, passed_identity=True)


def corrected(**corrections: str) -> Decision:
    return Decision(Outcome.CORRECTED, passed_identity=True, corrections=corrections)


# ---------------------------------------------------------------- rule 12 and the harmless normalisations


@pytest.mark.parametrize("sector", SECTORS)
def test_an_exact_record_is_cleaned_in_every_sector(sector: str) -> None:
    assert decide(rec(sector), citizen(), None) == CLEANED


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"full_name": nfd(AN_NAME)}, id="name-nfd"),
        pytest.param({"full_name": "NGUYỄN THỊ ÁNH"}, id="name-upper"),
        pytest.param({"full_name": "nguyễn thị ánh"}, id="name-lower"),
        pytest.param({"full_name": "  Nguyễn   Thị \t Ánh  "}, id="name-spaces"),
        pytest.param({"full_name": "Nguyễn\u00a0Thị\u3000Ánh"}, id="name-nbsp-ideographic-space"),
        pytest.param({"full_name": nfd("  NGUYỄN  thị ÁNH ")}, id="name-nfd-case-spaces"),
        pytest.param({"date_of_birth": "01/02/1990"}, id="date-dd-mm-yyyy"),
        pytest.param({"date_of_birth": " 1990-02-01 "}, id="date-padded"),
        pytest.param({"gender": "Nữ"}, id="gender-nu"),
        pytest.param({"gender": "NỮ"}, id="gender-nu-upper"),
        pytest.param({"gender": nfd(" nữ ")}, id="gender-nu-nfd-padded"),
        pytest.param({"gender": "FEMALE"}, id="gender-female-upper"),
        pytest.param({"personal_id": f"  {AN_ID} "}, id="id-spaces"),
        pytest.param({"personal_id": f"\t{AN_ID}\n"}, id="id-tab-newline"),
        pytest.param({"insurance_code": " 0123456789 "}, id="insurance-code-padded"),
    ],
)
def test_harmless_differences_are_cleaned_not_corrected(changes: dict[str, Any]) -> None:
    assert decide(rec(**changes), citizen(), None) == CLEANED


def test_male_citizen_written_nam_is_cleaned() -> None:
    binh = citizen(personal_id="008090000456", gender="male", full_name="Trần Văn Bình")
    for word in ("male", "Nam", "NAM", " nam ", "Male"):
        record = rec(personal_id="008090000456", gender=word, full_name="trần văn bình")
        assert decide(record, binh, None) == CLEANED, word


def test_born_2000s_citizen_is_cleaned() -> None:
    # G digit 3: female born 2000–2099.
    pid = make_personal_id("052", "female", 2005, 42)
    assert pid[3] == "3"
    npd = citizen(personal_id=pid, date_of_birth=date(2005, 12, 31))
    assert decide(rec(personal_id=pid, date_of_birth="31/12/2005"), npd, None) == CLEANED


def test_labour_cleaned_when_born_elsewhere_but_living_in_the_province() -> None:
    # The ID's province is the birth registration place; rule 9 compares the permanent residence only.
    pid = make_personal_id("001", "female", 1990, 7)
    npd = citizen(personal_id=pid, permanent_province="008")
    assert decide(rec("labour", personal_id=pid), npd, None) == CLEANED


# ---------------------------------------------------------------- rule 11 corrected


@pytest.mark.parametrize(
    ("name", "npd_name"),
    [
        pytest.param("Nguyen Thi Anh", AN_NAME, id="no-diacritics"),
        pytest.param("NGUYEN THI ANH", AN_NAME, id="no-diacritics-upper"),
        pytest.param("  nguyen  thi   anh ", AN_NAME, id="no-diacritics-spaces"),
        pytest.param("Nguyên Thi Ânh", AN_NAME, id="wrong-diacritics"),
        pytest.param("Dang Duc", "Đặng Đức", id="d-stroke-upper-and-lower"),
        pytest.param("dang duc", "Đặng Đức", id="d-stroke-lowercase"),
        pytest.param("Đặng Đức", "Dang Duc", id="npd-without-diacritics"),
        pytest.param("Nguyễn Thi Ánh", AN_NAME, id="one-diacritic-dropped"),
    ],
)
def test_name_matching_only_without_diacritics_is_corrected(name: str, npd_name: str) -> None:
    assert decide(rec(full_name=name), citizen(full_name=npd_name), None) == corrected(full_name=npd_name)


@pytest.mark.parametrize("legacy", [AN_LEGACY, f" {AN_LEGACY}  "], ids=["legacy", "legacy-padded"])
def test_legacy_id_is_corrected_to_the_12_digit_id(legacy: str) -> None:
    assert decide(rec(personal_id=legacy), citizen(), None) == corrected(personal_id=AN_ID)


def test_legacy_id_and_dropped_diacritics_give_both_corrections() -> None:
    decision = decide(rec(personal_id=AN_LEGACY, full_name="Nguyen Thi Anh"), citizen(), None)
    assert decision == corrected(personal_id=AN_ID, full_name=AN_NAME)


def test_legacy_id_with_harmless_name_difference_corrects_only_the_id() -> None:
    decision = decide(rec(personal_id=AN_LEGACY, full_name=nfd("NGUYỄN THỊ ÁNH")), citizen(), None)
    assert decision == corrected(personal_id=AN_ID)


# ---------------------------------------------------------------- rule 10 mismatch


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        pytest.param({"full_name": "Trần Thị Ánh"}, ("full_name",), id="other-surname"),
        pytest.param({"full_name": "Nguyễn Ánh"}, ("full_name",), id="middle-name-dropped"),
        pytest.param({"full_name": "Ánh Thị Nguyễn"}, ("full_name",), id="word-order"),
        pytest.param({"full_name": "NguyễnThịÁnh"}, ("full_name",), id="spaces-removed"),
        pytest.param({"date_of_birth": "1990-02-02"}, ("date_of_birth",), id="day"),
        pytest.param({"date_of_birth": "02/01/1990"}, ("date_of_birth",), id="day-month-swapped"),
        pytest.param({"gender": "Nam"}, ("gender",), id="gender"),
        pytest.param(
            {"full_name": "Lê Văn Tám", "date_of_birth": "1990-03-01", "gender": "male"},
            ("full_name", "date_of_birth", "gender"),
            id="all-three-in-order",
        ),
        pytest.param(
            {"full_name": "Nguyen Thi Anh", "date_of_birth": "1990-02-03"},
            ("date_of_birth",),
            id="diacritics-only-name-is-not-listed",
        ),
        pytest.param(
            {"full_name": "Trần Thị Ánh", "gender": "male"}, ("full_name", "gender"), id="name-gender"
        ),
    ],
)
def test_mismatch_names_the_differing_fields_in_order(
    changes: dict[str, Any], fields: tuple[str, ...]
) -> None:
    assert decide(rec(**changes), citizen(), None) == mismatch(*fields)


def test_record_birth_year_contradicting_the_id_is_mismatch_when_the_npd_agrees_with_the_id() -> None:
    # Rule 6 checks the NPD's own gender/year against the ID, not the record's: the sector is wrong here.
    assert decide(rec(date_of_birth="1991-02-01"), citizen(), None) == mismatch("date_of_birth")


def test_mismatch_beats_corrected_for_a_legacy_id() -> None:
    decision = decide(rec(personal_id=AN_LEGACY, date_of_birth="1990-02-02"), citizen(), None)
    assert decision == mismatch("date_of_birth")


# ---------------------------------------------------------------- rule 9 moved, rule 8 deceased


def test_labour_citizen_who_moved_is_moved() -> None:
    assert decide(rec("labour"), citizen(permanent_province="019"), None) == MOVED


@pytest.mark.parametrize("sector", [s for s in SECTORS if s != "labour"])
def test_moved_applies_to_labour_only(sector: str) -> None:
    assert decide(rec(sector), citizen(permanent_province="019"), None) == CLEANED


def test_moved_beats_mismatch_and_corrected() -> None:
    record = rec("labour", personal_id=AN_LEGACY, full_name="Trần Văn Bình", gender="male")
    assert decide(record, citizen(permanent_province="019"), None) == MOVED


def test_insurance_mismatch_is_not_hidden_by_a_move() -> None:
    record = rec("insurance", full_name="Trần Văn Bình")
    assert decide(record, citizen(permanent_province="019"), None) == mismatch("full_name")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"status": "deceased"}, id="status"),
        pytest.param({"date_of_death": date(2023, 1, 2)}, id="date-of-death-while-status-alive"),
        pytest.param({"status": "deceased", "date_of_death": date(2023, 1, 2)}, id="both"),
    ],
)
@pytest.mark.parametrize("sector", SECTORS)
def test_deceased_citizen_is_deceased(sector: str, changes: dict[str, Any]) -> None:
    assert decide(rec(sector), citizen(**changes), None) == DECEASED


def test_deceased_beats_moved_mismatch_and_corrected() -> None:
    record = rec("labour", personal_id=AN_LEGACY, full_name="Trần Văn Bình", date_of_birth="1990-02-03")
    assert decide(record, citizen(status="deceased", permanent_province="019"), None) == DECEASED


# ---------------------------------------------------------------- rule 7 duplicate


def test_a_later_record_with_the_same_id_is_duplicate() -> None:
    assert decide(rec(record_id="r2"), citizen(), "r1") == DUPLICATE


def test_re_deciding_the_first_holder_is_not_duplicate() -> None:
    # At-least-once delivery: the first holder processed again after a crash stays first.
    assert decide(rec(record_id="r1"), citizen(), "r1") == CLEANED


def test_duplicate_beats_deceased_moved_mismatch_and_corrected() -> None:
    record = rec("labour", record_id="r9", personal_id=AN_LEGACY, full_name="Lê Văn Tám")
    assert decide(record, citizen(status="deceased", permanent_province="019"), "r1") == DUPLICATE


def test_not_found_beats_duplicate() -> None:
    assert decide(rec(record_id="r2"), None, "r1") == NOT_FOUND


def test_missing_and_malformed_beat_duplicate() -> None:
    assert decide(rec(record_id="r2", gender="M"), citizen(), "r1") == missing("gender")
    assert decide(rec(record_id="r2", personal_id="00819000012"), citizen(), "r1") == MALFORMED


def test_holder_key_is_source_and_trimmed_id_as_carried() -> None:
    assert holder_key(rec(personal_id=f" {AN_ID} ")) == ("insurance", "008", AN_ID)
    assert holder_key(rec(personal_id=AN_LEGACY)) == ("insurance", "008", AN_LEGACY)
    assert holder_key(rec("labour", province="019")) == ("labour", "019", AN_ID)
    assert holder_key(rec(personal_id=ABSENT)) is None


class Source:
    """The caller's protocol as `schemas.rules` documents it, over an in-memory NPD and holder table."""

    def __init__(self, *citizens: Citizen) -> None:
        self.npd: dict[str, Citizen] = {}
        for c in citizens:
            self.npd[c.personal_id] = c
            if c.legacy_id:
                self.npd[c.legacy_id] = c
        self.holders: dict[tuple[str, str, str], str] = {}

    def process(self, record: Record) -> Outcome:
        key = lookup_key(record)
        found = self.npd.get(key) if key else None
        hkey = holder_key(record)
        first = self.holders.get(hkey) if hkey else None
        decision = decide(record, found, first)
        if decision.passed_identity and first is None and hkey:
            self.holders[hkey] = record.record_id
        return decision.outcome


def test_a_record_that_failed_rule_2_does_not_become_first_holder() -> None:
    source = Source(citizen())
    outcomes = [
        source.process(rec(record_id="r1", full_name="   ")),
        source.process(rec(record_id="r2")),
        source.process(rec(record_id="r3")),
    ]
    assert outcomes == [Outcome.MISSING_FIELDS, Outcome.CLEANED, Outcome.DUPLICATE]


def test_a_record_that_failed_rule_6_does_not_become_first_holder() -> None:
    source = Source(citizen(gender="male"))  # NPD contradicts its own ID
    first = source.process(rec(record_id="r1", gender="male"))
    assert first is Outcome.MALFORMED_ID
    assert source.holders == {}


@pytest.mark.parametrize(
    ("first_npd", "first_outcome"),
    [
        pytest.param({"status": "deceased"}, Outcome.DECEASED, id="deceased-first"),
        pytest.param({"full_name": "Lê Văn Tám"}, Outcome.MISMATCH, id="mismatch-first"),
    ],
)
def test_any_record_past_step_6_becomes_first_holder(
    first_npd: dict[str, Any], first_outcome: Outcome
) -> None:
    source = Source(citizen(**first_npd))
    outcomes = [source.process(rec(record_id="r1")), source.process(rec(record_id="r2"))]
    assert outcomes == [first_outcome, Outcome.DUPLICATE]


def test_replaying_a_source_keeps_the_first_holder_first() -> None:
    source = Source(citizen())
    records = [rec(record_id="r1"), rec(record_id="r2")]
    first_pass = [source.process(r) for r in records]
    replay = [source.process(r) for r in records]
    assert first_pass == replay == [Outcome.CLEANED, Outcome.DUPLICATE]


def test_legacy_and_12_digit_id_of_the_same_person_are_not_duplicates() -> None:
    source = Source(citizen())
    outcomes = [
        source.process(rec(record_id="r1", personal_id=AN_LEGACY)),
        source.process(rec(record_id="r2", personal_id=AN_ID)),
        source.process(rec(record_id="r3", personal_id=f" {AN_LEGACY} ")),
        source.process(rec(record_id="r4", personal_id=f"{AN_ID}\t")),
    ]
    assert outcomes == [Outcome.CORRECTED, Outcome.CLEANED, Outcome.DUPLICATE, Outcome.DUPLICATE]


def test_same_id_in_other_sources_is_not_duplicate() -> None:
    source = Source(citizen())
    outcomes = [
        source.process(rec("insurance", record_id="r1")),
        source.process(rec("labour", record_id="r1")),
        source.process(rec("insurance", record_id="r2", province="019")),
        source.process(rec("insurance", record_id="r1", province="052")),
    ]
    assert outcomes == [Outcome.CLEANED] * 4


# ---------------------------------------------------------------- rule 6 malformed by contradiction


@pytest.mark.parametrize(
    "npd",
    [
        pytest.param({"gender": "male"}, id="gender"),
        pytest.param({"date_of_birth": date(1991, 2, 1)}, id="year"),
        pytest.param({"date_of_birth": date(2090, 2, 1)}, id="century"),
        pytest.param({"date_of_birth": date(1890, 2, 1)}, id="century-before"),
    ],
)
def test_npd_contradicting_the_id_is_malformed(npd: dict[str, Any]) -> None:
    record = rec(
        gender=npd.get("gender", "female"),
        date_of_birth=npd.get("date_of_birth", date(1990, 2, 1)).isoformat(),
    )
    assert decide(record, citizen(**npd), None) == MALFORMED


def test_npd_contradicting_the_id_is_malformed_even_when_the_record_agrees_with_the_id() -> None:
    # Rule 6 (malformed) comes before rule 10 (mismatch): the ID itself needs re-issue.
    assert decide(rec(), citizen(date_of_birth=date(1991, 2, 1)), None) == MALFORMED


def test_legacy_id_checks_the_12_digit_id_it_maps_to() -> None:
    bad_id = make_personal_id("008", "male", 1990, 123)  # the NPD's ID says male, its holder is female
    assert decide(rec(personal_id=AN_LEGACY), citizen(personal_id=bad_id), None) == MALFORMED
    assert decide(rec(personal_id=AN_LEGACY), citizen(), None) == corrected(personal_id=AN_ID)


def test_rule_6_beats_duplicate_deceased_moved_and_mismatch() -> None:
    npd = citizen(gender="male", status="deceased", permanent_province="019")
    record = rec("labour", record_id="r2", gender="male", full_name="Lê Văn Tám")
    assert decide(record, npd, "r1") == MALFORMED


# ---------------------------------------------------------------- rules 3–5


@pytest.mark.parametrize(
    "pid",
    [
        pytest.param("00819000012", id="11-digits"),
        pytest.param("0081900001234", id="13-digits"),
        pytest.param("0081900001", id="10-digits"),
        pytest.param("12345678", id="8-digits"),
        pytest.param("000190000123", id="province-000"),
        pytest.param("003190000123", id="province-003-unused"),
        pytest.param("097190000123", id="province-097"),
        pytest.param("008 190000123", id="inner-space"),
        pytest.param("008-190-000123", id="dashes"),
        pytest.param("00819000012A", id="letter"),
        pytest.param("٠٠٨١٩٠٠٠٠١٢٣", id="arabic-indic-digits"),
        pytest.param("００８１９００００１２３", id="full-width-digits"),
        pytest.param("１２３４５６７８９", id="full-width-legacy"),
        pytest.param("12345678٩", id="legacy-with-arabic-digit"),
        pytest.param(AN_ID + "\u200b", id="zero-width-space"),
        pytest.param("+12345678", id="sign"),
        pytest.param("x", id="text"),
    ],
)
def test_malformed_id_shape(pid: str) -> None:
    record = rec(personal_id=pid)
    assert lookup_key(record) is None
    # Malformed by shape beats not found, whatever the caller passes.
    assert decide(record, None, None) == MALFORMED
    assert decide(record, citizen(), "r0") == MALFORMED


@pytest.mark.parametrize("pid", [AN_ID, AN_LEGACY], ids=["12-digit", "legacy"])
def test_id_not_in_the_npd_is_not_found(pid: str) -> None:
    record = rec(personal_id=f" {pid} ")
    assert lookup_key(record) == pid
    assert decide(record, None, None) == NOT_FOUND


# ---------------------------------------------------------------- rule 2 missing fields


@pytest.mark.parametrize("sector", SECTORS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(ABSENT, id="absent"),
        pytest.param(None, id="null"),
        pytest.param("", id="empty"),
        pytest.param(" \t ", id="blank"),
        pytest.param(12, id="number"),
        pytest.param(["x"], id="list"),
        pytest.param({"v": 1}, id="object"),
        pytest.param(True, id="bool"),
    ],
)
def test_each_required_field_absent_or_wrong_type_is_missing(sector: str, value: Any) -> None:
    for field in REQUIRED_FIELDS[sector]:
        record = rec(sector, **{field: value})
        assert decide(record, citizen(), None) == missing(field), field
        assert lookup_key(record) is None


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        pytest.param({"date_of_birth": "2023-02-29"}, ("date_of_birth",), id="feb-29-non-leap"),
        pytest.param({"date_of_birth": "1/2/1990"}, ("date_of_birth",), id="unpadded"),
        pytest.param({"date_of_birth": "1990-2-1"}, ("date_of_birth",), id="unpadded-iso"),
        pytest.param({"date_of_birth": "31/04/1990"}, ("date_of_birth",), id="april-31"),
        pytest.param({"date_of_birth": "1990/02/01"}, ("date_of_birth",), id="slashes-iso-order"),
        pytest.param({"date_of_birth": "1990-02-01T00:00:00"}, ("date_of_birth",), id="datetime"),
        pytest.param({"date_of_birth": "１９９０-02-01"}, ("date_of_birth",), id="full-width-year"),
        pytest.param({"date_of_birth": 19900201}, ("date_of_birth",), id="number"),
        pytest.param({"gender": "M"}, ("gender",), id="gender-M"),
        pytest.param({"gender": "nu"}, ("gender",), id="gender-nu-no-diacritic"),
        pytest.param({"gender": "other"}, ("gender",), id="gender-other"),
        pytest.param({"insurance_code": "012345678"}, ("insurance_code",), id="insurance-9-digits"),
        pytest.param({"insurance_code": "01234 56789"}, ("insurance_code",), id="insurance-inner-space"),
        pytest.param(
            {"insurance_code": "０１２３４５６７８９"}, ("insurance_code",), id="insurance-full-width"
        ),
        pytest.param({"insurance_code": 123456789}, ("insurance_code",), id="insurance-number"),
        pytest.param(
            {"personal_id": ABSENT, "gender": "F", "insurance_code": None, "full_name": ""},
            ("personal_id", "full_name", "gender", "insurance_code"),
            id="several-in-required-order",
        ),
    ],
)
def test_unreadable_required_field_is_missing(changes: dict[str, Any], fields: tuple[str, ...]) -> None:
    assert decide(rec(**changes), citizen(), None) == missing(*fields)


def test_optional_fields_are_not_required() -> None:
    assert decide(rec("labour", occupation=ABSENT, employment_status=None), citizen(), None) == CLEANED
    # Fields of another sector's records are not required either.
    assert decide(rec("labour", insurance_code="x", event="divorce"), citizen(), None) == CLEANED


# ---------------------------------------------------------------- civil_status: not decided here


CIVIL: dict[str, Any] = {
    **BASE,
    "sector": "civil_status",
    "event": "death",
    "event_date": "2023-05-06",
    "registration_no": "HT-2023-001",
}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="death"),
        pytest.param({"event": "marriage", "spouse_id": "052090123456"}, id="marriage"),
        pytest.param({"event": "birth", "personal_id": ABSENT}, id="birth"),
        pytest.param({"event": "divorce", "full_name": " "}, id="missing-fields"),
        pytest.param({"personal_id": "abc"}, id="malformed-id"),
    ],
)
def test_decide_refuses_civil_status_records(changes: dict[str, Any]) -> None:
    # Civil-status events change the NPD: schemas.civil.decide_civil decides them, whatever they hold.
    obj = {k: v for k, v in (CIVIL | changes).items() if v is not ABSENT}
    record = parse_object(obj)
    assert isinstance(record, Record) and record.sector == "civil_status"
    for npd, first in ((citizen(), None), (None, None), (citizen(), "r0")):
        with pytest.raises(ValueError, match=r"civil_status record.*schemas\.civil\.decide_civil"):
            decide(record, npd, first)


def test_missing_beats_malformed_and_everything_after() -> None:
    record = rec("labour", record_id="r2", personal_id="abc", full_name=None)
    assert decide(record, citizen(status="deceased", permanent_province="019"), "r1") == missing("full_name")
    record = rec("labour", record_id="r2", date_of_birth="2023-02-29")
    assert decide(record, citizen(gender="male", status="deceased"), "r1") == missing("date_of_birth")


def test_hand_built_record_with_a_none_field_not_listed_is_still_missing() -> None:
    # decide() is total even when a caller builds a Record by hand and forgets `missing`.
    record = Record("r1", "labour", "008", AN_ID, None, date(1990, 2, 1), "female", (), {})
    assert decide(record, citizen(), None) == missing("full_name")
    assert lookup_key(record) is None


# ---------------------------------------------------------------- Decision


def test_decision_to_dict_is_json_ready_and_round_trips() -> None:
    decision = corrected(personal_id=AN_ID, full_name=AN_NAME)
    data = decision.to_dict()
    assert data == {
        "outcome": "corrected",
        "fields": [],
        "passed_identity": True,
        "corrections": {"personal_id": AN_ID, "full_name": AN_NAME},
    }
    assert Decision.from_dict(json.loads(json.dumps(data))) == decision
    assert missing("full_name", "gender").to_dict()["fields"] == ["full_name", "gender"]
    assert Decision(Outcome.NOT_FOUND).to_dict()["outcome"] == "unsynced/not_found"


# ---------------------------------------------------------------- precedence, generated
# Each defect makes exactly one rule apply; combined, the first in rule order must win.

DEFECTS = (
    "missing",  # rule 2
    "bad_shape",  # rule 3
    "not_found",  # rules 4/5
    "contradicts",  # rule 6
    "duplicate",  # rule 7
    "deceased",  # rule 8
    "moved",  # rule 9 (labour only)
    "mismatch",  # rule 10
    "no_diacritics",  # rule 11
    "legacy",  # rule 11
)
NAMES = (
    "Nguyễn Thị Ánh",
    "Trần Văn Đức",
    "Lê Hoàng Yến",
    "Phạm Minh Khôi",
    "Đặng Thùy Dương",
    "Hoàng Quốc Việt",
    "Vũ Ngọc Hân",
    "Bùi Đình Trọng",
    "Đỗ Mỹ Linh",
    "Ngô Bảo Châu",
)
BAD_IDS = (
    "00819000012",
    "0081900001234",
    "000190000123",
    "12345678",
    "１２３４５６７８９",
    "008 19000012",
    "abc",
)
# Values that leave a field absent or unreadable, per field (never a malformed-but-present ID).
UNREADABLE: dict[str, tuple[Any, ...]] = {
    "personal_id": (ABSENT, None, "", "   ", 8190000123, ["008190000123"]),
    "full_name": (ABSENT, None, "", " \t", 5, ["Ánh"]),
    "date_of_birth": (ABSENT, None, "2023-02-29", "1/2/1990", "1990-13-01", 1990),
    "gender": (ABSENT, None, "M", "nu", "other", 0),
    "insurance_code": (ABSENT, None, "12345", "０１２３４５６７８９", 123456789),
}


def strip_marks(name: str) -> str:
    """The name a sector writes without diacritics, keeping case."""
    decomposed = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def noisy_name(name: str, rng: random.Random) -> str:
    for change in rng.sample(["nfd", "upper", "lower", "spaces", "pad"], rng.randint(0, 3)):
        if change == "nfd":
            name = nfd(name)
        elif change == "upper":
            name = name.upper()
        elif change == "lower":
            name = name.lower()
        elif change == "spaces":
            name = "  ".join(name.split())
        else:
            name = f" \t{name}  "
    return name


GENDER_WORDS = {
    "male": ("male", "Nam", "NAM", " nam ", "MALE"),
    "female": ("female", "Nữ", "NỮ", nfd("nữ"), " Female "),
}


@dataclass
class Case:
    record: Record
    citizen: Citizen | None
    first_holder: str | None
    expected: Decision


def build_case(defects: set[str], sector: str, rng: random.Random, noise: bool) -> Case:
    gender: Gender = rng.choice(GENDERS)
    year = rng.randint(1930, 2023)
    born = date(year, rng.randint(1, 12), rng.randint(1, 28))
    pid = make_personal_id(rng.choice(sorted(PROVINCES)), gender, year, rng.randrange(1_000_000))
    legacy = f"{rng.randrange(10**9):09d}"
    npd: dict[str, Any] = {
        "personal_id": pid,
        "legacy_id": legacy,
        "full_name": rng.choice(NAMES),
        "date_of_birth": born,
        "gender": gender,
        "permanent_province": "008",
    }
    if "contradicts" in defects:
        if rng.random() < 0.5:
            npd["gender"] = "female" if gender == "male" else "male"
        else:
            npd["date_of_birth"] = born.replace(year=year + rng.choice((1, -1, 100)))
    if "deceased" in defects:
        npd |= rng.choice(({"status": "deceased"}, {"date_of_death": date(2023, 1, 2)}))
    if "moved" in defects:
        npd["permanent_province"] = "019"
    person = Citizen(**npd)

    name, dob, sex = person.full_name, person.date_of_birth, person.gender
    differing: list[str] = []
    if "mismatch" in defects:
        differing = [f for f in ("full_name", "date_of_birth", "gender") if rng.random() < 0.5] or ["gender"]
        if "full_name" in differing:
            name = rng.choice([n for n in NAMES if strip_marks(n) != strip_marks(name)])
        if "date_of_birth" in differing:
            dob += timedelta(days=rng.choice((1, -1, 365)))
        if "gender" in differing:
            sex = "female" if sex == "male" else "male"
    if "no_diacritics" in defects:
        name = strip_marks(name)
    record_pid = legacy if "legacy" in defects else pid
    if "bad_shape" in defects:
        record_pid = rng.choice(BAD_IDS)
    obj: dict[str, Any] = {
        "record_id": "r-1",
        "sector": sector,
        "province": "008",
        "personal_id": record_pid,
        "full_name": name,
        "date_of_birth": dob.isoformat(),
        "gender": sex,
        **EXTRAS[sector],
    }
    if noise:
        obj["full_name"] = noisy_name(name, rng)
        obj["date_of_birth"] = rng.choice((dob.isoformat(), dob.strftime("%d/%m/%Y")))
        obj["gender"] = rng.choice(GENDER_WORDS[sex])
        obj["personal_id"] = rng.choice(("", " ", "\t")) + record_pid + rng.choice(("", " ", "\n"))
    dropped: set[str] = set()
    if "missing" in defects:
        required = REQUIRED_FIELDS[sector]
        dropped = set(rng.sample(required, rng.randint(1, len(required))))
        for field in dropped:
            value = rng.choice(UNREADABLE[field])
            if value is ABSENT:
                del obj[field]
            else:
                obj[field] = value
    parsed = parse_object(obj)
    assert isinstance(parsed, Record), parsed

    applies = [d for d in DEFECTS if d in defects and (d != "moved" or sector == "labour")]
    first = applies[0] if applies else None
    if first == "missing":
        expected = missing(*(f for f in REQUIRED_FIELDS[sector] if f in dropped))
    elif first in ("bad_shape", "contradicts"):
        expected = MALFORMED
    elif first == "not_found":
        expected = NOT_FOUND
    elif first == "duplicate":
        expected = DUPLICATE
    elif first == "deceased":
        expected = DECEASED
    elif first == "moved":
        expected = MOVED
    elif first == "mismatch":
        expected = mismatch(*differing)
    elif first in ("no_diacritics", "legacy"):
        fixes = {"personal_id": pid} if "legacy" in defects else {}
        if "no_diacritics" in defects:
            fixes["full_name"] = person.full_name
        expected = corrected(**fixes)
    else:
        expected = CLEANED
    first_holder = "r-0" if "duplicate" in defects else rng.choice((None, "r-1"))
    return Case(parsed, None if "not_found" in defects else person, first_holder, expected)


@pytest.mark.parametrize(
    ("earlier", "later"),
    list(itertools.combinations(DEFECTS, 2)),
    ids=[f"{a}-beats-{b}" for a, b in itertools.combinations(DEFECTS, 2)],
)
@pytest.mark.parametrize("sector", SECTORS)
def test_earlier_rule_wins_over_later(sector: str, earlier: str, later: str) -> None:
    rng = random.Random(f"{sector}/{earlier}/{later}")
    for _ in range(20):
        case = build_case({earlier, later}, sector, rng, noise=False)
        assert decide(case.record, case.citizen, case.first_holder) == case.expected


@pytest.mark.parametrize("defect", DEFECTS)
@pytest.mark.parametrize("sector", SECTORS)
def test_each_defect_alone_with_harmless_noise(sector: str, defect: str) -> None:
    rng = random.Random(f"{sector}/{defect}")
    for _ in range(50):
        case = build_case({defect}, sector, rng, noise=True)
        assert decide(case.record, case.citizen, case.first_holder) == case.expected


@pytest.mark.parametrize("seed", range(5))
def test_random_defect_combinations_follow_rule_order(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(1000):
        defects = {d for d in DEFECTS if rng.random() < 0.25}
        case = build_case(defects, rng.choice(SECTORS), rng, noise=True)
        decision = decide(case.record, case.citizen, case.first_holder)
        assert decision == case.expected, (sorted(defects), case.record.raw)


# ---------------------------------------------------------------- totality, generated


POOL: tuple[Any, ...] = (
    ABSENT,
    None,
    "",
    "  ",
    0,
    -1.5,
    True,
    [],
    {},
    "x",
    "٠١٢",
    "\ufeff",
    AN_ID,
    f" {AN_ID} ",
    AN_LEGACY,
    "000190000123",
    AN_NAME,
    nfd(AN_NAME),
    "Nguyen Thi Anh",
    "1990-02-01",
    "01/02/1990",
    "2023-02-29",
    "female",
    "Nữ",
    "Nam",
    "0123456789",
    "birth",
    "death",
    "marriage",
)
CITIZENS = (
    None,
    citizen(),
    citizen(gender="male"),
    citizen(status="deceased"),
    citizen(date_of_death=date(2020, 1, 1), permanent_province="019"),
    citizen(permanent_province="019"),
    citizen(full_name="Đặng Đức", date_of_birth=date(2090, 1, 1)),
)
# Per field, readable values a generated record mostly takes; otherwise anything from POOL. The
# civil-status fields are noise on the records of the sectors `decide` judges.
READABLE: dict[str, tuple[Any, ...]] = {
    "personal_id": (AN_ID, f" {AN_ID}\t", AN_LEGACY),
    "full_name": (AN_NAME, nfd(AN_NAME.upper()), "Nguyen Thi Anh", "Đặng Đức", "Lê Văn Tám"),
    "date_of_birth": ("1990-02-01", "01/02/1990", "2090-01-01", "1990-02-02"),
    "gender": ("female", "Nữ", "male"),
    "insurance_code": ("0123456789",),
    "event": ("birth", "death", "marriage"),
    "event_date": ("2023-05-06",),
    "registration_no": ("HT-1",),
}


@pytest.mark.parametrize("seed", range(5))
def test_decide_never_raises_and_returns_one_consistent_outcome(seed: int) -> None:
    rng = random.Random(seed)
    seen: set[Outcome] = set()
    for _ in range(2000):
        obj: dict[str, Any] = {"record_id": "r1", "sector": rng.choice(SECTORS), "province": "008"}
        for field, readable in READABLE.items():
            value = rng.choice(readable if rng.random() < 0.8 else POOL)
            if value is not ABSENT:
                obj[field] = value
        record = parse_object(obj)
        assert isinstance(record, Record)
        decision = decide(record, rng.choice(CITIZENS), rng.choice((None, "r1", "r0")))
        seen.add(decision.outcome)
        assert decision.outcome in RECORD_OUTCOMES
        assert json.loads(json.dumps(decision.to_dict()))["outcome"] == decision.outcome.value
        assert decision.passed_identity == (decision.outcome in POST_IDENTITY)
        assert bool(decision.corrections) == (decision.outcome is Outcome.CORRECTED)
        named = {Outcome.MISSING_FIELDS, Outcome.MISMATCH}
        assert bool(decision.fields) == (decision.outcome in named)
        if lookup_key(record) is None:
            assert decision.outcome in (Outcome.MISSING_FIELDS, Outcome.MALFORMED_ID)
        else:
            assert decision.outcome is not Outcome.MISSING_FIELDS
            assert decide(record, None, None) == NOT_FOUND
    # The pool is rich enough to reach every outcome a sector record can end in (`ineligible` is a
    # civil-status registration's only: schemas.civil).
    assert seen == set(RECORD_OUTCOMES) - {Outcome.INELIGIBLE}
