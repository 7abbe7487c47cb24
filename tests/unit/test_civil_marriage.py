"""The marriage conditions of the law (docs/civil-status.md M11–M14): rules, NPD, tasks, generator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.civil_gen import CivilGenerateSpec, build_civil
from connectors.generate import GenerateError
from mocks.ndxp.civil_db import CivilRegistry
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.population import generate_population
from schemas.citizen import Citizen
from schemas.civil import (
    MARRIAGE_CONDITIONS,
    NewCitizen,
    Registration,
    decide_civil,
    full_years,
    lookup_ids,
    registration_key,
)
from schemas.outcomes import Outcome
from schemas.personal_id import make_personal_id
from schemas.records import Record, parse_object
from schemas.rules import Decision
from streams.tasks import correction_task

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 7)
_serial = iter(range(1, 1_000_000))


def person(gender: str, born: date, name: str = "Nguyễn Văn An", **extra: Any) -> Citizen:
    pid = make_personal_id("008", gender, born.year, next(_serial))  # type: ignore[arg-type]
    return Citizen(
        personal_id=pid,
        full_name=name,
        date_of_birth=born,
        gender=gender,
        permanent_province="008",
        **extra,
    )


def marriage(p: Citizen, s: Citizen, on: date | str, **more: Any) -> Record:
    obj = {
        "record_id": "m1",
        "sector": "civil_status",
        "province": "008",
        "event": "marriage",
        "event_date": on if isinstance(on, str) else on.isoformat(),
        "registration_no": "KH-1",
        "personal_id": p.personal_id,
        "full_name": p.full_name,
        "date_of_birth": p.date_of_birth.isoformat(),
        "gender": p.gender,
        "spouse_id": s.personal_id,
        **more,
    }
    parsed = parse_object(obj)
    assert isinstance(parsed, Record), parsed
    return parsed


def decide(p: Citizen, s: Citizen, on: date | str, *others: Citizen, today: date | None = TODAY) -> Any:
    people = {c.personal_id: c for c in (p, s, *others)}
    return decide_civil(marriage(p, s, on), people, None, lambda _: False, today=today)


def outcome(decision: Any) -> tuple[str, tuple[str, ...]]:
    return decision.outcome.value, decision.fields


MAN = person("male", date(1990, 5, 10))
WOMAN = person("female", date(1992, 8, 20), "Trần Thị Hoa")


# -- M11: the marriage date ------------------------------------------------------------------------------


def test_a_lawful_marriage_is_cleaned_and_marries_both() -> None:
    decision = decide(MAN, WOMAN, date(2024, 2, 14))
    assert outcome(decision) == ("cleaned", ())
    assert {c.personal_id for c in decision.changes} == {MAN.personal_id, WOMAN.personal_id}


def test_a_marriage_dated_after_today_is_a_mismatch_of_event_date() -> None:
    assert outcome(decide(MAN, WOMAN, TODAY + timedelta(days=1))) == ("unsynced/mismatch", ("event_date",))
    assert outcome(decide(MAN, WOMAN, TODAY)) == ("cleaned", ())  # today itself is not the future
    # Without a clock (a caller that gives no today) the future is not checked.
    assert outcome(decide(MAN, WOMAN, date(2990, 1, 1), today=None)) == ("cleaned", ())


@pytest.mark.parametrize(
    ("on", "fields"),
    [
        (date(1990, 5, 9), ("event_date", "date_of_birth")),  # before both births
        (date(1990, 5, 10), ("event_date", "date_of_birth")),  # on the person's birth date: not after it
        (date(1991, 1, 1), ("event_date", "spouse_id")),  # after his birth, before hers
        (date(1992, 8, 20), ("event_date", "spouse_id")),  # on the spouse's birth date
    ],
)
def test_a_marriage_not_after_both_births_is_a_mismatch(on: date, fields: tuple[str, ...]) -> None:
    assert outcome(decide(MAN, WOMAN, on)) == ("unsynced/mismatch", fields)


def test_the_date_may_be_written_dd_mm_yyyy() -> None:
    assert outcome(decide(MAN, WOMAN, "14/02/2024")) == ("cleaned", ())
    assert outcome(decide(MAN, WOMAN, "09/05/1990"))[0] == "unsynced/mismatch"


# -- M12: the age ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gender", "years"),
    [("male", 20), ("female", 18)],
)
def test_the_marriage_age_is_reached_on_the_birthday(gender: str, years: int) -> None:
    young = person(gender, date(2000, 3, 15))
    other = person("female" if gender == "male" else "male", date(1990, 1, 1))
    birthday = date(2000 + years, 3, 15)
    person_fields, spouse_fields = ("marriage_age",), ("spouse_id", "marriage_age")
    assert outcome(decide(young, other, birthday - timedelta(days=1))) == (
        "unsynced/ineligible",
        person_fields,
    )
    assert outcome(decide(young, other, birthday)) == ("cleaned", ())
    assert outcome(decide(other, young, birthday - timedelta(days=1))) == (
        "unsynced/ineligible",
        spouse_fields,
    )
    assert outcome(decide(other, young, birthday)) == ("cleaned", ())


def test_a_woman_of_18_may_marry_a_man_of_19_may_not() -> None:
    woman = person("female", date(2005, 1, 1))
    man = person("male", date(2005, 1, 1))
    on = date(2024, 6, 1)  # both 19
    assert outcome(decide(woman, man, on)) == ("unsynced/ineligible", ("spouse_id", "marriage_age"))
    assert outcome(decide(man, woman, on)) == ("unsynced/ineligible", ("marriage_age",))


def test_born_on_29_february_a_year_older_on_1_march() -> None:
    leap = person("female", date(2004, 2, 29))
    man = person("male", date(1990, 1, 1))
    assert outcome(decide(man, leap, date(2022, 2, 28)))[0] == "unsynced/ineligible"
    assert outcome(decide(man, leap, date(2022, 3, 1))) == ("cleaned", ())
    assert full_years(date(2004, 2, 29), date(2024, 2, 29)) == 20


def test_both_too_young_names_the_person() -> None:
    boy, girl = person("male", date(2010, 1, 1)), person("female", date(2010, 1, 1))
    assert outcome(decide(boy, girl, date(2024, 1, 1))) == ("unsynced/ineligible", ("marriage_age",))


# -- M13: same sex --------------------------------------------------------------------------------------


@pytest.mark.parametrize("gender", ["male", "female"])
def test_two_people_of_the_same_sex_are_refused(gender: str) -> None:
    a, b = person(gender, date(1980, 1, 1)), person(gender, date(1985, 1, 1))
    assert outcome(decide(a, b, date(2024, 1, 1))) == ("unsynced/ineligible", ("same_sex",))


def test_the_age_is_checked_before_the_sex() -> None:
    a, b = person("male", date(2010, 1, 1)), person("male", date(1985, 1, 1))
    assert outcome(decide(a, b, date(2024, 1, 1))) == ("unsynced/ineligible", ("marriage_age",))


# -- M14: direct relatives ------------------------------------------------------------------------------


def family() -> dict[str, Citizen]:
    """Three generations, each link a father_id or mother_id the NPD holds, plus a sibling and a cousin."""
    grandma = person("female", date(1930, 1, 1))
    father = person("male", date(1955, 1, 1), mother_id=grandma.personal_id)
    mother = person("female", date(1958, 1, 1))
    son = person("male", date(1980, 1, 1), father_id=father.personal_id, mother_id=mother.personal_id)
    daughter = person("female", date(1982, 1, 1), father_id=father.personal_id, mother_id=mother.personal_id)
    granddaughter = person("female", date(2000, 1, 1), father_id=son.personal_id)
    outsider = person("female", date(1960, 1, 1))
    return dict(
        grandma=grandma, father=father, mother=mother, son=son, daughter=daughter,
        granddaughter=granddaughter, outsider=outsider,
    )  # fmt: skip


FAMILY = family()


@pytest.mark.parametrize(
    ("a", "b", "refused"),
    [
        ("son", "mother", True),  # parent and child
        ("father", "daughter", True),
        ("son", "grandma", True),  # grandparent and grandchild, through the father
        ("son", "granddaughter", True),
        ("father", "granddaughter", True),  # three generations apart
        ("son", "daughter", False),  # siblings are not direct relatives (not checked here)
        ("son", "outsider", False),
    ],
)
def test_direct_relatives_in_either_order(a: str, b: str, refused: bool) -> None:
    people = FAMILY
    on = date(2024, 1, 1)
    expected = ("unsynced/ineligible", ("direct_relatives",)) if refused else ("cleaned", ())
    assert outcome(decide(people[a], people[b], on, *people.values())) == expected
    assert outcome(decide(people[b], people[a], on, *people.values())) == expected


def test_a_parent_the_npd_no_longer_holds_still_links_parent_and_child() -> None:
    mother = person("female", date(1960, 1, 1))
    son = person("male", date(1985, 1, 1), mother_id=mother.personal_id)
    # `people` answers only what it was given: the link on the son's side is enough.
    assert outcome(decide(son, mother, date(2024, 1, 1)))[1] == ("direct_relatives",)


def test_a_cycle_in_the_links_does_not_hang() -> None:
    a = person("male", date(1980, 1, 1))
    b = person("female", date(1981, 1, 1), father_id=a.personal_id)
    a_looped = a.model_copy(update={"father_id": b.personal_id})
    stranger = person("female", date(1982, 1, 1))
    assert outcome(decide(a_looped, stranger, date(2024, 1, 1), b)) == ("cleaned", ())


def test_same_sex_is_checked_before_relatives() -> None:
    father = person("male", date(1950, 1, 1))
    son = person("male", date(1980, 1, 1), father_id=father.personal_id)
    assert outcome(decide(father, son, date(2024, 1, 1)))[1] == ("same_sex",)


def test_the_earlier_rules_still_come_first() -> None:
    married = person("male", date(1990, 1, 1), marital_status="married")
    child = person("female", date(2015, 1, 1))
    # M10 (already married) before M11–M14: the record's dates are not the first thing wrong.
    assert outcome(decide(married, child, date(2000, 1, 1))) == ("unsynced/mismatch", ("marital_status",))
    dead = person("female", date(1990, 1, 1), status="deceased")
    assert outcome(decide(MAN, dead, date(2990, 1, 1)))[0] == "unsynced/deceased"


# -- every combination, against an independent reading of the law ----------------------------------------


def turned(born: date, years: int) -> date:
    """The day someone born on `born` is `years` old: the birthday, 1 March for 29 February."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


RELATIONS = ("none", "parent", "child", "grandparent", "grandchild", "sibling")


def expected(p: Citizen, s: Citizen, on: date, relation: str, today: date) -> tuple[str, tuple[str, ...]]:
    if on > today:
        return "unsynced/mismatch", ("event_date",)
    if on <= p.date_of_birth:
        return "unsynced/mismatch", ("event_date", "date_of_birth")
    if on <= s.date_of_birth:
        return "unsynced/mismatch", ("event_date", "spouse_id")
    minimum = {"male": 20, "female": 18}
    if on < turned(p.date_of_birth, minimum[p.gender]):
        return "unsynced/ineligible", ("marriage_age",)
    if on < turned(s.date_of_birth, minimum[s.gender]):
        return "unsynced/ineligible", ("spouse_id", "marriage_age")
    if p.gender == s.gender:
        return "unsynced/ineligible", ("same_sex",)
    if relation not in ("none", "sibling"):
        return "unsynced/ineligible", ("direct_relatives",)
    return "cleaned", ()


def related(p: Citizen, s: Citizen, relation: str) -> tuple[Citizen, Citizen, list[Citizen]]:
    """`p` and `s` linked as `relation` says (s is p's parent, child, …), and the people between them."""

    def child_of(child: Citizen, parent: Citizen) -> Citizen:
        link = "father_id" if parent.gender == "male" else "mother_id"
        return child.model_copy(update={link: parent.personal_id})

    middle = person("female", date(1950, 6, 1))
    if relation == "parent":
        return child_of(p, s), s, []
    if relation == "child":
        return p, child_of(s, p), []
    if relation == "grandparent":
        return child_of(p, middle), s, [child_of(middle, s)]
    if relation == "grandchild":
        return p, child_of(s, middle), [child_of(middle, p)]
    if relation == "sibling":
        return child_of(p, middle), child_of(s, middle), [middle]
    return p, s, []


days = st.dates(min_value=date(1940, 1, 1), max_value=date(2040, 12, 31))


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["male", "female"]),
    days,
    st.sampled_from(["male", "female"]),
    days,
    days,
    st.sampled_from(RELATIONS),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
)
def test_every_combination_as_the_law_reads(
    pg: str, pb: date, sg: str, sb: date, on: date, relation: str, today: date
) -> None:
    p, s, between = related(person(pg, pb), person(sg, sb), relation)
    decision = decide(p, s, on, *between, today=today)
    assert outcome(decision) == expected(p, s, on, relation, today)
    # A refusal changes nothing and names no ID; its fields name a condition the task can state.
    if decision.outcome is not Outcome.CLEANED:
        assert decision.changes == () and decision.personal_id is None
        assert decision.fields in MARRIAGE_CONDITIONS
        assert decision.registration("m1", "marriage") is None


# -- the NPD: refusals change nothing; a record delivered again gets the same answer ----------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[PopulationDB]:
    population = PopulationDB.create(tmp_path / "npd.sqlite3")
    population.load([MAN, WOMAN, *FAMILY.values()])
    try:
        yield population
    finally:
        population.close()


def raw(
    p: Citizen, s: Citizen, on: date, record_id: str = "m1", registration_no: str = "KH-1"
) -> dict[str, Any]:
    return {**marriage(p, s, on).raw, "record_id": record_id, "registration_no": registration_no}


def table(db: PopulationDB, name: str) -> list[tuple[Any, ...]]:
    return db.connections.get().execute(f"SELECT * FROM {name}").fetchall()


def test_the_npd_refuses_without_changing_anyone(db: PopulationDB) -> None:
    registry = CivilRegistry(db, today=lambda: TODAY)
    people = FAMILY
    before = db.lookup_many([MAN.personal_id, WOMAN.personal_id, people["son"].personal_id])
    results = registry.register(
        [
            raw(MAN, WOMAN, TODAY + timedelta(days=30), "future", "KH-1"),
            raw(MAN, people["granddaughter"], date(2015, 1, 1), "young", "KH-2"),
            raw(people["son"], people["mother"], date(2024, 1, 1), "mother", "KH-3"),
        ]
    )
    assert [(r.outcome, r.fields) for r in results] == [
        ("unsynced/mismatch", ("event_date",)),
        ("unsynced/ineligible", ("spouse_id", "marriage_age")),
        ("unsynced/ineligible", ("direct_relatives",)),
    ]
    assert all(r.personal_id is None and r.touched == () for r in results)
    assert db.lookup_many(list(before)) == before
    assert table(db, "civil_registrations") == []
    # The same registrations, lawful now, go through.
    ok = registry.register([raw(MAN, WOMAN, date(2024, 2, 14), "ok", "KH-1")])
    assert ok[0].outcome == "cleaned"


def test_the_npd_finds_a_grandparent_it_was_not_asked_for(db: PopulationDB) -> None:
    people = FAMILY
    (result,) = CivilRegistry(db).register([raw(people["son"], people["grandma"], date(2024, 1, 1))])
    assert (result.outcome, result.fields) == ("unsynced/ineligible", ("direct_relatives",))


def test_a_refused_record_delivered_again_gets_its_answer_back(db: PopulationDB) -> None:
    """Kafka delivers at least once: a refused record decided again after later records changed the NPD
    must not change its outcome (here: its registration number was taken since)."""
    registry = CivilRegistry(db, today=lambda: TODAY)
    young = raw(MAN, FAMILY["granddaughter"], date(2015, 1, 1), "m1", "KH-9")
    taker = raw(MAN, WOMAN, date(2024, 2, 14), "m2", "KH-9")
    first = registry.register([young, taker])
    assert [r.outcome for r in first] == ["unsynced/ineligible", "cleaned"]
    again = registry.register([young, taker])
    assert [(r.outcome, r.fields, r.replayed) for r in again] == [
        ("unsynced/ineligible", ("spouse_id", "marriage_age"), True),
        ("cleaned", (), True),
    ]
    # A corrected version of it (other content, same record_id) is decided afresh: now a duplicate.
    fixed = {**young, "event_date": "2024-03-01", "spouse_id": WOMAN.personal_id}
    assert registry.register([fixed])[0].outcome == "unsynced/duplicate"


def test_the_npd_date_is_vietnams(db: PopulationDB) -> None:
    before = datetime.now(UTC) + timedelta(hours=7)
    today = CivilRegistry(db).today()
    after = datetime.now(UTC) + timedelta(hours=7)
    assert today in {before.date(), after.date()}


# -- the correction task says which condition failed -------------------------------------------------------


@pytest.mark.parametrize("fields", list(MARRIAGE_CONDITIONS))
def test_the_task_of_a_refused_marriage_names_the_condition(fields: tuple[str, ...]) -> None:
    outcome_ = Outcome.MISMATCH if fields[0] == "event_date" else Outcome.INELIGIBLE
    task = correction_task(
        marriage(MAN, WOMAN, date(2024, 1, 1)), Decision(outcome_, fields), None, version=1, decided_ms=1
    )
    assert task is not None
    assert task["outcome"] == outcome_.value and task["fields"] == list(fields)
    assert task["condition"] == MARRIAGE_CONDITIONS[fields]
    assert task["condition"].startswith(("M11", "M12", "M13", "M14"))


def test_other_tasks_carry_no_condition() -> None:
    task = correction_task(
        marriage(MAN, WOMAN, date(2024, 1, 1)), Decision(Outcome.MISMATCH, ("full_name",)), None,
        version=1, decided_ms=1,
    )  # fmt: skip
    assert task is not None and "condition" not in task


# -- the generator plants each refusal in exact numbers ---------------------------------------------------

AS_OF = date(2024, 1, 1)
REFUSED = {"before_birth": 4, "in_future": 3, "under_age": 5, "same_sex": 6, "direct_relatives": 4}


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    return list(generate_population(11, {"008": 20_000, "052": 3_000}))


class InMemoryNpd:
    """`decide_civil` over a dict, applying each decision's changes: the NDXP's job without SQLite."""

    def __init__(self, citizens: Sequence[Citizen]) -> None:
        self.people = {c.personal_id: c for c in citizens}
        self.legacy = {c.legacy_id: c.personal_id for c in citizens if c.legacy_id}
        self.registrations: dict[tuple[str, str], Registration] = {}

    def decide(self, obj: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        rec = parse_object(obj)
        assert isinstance(rec, Record)
        known = {**self.people, **{k: self.people[v] for k, v in self.legacy.items()}}
        found = {i: known[i] for i in lookup_ids(rec) if i in known}
        key = registration_key(rec)
        stored = self.registrations.get(key) if key else None
        decision = decide_civil(rec, {**known, **found}, stored, self.people.__contains__, today=TODAY)
        for change in decision.changes:
            if isinstance(change, NewCitizen):
                self.people[change.citizen.personal_id] = change.citizen
            else:
                old = self.people[change.personal_id].model_dump()
                self.people[change.personal_id] = Citizen.model_validate({**old, **change.values})
        registration = decision.registration(rec.record_id, rec.event) if rec.event else None
        if registration is not None and key is not None:
            self.registrations[key] = registration
        return decision.outcome.value, decision.fields


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_generator_plants_each_refusal_exactly(population: list[Citizen], seed: int) -> None:
    spec = CivilGenerateSpec.model_validate(
        {"births": 30, "deaths": 20, "marriages": 15, "refused_marriages": REFUSED,
         "unsynced": {"duplicate": 3, "mismatch": 4, "missing_fields": 3}}
    )  # fmt: skip
    batch = build_civil(spec, seed=seed, province="008", citizens=population, as_of=AS_OF)
    assert len(batch.records) == spec.records == 30 + 20 + 15 + sum(REFUSED.values()) + 4 + 10
    npd = InMemoryNpd(population)
    # In publish order: every civil-status record travels in one partition, in that order.
    decided = {r["record_id"]: npd.decide(r) for r in batch.records}
    assert {rid: o for rid, (o, _) in decided.items()} == batch.outcomes
    conditions = [
        fields
        for r in batch.records
        if r["event"] == "marriage" and (fields := decided[r["record_id"]][1]) in MARRIAGE_CONDITIONS
    ]
    by_kind = {
        "before_birth": sum(f[0] == "event_date" and len(f) == 2 for f in conditions),
        "in_future": sum(f == ("event_date",) for f in conditions),
        "under_age": sum(f[-1] == "marriage_age" for f in conditions),
        "same_sex": sum(f == ("same_sex",) for f in conditions),
        "direct_relatives": sum(f == ("direct_relatives",) for f in conditions),
    }
    assert by_kind == REFUSED
    counts = batch.counts()
    assert counts[("marriage", "unsynced/ineligible")] == 15
    assert counts[("birth", "cleaned")] == 30 + 4  # each direct_relatives plant brings its late birth
    assert batch.birth_chains == 34


def test_without_refusals_the_records_stay_as_they_were(population: list[Citizen]) -> None:
    plain = {"births": 20, "deaths": 10, "marriages": 10, "unsynced": {"mismatch": 3, "duplicate": 2}}
    spec = CivilGenerateSpec.model_validate(plain)
    zero = CivilGenerateSpec.model_validate({**plain, "refused_marriages": {"under_age": 0}})
    one = build_civil(spec, seed=5, province="008", citizens=population, as_of=AS_OF)
    two = build_civil(zero, seed=5, province="008", citizens=population, as_of=AS_OF)
    assert one.records == two.records


def test_a_population_short_of_minors_says_so(population: list[Citizen]) -> None:
    adults = [c for c in population if full_years(c.date_of_birth, AS_OF) >= 30]
    spec = CivilGenerateSpec.model_validate({"refused_marriages": {"under_age": 2}})
    with pytest.raises(GenerateError, match="under 2"):
        build_civil(spec, seed=1, province="008", citizens=adults, as_of=AS_OF)
