"""The civil-status rules (`schemas.civil.decide_civil`): every rule and precedence, replays, ID issuance."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest
from civil_helpers import (
    BINH,
    BINH_ID,
    BINH_LEGACY,
    BIRTH,
    DEATH,
    FATHER,
    FATHER_ID,
    LAN,
    LAN_ID,
    MOTHER,
    MOTHER_ID,
)

from schemas.citizen import Citizen
from schemas.civil import (
    CIVIL_FIELDS,
    CivilDecision,
    IdSpaceExhaustedError,
    NewCitizen,
    Registration,
    UpdateCitizen,
    decide_civil,
    issue_personal_id,
    lookup_ids,
    registration_key,
)
from schemas.outcomes import Outcome
from schemas.personal_id import decode, id_shape
from schemas.records import Record, parse_object
from schemas.rules import decide

pytestmark = pytest.mark.unit

ABSENT: Any = object()  # as a field value: leave the key out of the record

MARRIAGE: dict[str, Any] = {
    "record_id": "m1",
    "sector": "civil_status",
    "province": "052",
    "event": "marriage",
    "event_date": "2024-02-14",
    "registration_no": "KH-2024-003",
    "personal_id": BINH_ID,
    "full_name": "Lê Văn Bình",
    "date_of_birth": "1990-01-02",
    "gender": "male",
    "spouse_id": LAN_ID,
}
EVENTS = {"birth": BIRTH, "death": DEATH, "marriage": MARRIAGE}


def rec(base: Mapping[str, Any], **changes: Any) -> Record:
    obj = dict(base)
    for key, value in changes.items():
        if value is ABSENT:
            obj.pop(key, None)
        else:
            obj[key] = value
    parsed = parse_object(obj)
    assert isinstance(parsed, Record), parsed
    return parsed


def people(*citizens: Citizen) -> dict[str, Citizen]:
    """The NPD's answer to a look-up: by personal ID and by legacy ID."""
    found = {c.personal_id: c for c in citizens}
    found.update({c.legacy_id: c for c in citizens if c.legacy_id})
    return found


NPD = people(FATHER, MOTHER, BINH, LAN)


def nobody(_: str) -> bool:
    return False


def run(
    record: Record,
    npd: Mapping[str, Citizen] = NPD,
    registered: Registration | None = None,
    taken: Any = nobody,
) -> CivilDecision:
    return decide_civil(record, npd, registered, taken)


def out(decision: CivilDecision) -> tuple[Outcome, tuple[str, ...]]:
    return decision.outcome, decision.fields


def with_(citizen: Citizen, **changes: Any) -> Citizen:
    return Citizen.model_validate({**citizen.model_dump(), **changes})


# ---------------------------------------------------------------- C2 missing fields


@pytest.mark.parametrize(
    ("base", "changes", "fields"),
    [
        pytest.param(BIRTH, {"full_name": " "}, ("full_name",), id="birth-name-blank"),
        pytest.param(BIRTH, {"date_of_birth": "2024-02-30"}, ("date_of_birth",), id="birth-dob-unreal"),
        pytest.param(BIRTH, {"gender": "x"}, ("gender",), id="birth-gender-unknown"),
        pytest.param(BIRTH, {"event_date": "10/3/2024"}, ("event_date",), id="birth-event-date-unpadded"),
        pytest.param(BIRTH, {"registration_no": "  "}, ("registration_no",), id="birth-registration-blank"),
        pytest.param(BIRTH, {"registration_no": 12}, ("registration_no",), id="birth-registration-number"),
        pytest.param(DEATH, {"personal_id": ABSENT}, ("personal_id",), id="death-needs-id"),
        pytest.param(DEATH, {"personal_id": 52090123456}, ("personal_id",), id="death-id-number"),
        pytest.param(MARRIAGE, {"personal_id": " "}, ("personal_id",), id="marriage-needs-id"),
        pytest.param(MARRIAGE, {"spouse_id": ABSENT}, ("spouse_id",), id="marriage-needs-spouse"),
        pytest.param(MARRIAGE, {"spouse_id": 19192000001}, ("spouse_id",), id="marriage-spouse-number"),
        pytest.param(
            MARRIAGE,
            {"spouse_id": "", "personal_id": None, "event_date": ABSENT, "full_name": ["x"]},
            ("personal_id", "full_name", "event_date", "spouse_id"),
            id="every-field-in-order",
        ),
        pytest.param(
            DEATH, {"event": "divorce", "personal_id": ABSENT}, ("event",), id="unreadable-event-needs-no-id"
        ),
        pytest.param(
            MARRIAGE,
            {"event": ABSENT, "spouse_id": ABSENT, "registration_no": ABSENT},
            ("event", "registration_no"),
            id="absent-event-needs-no-spouse",
        ),
    ],
)
def test_c2_missing_fields(base: dict[str, Any], changes: dict[str, Any], fields: tuple[str, ...]) -> None:
    assert out(run(rec(base, **changes))) == (Outcome.MISSING_FIELDS, fields)


def test_c2_fields_order_is_the_documented_one() -> None:
    assert CIVIL_FIELDS == (
        "personal_id",
        "full_name",
        "date_of_birth",
        "gender",
        "event",
        "event_date",
        "registration_no",
        "spouse_id",
    )


def test_birth_needs_no_personal_id_death_no_spouse() -> None:
    assert rec(BIRTH).missing == ()
    assert rec(DEATH).missing == ()
    assert rec(DEATH, spouse_id=5).missing == ()


@pytest.mark.parametrize("value", ["10/03/2024", "2024-03-10", " 2024-03-10 "])
def test_event_date_in_both_forms(value: str) -> None:
    assert run(rec(BIRTH, event_date=value)).outcome is Outcome.CLEANED


def test_c2_wins_over_c3_duplicate() -> None:
    stored = Registration("other", "birth", Outcome.CLEANED, personal_id="008324000001")
    assert out(run(rec(BIRTH, gender=ABSENT), registered=stored)) == (Outcome.MISSING_FIELDS, ("gender",))


# ---------------------------------------------------------------- C3 duplicate and replays


def test_c3_duplicate_when_another_record_registered_the_number() -> None:
    stored = Registration("other", "birth", Outcome.CLEANED, personal_id="008324000001")
    decision = run(rec(BIRTH), registered=stored)
    assert decision == CivilDecision(Outcome.DUPLICATE)
    assert decision.registration("b1", "birth") is None


@pytest.mark.parametrize("base", [BIRTH, DEATH, MARRIAGE], ids=["birth", "death", "marriage"])
def test_c3_wins_over_every_event_rule(base: dict[str, Any]) -> None:
    stored = Registration("other", "death", Outcome.CLEANED)
    # Each record would otherwise fail its event's first rule.
    broken = rec(base, father_id="12", personal_id="12") if base is not DEATH else rec(base, personal_id="1")
    assert run(broken, registered=stored).outcome is Outcome.DUPLICATE


@pytest.mark.parametrize("base", [BIRTH, DEATH, MARRIAGE], ids=["birth", "death", "marriage"])
def test_replay_returns_the_stored_decision_unchanged(base: dict[str, Any]) -> None:
    record = rec(base)
    first = run(record)
    assert first.outcome.synced and first.changes
    stored = first.registration(record.record_id, "birth" if base is BIRTH else base["event"])
    assert stored is not None
    # The NPD changed meanwhile (the death applied, the ID taken): the replay must not notice.
    again = run(record, npd={}, registered=stored, taken=lambda _: True)
    assert again == CivilDecision(
        first.outcome,
        first.fields,
        first.corrections,
        first.personal_id,
        first.spouse_personal_id,
        replayed=True,
    )
    assert again.changes == ()
    assert again.registration(record.record_id, record.event or "birth") is None


def test_replay_of_a_corrected_decision_keeps_its_corrections() -> None:
    record = rec(DEATH, personal_id=BINH_LEGACY, full_name="Le Van Binh")
    first = run(record)
    assert first.outcome is Outcome.CORRECTED
    stored = first.registration("d1", "death")
    assert stored is not None
    assert run(record, registered=stored).corrections == {"personal_id": BINH_ID, "full_name": "Lê Văn Bình"}


def test_registration_key_trims_the_number_and_keys_by_province() -> None:
    assert registration_key(rec(BIRTH, registration_no=" KS-1 ")) == ("008", "KS-1")
    assert registration_key(rec(BIRTH, registration_no=ABSENT)) is None


# ---------------------------------------------------------------- birth


def test_b6_birth_issues_an_id_and_creates_the_citizen() -> None:
    decision = run(rec(BIRTH, full_name=unicodedata.normalize("NFD", "  Nguyễn   Minh An ")))
    assert decision.outcome is Outcome.CLEANED and decision.fields == () and decision.corrections == {}
    pid = decision.personal_id
    assert pid is not None and id_shape(pid) == "personal"
    assert pid[:3] == "008" and decode(pid) == ("female", 2024)
    assert pid[3:6] == "324"
    (change,) = decision.changes
    assert isinstance(change, NewCitizen)
    child = change.citizen
    assert child.personal_id == pid
    assert child.full_name == unicodedata.normalize("NFC", "Nguyễn Minh An")
    assert child.date_of_birth == date(2024, 3, 1) and child.gender == "female"
    assert child.birth_province == child.permanent_province == "008"
    assert child.status == "alive" and not child.deceased
    assert child.model_extra == {
        "marital_status": "single",
        "residence_status": "pending",
        "father_id": FATHER_ID,
        "father_name": "Nguyễn Văn Đức",
        "mother_id": MOTHER_ID,
        "mother_name": "Trần Thị Hoa",
    }
    assert decision.registration("b1", "birth") == Registration(
        "b1", "birth", Outcome.CLEANED, personal_id=pid
    )


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        pytest.param({"father_id": ABSENT}, "father", id="no-father"),
        pytest.param({"mother_id": " "}, "mother", id="mother-blank"),
        pytest.param({"father_id": None, "mother_id": ""}, "both", id="neither"),
    ],
)
def test_b4_parents_are_optional(changes: dict[str, Any], absent: str) -> None:
    decision = run(rec(BIRTH, **changes))
    assert decision.outcome is Outcome.CLEANED
    (change,) = decision.changes
    assert isinstance(change, NewCitizen)
    extra = change.citizen.model_extra or {}
    assert ("father_id" in extra) == (absent not in ("father", "both"))
    assert ("mother_name" in extra) == (absent not in ("mother", "both"))


@pytest.mark.parametrize(
    ("gender", "born", "digits"),
    [
        ("male", "1999-12-31", "099"),
        ("female", "1999-12-31", "199"),
        ("male", "2000-01-01", "200"),
        ("female", "2005-06-07", "305"),
        ("male", "2099-01-01", "299"),
        ("male", "2100-01-01", "400"),
        ("female", "2100-01-01", "500"),
    ],
)
def test_b6_id_structure_for_gender_and_century(gender: str, born: str, digits: str) -> None:
    record = rec(BIRTH, gender=gender, date_of_birth=born, event_date="2200-01-01", province="052")
    pid = run(record).personal_id
    assert pid is not None and pid[:6] == "052" + digits


def test_b6_issued_id_is_deterministic_and_depends_on_province_and_number() -> None:
    a = run(rec(BIRTH)).personal_id
    assert a == run(rec(BIRTH)).personal_id
    assert a == run(rec(BIRTH, record_id="other")).personal_id  # the registration, not the message
    assert a != run(rec(BIRTH, registration_no="KS-2024-002")).personal_id
    other_province = run(rec(BIRTH, province="019")).personal_id
    assert other_province is not None and a is not None and other_province[:3] == "019"


def test_b6_issued_id_probes_past_taken_ids() -> None:
    first = run(rec(BIRTH)).personal_id
    assert first is not None
    taken = {first}
    second = run(rec(BIRTH), taken=taken.__contains__).personal_id
    assert second is not None and second != first and second[:6] == first[:6]
    taken.add(second)
    third = run(rec(BIRTH), taken=taken.__contains__).personal_id
    assert third not in taken


def test_issue_personal_id_wraps_round_and_is_unique_under_collisions() -> None:
    issued: set[str] = set()
    for n in range(200):
        # Every registration hashes to some start; the taken set makes later ones collide and probe.
        pid = issue_personal_id("008", "male", 2024, f"KS-{n % 7}", issued.__contains__)
        assert pid not in issued
        issued.add(pid)
    assert len(issued) == 200
    # The last serial taken: the probe wraps round to 000000.
    last = "008224999999"
    start = issue_personal_id("008", "male", 2024, "KS-x", nobody)
    taken = {f"008224{s:06d}" for s in range(int(start[6:]), 1_000_000)}
    assert last in taken
    assert issue_personal_id("008", "male", 2024, "KS-x", taken.__contains__) == "008224000000"


def test_issue_personal_id_when_every_id_is_taken() -> None:
    with pytest.raises(IdSpaceExhaustedError, match="province 008, female, born 2024"):
        issue_personal_id("008", "female", 2024, "KS-1", lambda _: True)


@pytest.mark.parametrize(
    ("changes", "outcome", "fields"),
    [
        pytest.param(
            {"father_id": "00808500000"}, Outcome.MALFORMED_ID, ("father_id",), id="father-11-digits"
        ),
        pytest.param(
            {"mother_id": "000187000002"}, Outcome.MALFORMED_ID, ("mother_id",), id="mother-province"
        ),
        pytest.param({"father_id": BINH_LEGACY}, Outcome.MALFORMED_ID, ("father_id",), id="legacy-refused"),
        pytest.param({"father_id": 8085000001}, Outcome.MALFORMED_ID, ("father_id",), id="father-a-number"),
        pytest.param(
            {"father_id": "x", "mother_id": "y"}, Outcome.MALFORMED_ID, ("father_id", "mother_id"), id="both"
        ),
        pytest.param({"father_id": "008085999999"}, Outcome.NOT_FOUND, ("father_id",), id="father-unknown"),
        pytest.param(
            {"father_id": "008085999999", "mother_id": "008187999999"},
            Outcome.NOT_FOUND,
            ("father_id", "mother_id"),
            id="both-unknown",
        ),
        pytest.param({"mother_id": BINH_ID}, Outcome.MISMATCH, ("mother_id",), id="mother-male"),
        pytest.param({"father_id": LAN_ID}, Outcome.MISMATCH, ("father_id",), id="father-female"),
        pytest.param(
            {"father_id": MOTHER_ID, "mother_id": FATHER_ID},
            Outcome.MISMATCH,
            ("father_id", "mother_id"),
            id="swapped",
        ),
        pytest.param({"father_id": f" {FATHER_ID} "}, Outcome.CLEANED, (), id="trimmed"),
    ],
)
def test_b4_parents(changes: dict[str, Any], outcome: Outcome, fields: tuple[str, ...]) -> None:
    assert out(run(rec(BIRTH, **changes))) == (outcome, fields)


def test_b4_parent_contradicting_their_own_id_is_malformed() -> None:
    npd = people(with_(FATHER, date_of_birth=date(1986, 3, 4)), MOTHER)
    assert out(run(rec(BIRTH), npd)) == (Outcome.MALFORMED_ID, ("father_id",))


def test_b4_steps_in_order_across_both_parents() -> None:
    # Malformed (mother) before not found (father); not found (mother) before contradiction (father);
    # contradiction (mother) before wrong sex (father).
    assert out(run(rec(BIRTH, father_id="008085999999", mother_id="1"))) == (
        Outcome.MALFORMED_ID,
        ("mother_id",),
    )
    bent = people(with_(FATHER, gender="female"), MOTHER)
    assert out(run(rec(BIRTH, mother_id="008187999999"), bent)) == (Outcome.NOT_FOUND, ("mother_id",))
    npd = people(with_(FATHER, gender="female", personal_id="008185000001"), with_(MOTHER, gender="male"))
    assert out(run(rec(BIRTH, father_id="008185000001"), npd)) == (Outcome.MALFORMED_ID, ("mother_id",))


def test_b4_deceased_parent_is_fine() -> None:
    npd = people(with_(FATHER, status="deceased", date_of_death=date(2023, 12, 1)), MOTHER)
    assert run(rec(BIRTH), npd).outcome is Outcome.CLEANED


def test_b4_wins_over_b5() -> None:
    record = rec(BIRTH, mother_id=BINH_ID, date_of_birth="2024-03-11")
    assert out(run(record)) == (Outcome.MISMATCH, ("mother_id",))


@pytest.mark.parametrize(
    ("born", "outcome"),
    [
        ("2024-03-11", Outcome.MISMATCH),
        ("2024-03-10", Outcome.CLEANED),
        ("1899-12-31", Outcome.MISMATCH),
        ("1900-01-01", Outcome.CLEANED),
    ],
)
def test_b5_birth_date_after_registration_or_inexpressible(born: str, outcome: Outcome) -> None:
    decision = run(rec(BIRTH, date_of_birth=born))
    assert decision.outcome is outcome
    if outcome is Outcome.MISMATCH:
        assert (
            decision.fields == ("date_of_birth",) and decision.changes == () and decision.personal_id is None
        )


# ---------------------------------------------------------------- death


def test_d11_death_cleaned_marks_the_citizen_deceased() -> None:
    decision = run(rec(DEATH, full_name=" LÊ  VĂN BÌNH ", date_of_birth="02/01/1990", gender="Nam"))
    assert decision == CivilDecision(
        Outcome.CLEANED,
        personal_id=BINH_ID,
        changes=(UpdateCitizen(BINH_ID, {"status": "deceased", "date_of_death": "2024-01-15"}),),
    )


@pytest.mark.parametrize(
    ("changes", "corrections"),
    [
        pytest.param({"personal_id": BINH_LEGACY}, {"personal_id": BINH_ID}, id="legacy"),
        pytest.param({"full_name": "Le Van Binh"}, {"full_name": "Lê Văn Bình"}, id="no-diacritics"),
        pytest.param(
            {"personal_id": f" {BINH_LEGACY} ", "full_name": "LE VAN BINH"},
            {"personal_id": BINH_ID, "full_name": "Lê Văn Bình"},
            id="both",
        ),
    ],
)
def test_d11_death_corrected(changes: dict[str, Any], corrections: dict[str, str]) -> None:
    decision = run(rec(DEATH, **changes))
    assert decision.outcome is Outcome.CORRECTED
    assert decision.corrections == corrections
    assert decision.personal_id == BINH_ID
    assert decision.changes == (
        UpdateCitizen(BINH_ID, {"status": "deceased", "date_of_death": "2024-01-15"}),
    )


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        pytest.param({"personal_id": "05209012345"}, Outcome.MALFORMED_ID, id="d4-11-digits"),
        pytest.param({"personal_id": "000090123456"}, Outcome.MALFORMED_ID, id="d4-unknown-province"),
        pytest.param({"personal_id": "987654321"}, Outcome.NOT_FOUND, id="d5-legacy-unknown"),
        pytest.param({"personal_id": "052090999999"}, Outcome.NOT_FOUND, id="d6-unknown"),
    ],
)
def test_d4_to_d6(changes: dict[str, Any], outcome: Outcome) -> None:
    decision = run(rec(DEATH, **changes))
    assert out(decision) == (outcome, ())
    assert decision.changes == () and decision.personal_id is None


@pytest.mark.parametrize("pid", [BINH_ID, BINH_LEGACY])
def test_d7_id_contradicting_the_citizen(pid: str) -> None:
    npd = people(with_(BINH, gender="female"))
    assert out(run(rec(DEATH, personal_id=pid, gender="female"), npd)) == (Outcome.MALFORMED_ID, ())


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"status": "deceased"}, id="status"),
        pytest.param({"date_of_death": date(2023, 1, 1)}, id="date-of-death"),
    ],
)
def test_d8_already_deceased(changes: dict[str, Any]) -> None:
    assert out(run(rec(DEATH), people(with_(BINH, **changes)))) == (Outcome.DECEASED, ())


def test_d7_wins_over_d8() -> None:
    npd = people(with_(BINH, gender="female", status="deceased"))
    assert run(rec(DEATH, gender="female"), npd).outcome is Outcome.MALFORMED_ID


def test_d8_wins_over_d9() -> None:
    npd = people(with_(BINH, status="deceased"))
    assert run(rec(DEATH, full_name="Trần Văn Tám"), npd).outcome is Outcome.DECEASED


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        pytest.param({"full_name": "Lê Văn Bính"}, (), id="tone-only-is-not-a-mismatch"),
        pytest.param({"full_name": "Lê Văn Bảo"}, ("full_name",), id="name"),
        pytest.param({"date_of_birth": "1990-01-03"}, ("date_of_birth",), id="dob"),
        pytest.param({"gender": "Nữ"}, ("gender",), id="gender"),
        pytest.param(
            {"full_name": "X", "date_of_birth": "03/01/1990", "gender": "female"},
            ("full_name", "date_of_birth", "gender"),
            id="all",
        ),
    ],
)
def test_d9_mismatch(changes: dict[str, Any], fields: tuple[str, ...]) -> None:
    decision = run(rec(DEATH, **changes))
    if fields:
        assert out(decision) == (Outcome.MISMATCH, fields)
        assert decision.changes == ()
    else:
        assert decision.outcome is Outcome.CORRECTED


def test_d9_wins_over_d10() -> None:
    record = rec(DEATH, gender="female", event_date="1980-01-01")
    assert out(run(record)) == (Outcome.MISMATCH, ("gender",))


@pytest.mark.parametrize(
    ("day", "outcome"), [("1990-01-01", Outcome.MISMATCH), ("1990-01-02", Outcome.CLEANED)]
)
def test_d10_death_before_birth(day: str, outcome: Outcome) -> None:
    decision = run(rec(DEATH, event_date=day))
    assert decision.outcome is outcome
    if outcome is Outcome.MISMATCH:
        assert decision.fields == ("event_date",)


def test_d10_wins_over_d11_correction() -> None:
    assert out(run(rec(DEATH, personal_id=BINH_LEGACY, event_date="1989-01-01"))) == (
        Outcome.MISMATCH,
        ("event_date",),
    )


# ---------------------------------------------------------------- marriage


def marriage_changes(a: Citizen, b: Citizen) -> tuple[UpdateCitizen, UpdateCitizen]:
    return (
        UpdateCitizen(
            a.personal_id,
            {"marital_status": "married", "spouse_id": b.personal_id, "spouse_name": b.full_name},
        ),
        UpdateCitizen(
            b.personal_id,
            {"marital_status": "married", "spouse_id": a.personal_id, "spouse_name": a.full_name},
        ),
    )


def test_m11_marriage_cleaned_marries_both() -> None:
    decision = run(rec(MARRIAGE))
    assert decision == CivilDecision(
        Outcome.CLEANED,
        personal_id=BINH_ID,
        spouse_personal_id=LAN_ID,
        changes=marriage_changes(BINH, LAN),
    )


def test_m11_marriage_corrected_for_the_person_only() -> None:
    decision = run(rec(MARRIAGE, personal_id=BINH_LEGACY, full_name="Le Van Binh"))
    assert decision.outcome is Outcome.CORRECTED
    assert decision.corrections == {"personal_id": BINH_ID, "full_name": "Lê Văn Bình"}
    assert decision.changes == marriage_changes(BINH, LAN)


def test_m11_spouse_by_legacy_id_resolves_without_correction() -> None:
    lan = with_(LAN, legacy_id="555666777")
    decision = run(rec(MARRIAGE, spouse_id="555666777"), people(BINH, lan))
    assert decision.outcome is Outcome.CLEANED
    assert decision.spouse_personal_id == LAN_ID


def test_m11_single_or_widowed_marital_status_without_spouse_may_marry() -> None:
    npd = people(with_(BINH, marital_status="single"), with_(LAN, marital_status="divorced"))
    assert run(rec(MARRIAGE), npd).outcome is Outcome.CLEANED


@pytest.mark.parametrize(
    ("changes", "npd", "outcome", "fields"),
    [
        pytest.param({"personal_id": "1"}, NPD, Outcome.MALFORMED_ID, (), id="m4-person-shape"),
        pytest.param({"personal_id": "987654321"}, NPD, Outcome.NOT_FOUND, (), id="m5-person-legacy"),
        pytest.param({"personal_id": "052090999999"}, NPD, Outcome.NOT_FOUND, (), id="m6-person"),
        pytest.param(
            {},
            people(with_(BINH, date_of_birth=date(1991, 1, 2)), LAN),
            Outcome.MALFORMED_ID,
            (),
            id="m7-person",
        ),
        pytest.param(
            {"spouse_id": "019-192"}, NPD, Outcome.MALFORMED_ID, ("spouse_id",), id="m4-spouse-shape"
        ),
        pytest.param(
            {"spouse_id": "987654321"}, NPD, Outcome.NOT_FOUND, ("spouse_id",), id="m5-spouse-legacy"
        ),
        pytest.param({"spouse_id": "019192999999"}, NPD, Outcome.NOT_FOUND, ("spouse_id",), id="m6-spouse"),
        pytest.param(
            {}, people(BINH, with_(LAN, gender="male")), Outcome.MALFORMED_ID, ("spouse_id",), id="m7-spouse"
        ),
        pytest.param({"spouse_id": BINH_ID}, NPD, Outcome.MISMATCH, ("spouse_id",), id="self"),
        pytest.param({"spouse_id": BINH_LEGACY}, NPD, Outcome.MISMATCH, ("spouse_id",), id="self-by-legacy"),
        pytest.param(
            {}, people(with_(BINH, status="deceased"), LAN), Outcome.DECEASED, (), id="m8-person-deceased"
        ),
        pytest.param(
            {},
            people(BINH, with_(LAN, date_of_death=date(2024, 1, 1))),
            Outcome.DECEASED,
            ("spouse_id",),
            id="m8-spouse-deceased",
        ),
        pytest.param({"gender": "female"}, NPD, Outcome.MISMATCH, ("gender",), id="m9-person-mismatch"),
        pytest.param(
            {},
            people(with_(BINH, marital_status="married"), LAN),
            Outcome.MISMATCH,
            ("marital_status",),
            id="m10",
        ),
        pytest.param(
            {},
            people(with_(BINH, spouse_id="019192000009"), LAN),
            Outcome.MISMATCH,
            ("marital_status",),
            id="m10-spouse-id-recorded",
        ),
        pytest.param(
            {},
            people(BINH, with_(LAN, marital_status="married")),
            Outcome.MISMATCH,
            ("spouse_id", "marital_status"),
            id="m10-spouse-married",
        ),
    ],
)
def test_marriage_rules(
    changes: dict[str, Any], npd: Mapping[str, Citizen], outcome: Outcome, fields: tuple[str, ...]
) -> None:
    decision = run(rec(MARRIAGE, **changes), npd)
    assert out(decision) == (outcome, fields)
    assert decision.changes == () and decision.personal_id is None and decision.spouse_personal_id is None


@pytest.mark.parametrize(
    ("changes", "npd", "expected"),
    [
        pytest.param(
            {"spouse_id": "1"},
            people(with_(BINH, gender="female")),
            (Outcome.MALFORMED_ID, ()),
            id="person-first",
        ),
        pytest.param(
            {"spouse_id": "019192999999"},
            people(with_(BINH, status="deceased")),
            (Outcome.NOT_FOUND, ("spouse_id",)),
            id="m7-before-m8",
        ),
        pytest.param(
            {"spouse_id": BINH_ID},
            people(with_(BINH, status="deceased")),
            (Outcome.MISMATCH, ("spouse_id",)),
            id="self-before-m8",
        ),
        pytest.param(
            {},
            people(with_(BINH, status="deceased"), with_(LAN, status="deceased")),
            (Outcome.DECEASED, ()),
            id="m8-person-before-spouse",
        ),
        pytest.param(
            {"full_name": "Trần Văn Tám"},
            people(BINH, with_(LAN, status="deceased")),
            (Outcome.DECEASED, ("spouse_id",)),
            id="m8-before-m9",
        ),
        pytest.param(
            {"full_name": "Trần Văn Tám"},
            people(with_(BINH, marital_status="married"), LAN),
            (Outcome.MISMATCH, ("full_name",)),
            id="m9-before-m10",
        ),
        pytest.param(
            {},
            people(with_(BINH, marital_status="married"), with_(LAN, marital_status="married")),
            (Outcome.MISMATCH, ("marital_status",)),
            id="m10-person-before-spouse",
        ),
        pytest.param(
            {"personal_id": BINH_LEGACY},
            people(BINH, with_(LAN, marital_status="married")),
            (Outcome.MISMATCH, ("spouse_id", "marital_status")),
            id="m10-before-m11",
        ),
    ],
)
def test_marriage_precedence(
    changes: dict[str, Any], npd: Mapping[str, Citizen], expected: tuple[Outcome, tuple[str, ...]]
) -> None:
    assert out(run(rec(MARRIAGE, **changes), npd)) == expected


# ---------------------------------------------------------------- the pieces around the decision


def test_lookup_ids_name_the_people_each_event_needs() -> None:
    assert lookup_ids(rec(BIRTH)) == [FATHER_ID, MOTHER_ID]
    assert lookup_ids(rec(BIRTH, father_id=ABSENT, mother_id=" ")) == []
    assert lookup_ids(rec(DEATH, personal_id=f" {BINH_LEGACY} ", spouse_id=LAN_ID)) == [BINH_LEGACY]
    assert lookup_ids(rec(MARRIAGE)) == [BINH_ID, LAN_ID]
    assert lookup_ids(rec(MARRIAGE, spouse_id=BINH_ID)) == [BINH_ID]


def test_decide_civil_refuses_other_sectors_and_decide_refuses_civil_records() -> None:
    labour = parse_object({**DEATH, "sector": "labour"})
    assert isinstance(labour, Record)
    with pytest.raises(ValueError, match="civil_status records only"):
        run(labour)
    with pytest.raises(ValueError, match=r"schemas\.civil\.decide_civil"):
        decide(rec(DEATH), BINH, None)


def test_unsynced_decisions_store_nothing() -> None:
    for decision in (
        run(rec(DEATH, gender="female")),
        run(rec(BIRTH, gender=ABSENT)),
        run(rec(MARRIAGE, spouse_id=BINH_ID)),
    ):
        assert decision.outcome.unsynced
        assert decision.registration("x", "death") is None


def test_to_dict_is_the_public_part() -> None:
    decision = run(rec(MARRIAGE, full_name="Le Van Binh"))
    assert decision.to_dict() == {
        "outcome": "corrected",
        "fields": [],
        "corrections": {"full_name": "Lê Văn Bình"},
        "personal_id": BINH_ID,
        "spouse_personal_id": LAN_ID,
        "replayed": False,
    }
