"""Generated civil-status records (`connectors.civil_gen`): exact outcomes, whatever the partition order."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.civil_gen import CivilBatch, CivilGenerateSpec, build_civil, default_period, generate_civil
from connectors.generate import GenerateError
from mocks.ndxp.population import generate_population, id_inconsistent
from schemas.citizen import Citizen
from schemas.civil import NewCitizen, Registration, decide_civil, lookup_ids, registration_key
from schemas.names import fold_diacritics, normalize_name
from schemas.personal_id import consistent_with, id_shape
from schemas.records import Record, parse_date, parse_gender, parse_object

pytestmark = pytest.mark.unit

AS_OF = date(2024, 1, 1)
PERIOD = (date(2023, 12, 1), date(2023, 12, 31))
FULL: dict[str, Any] = {
    "births": 300, "late_births": 40, "deaths": 200, "marriages": 120,
    "corrected": {"no_diacritics": 20, "legacy_id": 15},
    "unsynced": {"missing_fields": 40, "duplicate": 30, "not_found": 30, "malformed_id": 40, "mismatch": 45,
                 "deceased": 20},
}  # fmt: skip
SPECS: dict[str, dict[str, Any]] = {
    "full": FULL,
    "nothing": {},
    "births-only": {"births": 50, "unsynced": {"duplicate": 5, "mismatch": 6, "not_found": 3}},
    "deaths-only": {
        "deaths": 40,
        "corrected": {"no_diacritics": 5, "legacy_id": 5},
        "unsynced": {"deceased": 4},
    },
    "one-duplicate": {"marriages": 1, "unsynced": {"duplicate": 1}},
    "defects-only": {"unsynced": {"missing_fields": 6, "not_found": 6, "malformed_id": 6, "mismatch": 6}},
}


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    return list(generate_population(11, {"008": 20_000, "052": 3_000}))


def build(population: Sequence[Citizen], spec: dict[str, Any] = FULL, seed: int = 3) -> CivilBatch:
    return build_civil(
        CivilGenerateSpec.model_validate(spec), seed=seed, province="008", citizens=population, as_of=AS_OF
    )


# -- an independent reading of the civil-status rules, to replay the records against an in-memory NPD ------


@dataclass
class Person:
    personal_id: str
    full_name: str
    date_of_birth: date
    gender: str
    deceased: bool
    married: bool


class Oracle:
    """The brief's rules C2–C3, birth, death and marriage, applied one record at a time."""

    def __init__(self, population: Sequence[Citizen]) -> None:
        self.npd = {
            c.personal_id: Person(
                c.personal_id, c.full_name, c.date_of_birth, c.gender, c.deceased,
                (c.model_extra or {}).get("marital_status") == "married",
            )
            for c in population
        }  # fmt: skip
        self.legacy = {c.legacy_id: c.personal_id for c in population if c.legacy_id}
        self.registered: dict[tuple[str, str], str] = {}
        self.issued = 0

    def resolve(self, value: str) -> tuple[str | None, Person | None]:
        pid = value.strip()
        shape = id_shape(pid)
        if shape == "malformed":
            return "unsynced/malformed_id", None
        if shape == "legacy":
            pid = self.legacy.get(pid, "")
        person = self.npd.get(pid)
        if person is None:
            return "unsynced/not_found", None
        if not consistent_with(person.personal_id, person.gender, person.date_of_birth.year):  # type: ignore[arg-type]
            return "unsynced/malformed_id", None
        return None, person

    @staticmethod
    def differs(rec: Record, p: Person) -> bool:
        assert rec.full_name is not None
        return (
            fold_diacritics(rec.full_name) != fold_diacritics(p.full_name)
            or rec.date_of_birth != p.date_of_birth
            or rec.gender != p.gender
        )

    def decide(self, raw: dict[str, Any]) -> str:
        rec = parse_object(raw)
        assert isinstance(rec, Record)
        spouse = raw.get("spouse_id")
        if rec.missing or (rec.event == "marriage" and not (isinstance(spouse, str) and spouse.strip())):
            return "unsynced/missing_fields"
        key = (rec.province, raw["registration_no"].strip())
        if self.registered.get(key, rec.record_id) != rec.record_id:
            return "unsynced/duplicate"
        day = parse_date(raw["event_date"])
        assert day is not None and rec.date_of_birth is not None
        outcome = getattr(self, rec.event or "")(rec, raw, day)
        if outcome in ("cleaned", "corrected"):
            self.registered[key] = rec.record_id
        return str(outcome)

    def birth(self, rec: Record, raw: dict[str, Any], day: date) -> str:
        for side, gender in (("father_id", "male"), ("mother_id", "female")):
            if side in raw:
                value = raw[side].strip()
                if len(value) != 12:
                    return "unsynced/malformed_id"
                problem, parent = self.resolve(value)
                if problem or parent is None:
                    return problem or ""
                if parent.gender != gender:
                    return "unsynced/mismatch"
        assert rec.date_of_birth is not None
        if rec.date_of_birth > day:
            return "unsynced/mismatch"
        self.issued += 1
        return "cleaned"

    def death(self, rec: Record, raw: dict[str, Any], day: date) -> str:
        problem, p = self.resolve(raw["personal_id"])
        if problem or p is None:
            return problem or ""
        if p.deceased:
            return "unsynced/deceased"
        if self.differs(rec, p) or day < p.date_of_birth:
            return "unsynced/mismatch"
        p.deceased = True
        assert rec.full_name is not None and rec.personal_id is not None
        legacy = id_shape(rec.personal_id) == "legacy"
        return (
            "corrected"
            if legacy or normalize_name(rec.full_name) != normalize_name(p.full_name)
            else "cleaned"
        )

    def marriage(self, rec: Record, raw: dict[str, Any], day: date) -> str:
        problem, p = self.resolve(raw["personal_id"])
        problem2, q = self.resolve(raw["spouse_id"])
        if problem or problem2 or p is None or q is None:
            return problem or problem2 or ""
        if p is q:
            return "unsynced/mismatch"
        if p.deceased or q.deceased:
            return "unsynced/deceased"
        if self.differs(rec, p) or p.married or q.married:
            return "unsynced/mismatch"
        p.married = q.married = True
        return "cleaned"


def partition_key(raw: dict[str, Any]) -> str:
    pid = raw.get("personal_id")
    if isinstance(pid, str) and pid.strip():
        return pid.strip()
    reg = raw.get("registration_no")
    return reg.strip() if isinstance(reg, str) and reg.strip() else raw["record_id"]


class SchemasNpd:
    """`schemas.civil.decide_civil` over an in-memory NPD that applies each decision's changes."""

    def __init__(self, population: Sequence[Citizen]) -> None:
        self.people = {c.personal_id: c for c in population}
        self.legacy = {c.legacy_id: c.personal_id for c in population if c.legacy_id}
        self.registrations: dict[tuple[str, str], Registration] = {}

    def decide(self, raw: dict[str, Any]) -> str:
        rec = parse_object(raw)
        assert isinstance(rec, Record)
        found = {}
        for given in lookup_ids(rec):
            pid = self.legacy.get(given, given)
            if pid in self.people:
                found[given] = self.people[pid]
        key = registration_key(rec)
        stored = self.registrations.get(key) if key else None
        decision = decide_civil(rec, found, stored, self.people.__contains__)
        for change in decision.changes:
            if isinstance(change, NewCitizen):
                self.people[change.citizen.personal_id] = change.citizen
            else:
                old = self.people[change.personal_id].model_dump()
                self.people[change.personal_id] = Citizen.model_validate({**old, **change.values})
        registration = decision.registration(rec.record_id, rec.event) if rec.event else None
        if registration is not None and key is not None:
            self.registrations[key] = registration
        return decision.outcome.value


def replay(
    records: Sequence[dict[str, Any]],
    population: Sequence[Citizen],
    seed: int | None,
    npd: Callable[[Sequence[Citizen]], Oracle | SchemasNpd] = Oracle,
) -> dict[str, str]:
    """Outcomes with records spread over 6 partitions by key, interleaved at random (None: in order)."""
    oracle = npd(population)
    if seed is None:
        return {r["record_id"]: oracle.decide(r) for r in records}
    parts: list[list[dict[str, Any]]] = [[] for _ in range(6)]
    for r in records:
        parts[zlib.crc32(partition_key(r).encode()) % 6].append(r)
    rng = random.Random(seed)
    heads = [0] * 6
    result: dict[str, str] = {}
    while live := [i for i in range(6) if heads[i] < len(parts[i])]:
        i = rng.choice(live) if seed >= 0 else live[-1]  # seed < 0: one partition after another, last first
        result[parts[i][heads[i]]["record_id"]] = oracle.decide(parts[i][heads[i]])
        heads[i] += 1
    return result


@pytest.mark.parametrize("seed", [None, -1, 5])
def test_schemas_civil_rules_give_every_record_its_expected_outcome(
    seed: int | None, population: list[Citizen]
) -> None:
    batch = build(population)
    assert replay(batch.records, population, seed, SchemasNpd) == batch.outcomes


# -- counts ------------------------------------------------------------------------------------------------


def asked(spec: CivilGenerateSpec) -> Counter[str]:
    want = Counter({f"unsynced/{k}": n for k, n in spec.unsynced.model_dump().items()})
    want["corrected"] = spec.corrected.no_diacritics + spec.corrected.legacy_id
    want["cleaned"] = spec.clean
    return +want


@pytest.mark.parametrize("name", SPECS)
def test_expected_outcomes_are_the_asked_counts_and_the_rules_agree(
    name: str, population: list[Citizen]
) -> None:
    spec = CivilGenerateSpec.model_validate(SPECS[name])
    batch = build(population, SPECS[name])
    assert len(batch.records) == spec.records == len(batch.outcomes)
    assert Counter(batch.outcomes.values()) == asked(spec)
    assert replay(batch.records, population, None) == batch.outcomes


@pytest.mark.parametrize("seed", [-1, 1, 2, 3, 4])
def test_any_interleaving_of_partitions_gives_the_same_outcomes(seed: int, population: list[Citizen]) -> None:
    batch = build(population)
    assert replay(batch.records, population, seed) == batch.outcomes


def test_counts_per_event_and_chains(population: list[Citizen]) -> None:
    batch = build(population)
    counts = batch.counts()
    assert counts["birth", "cleaned"] == 340 == batch.birth_chains
    assert (
        counts["death", "cleaned"] == 200 and counts["death", "corrected"] == 35 == batch.death_chains - 200
    )
    assert counts["marriage", "cleaned"] == 120 and counts["birth", "corrected"] == 0
    assert counts["birth", "unsynced/deceased"] == 0
    for kind in ("missing_fields", "not_found", "malformed_id", "mismatch", "duplicate"):
        assert all(counts[event, f"unsynced/{kind}"] > 0 for event in ("birth", "death", "marriage")), kind
    assert all(counts[event, "unsynced/deceased"] > 0 for event in ("death", "marriage"))


# -- shape of the records ------------------------------------------------------------------------------------


def test_same_arguments_same_records(population: list[Citizen]) -> None:
    first = build(population)
    assert first == build(population)
    assert first.records != build(population, seed=4).records
    spec = CivilGenerateSpec.model_validate(FULL)
    assert generate_civil(spec, seed=3, province="008", citizens=population, as_of=AS_OF) == first.records


DIGEST_SCRIPT = """
import hashlib, json, sys
from datetime import date
from connectors.civil_gen import CivilGenerateSpec, generate_civil
from mocks.ndxp.population import generate_population
people = list(generate_population(4, {"008": 6000}))
spec = CivilGenerateSpec.model_validate(json.loads(sys.argv[1]))
records = generate_civil(spec, seed=4, province="008", citizens=people, as_of=date(2024, 1, 1))
print(hashlib.sha256(json.dumps(records, ensure_ascii=False).encode()).hexdigest())
"""


def test_same_records_in_another_process_with_another_hash_seed() -> None:
    spec = {**FULL, "births": 100, "deaths": 60, "marriages": 40}
    digests = {
        subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT, json.dumps(spec)],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


def test_record_ids_and_registration_numbers(population: list[Citizen]) -> None:
    batch = build(population)
    ids = [r["record_id"] for r in batch.records]
    assert ids[0] == "CIV-008-0000001" and len(set(ids)) == len(ids)
    assert {r["sector"] for r in batch.records} == {"civil_status"}
    assert {r["province"] for r in batch.records} == {"008"}
    regs = [r.get("registration_no") for r, o in zip(batch.records, batch.outcomes.values(), strict=True)
            if o != "unsynced/duplicate" and isinstance(r.get("registration_no"), str)]  # fmt: skip
    assert len(set(regs)) == len(regs) >= len(batch.records) - 30 - 40
    prefixes = {"birth": "KS-2023-", "death": "KT-2023-", "marriage": "KH-2023-"}
    for r in batch.records:
        if isinstance(r.get("registration_no"), str) and r.get("event") in prefixes:
            assert r["registration_no"].startswith(prefixes[r["event"]])
    for r in batch.records:
        assert "personal_id" not in r if batch.events[r["record_id"]] == "birth" else True
        assert ("spouse_id" in r) == (batch.events[r["record_id"]] == "marriage") or (
            batch.outcomes[r["record_id"]] == "unsynced/missing_fields"
        )


def test_event_dates_inside_the_period_in_order(population: list[Citizen]) -> None:
    batch = build(population)
    days = [parse_date(r.get("event_date")) for r in batch.records]
    read = [d for d in days if d is not None]
    assert len(read) >= len(days) - 40
    assert all(PERIOD[0] <= d <= PERIOD[1] for d in read)
    fresh = [d for d, o in zip(days, batch.outcomes.values(), strict=True) if d and o != "unsynced/duplicate"]
    assert fresh == sorted(fresh)
    assert default_period(date(2024, 3, 15)).model_dump() == {
        "start": date(2024, 2, 1),
        "end": date(2024, 2, 29),
    }


def subjects(batch: CivilBatch) -> list[str]:
    """IDs of the citizens a non-duplicate death or marriage names (ends trimmed, readable ones only)."""
    named = []
    for r in batch.records:
        if batch.outcomes[r["record_id"]] == "unsynced/duplicate":
            continue
        for field in ("personal_id", "spouse_id"):
            if isinstance(r.get(field), str) and r[field].strip():
                named.append(r[field].strip())
    return named


def test_no_citizen_is_named_twice_and_parents_are_not_subjects(population: list[Citizen]) -> None:
    batch = build(population)
    named = subjects(batch)
    assert len(set(named)) == len(named)
    parents = {r[f] for r in batch.records for f in ("father_id", "mother_id") if f in r}
    assert not parents & set(named)


def test_births_ages_and_parents(population: list[Citizen]) -> None:
    batch = build(population)
    npd = {c.personal_id: c for c in population}
    late = newborns = 0
    for r in batch.records:
        if batch.events[r["record_id"]] != "birth" or batch.outcomes[r["record_id"]] != "cleaned":
            continue
        if r.get("father_id") is None and r.get("mother_id") is None:
            continue
        born, day = parse_date(r["date_of_birth"]), parse_date(r["event_date"])
        assert born is not None and day is not None and born <= day
        age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
        late += age >= 6
        newborns += (day - born).days <= 60
        for field, gender in (("father_id", "male"), ("mother_id", "female")):
            if field in r:
                parent = npd[r[field]]
                assert parent.gender == gender and not parent.deceased and not id_inconsistent(parent)
                assert parent.permanent_province == "008"
                assert 18 <= (born - parent.date_of_birth).days // 365.25 <= 55
    cleaned_births = [r for r in batch.records if batch.events[r["record_id"]] == "birth"]
    assert sum("father_id" in r for r in cleaned_births) > len(cleaned_births) // 2
    assert 0 < late <= 40 and newborns > 200


def test_deaths_mostly_old_and_marriages_of_age(population: list[Citizen]) -> None:
    batch = build(population)
    npd = {c.personal_id: c for c in population}
    legacy = {c.legacy_id: c for c in population if c.legacy_id}
    ages = []
    for r in batch.records:
        rid = r["record_id"]
        if batch.outcomes[rid] not in ("cleaned", "corrected") or batch.events[rid] == "birth":
            continue
        pid = r["personal_id"].strip()
        c = npd.get(pid) or legacy[pid]
        if batch.events[rid] == "death":
            ages.append(2023 - c.date_of_birth.year)
        else:
            spouse = npd[r["spouse_id"]]
            assert {c.gender, spouse.gender} == {"male", "female"}
            for p in (c, spouse):
                assert (p.model_extra or {}).get("marital_status") != "married"
                assert p.date_of_birth <= date(2023 - (20 if p.gender == "male" else 18), 12, 1)
    assert sum(a >= 60 for a in ages) > 0.7 * len(ages)


def by_outcome(batch: CivilBatch, outcome: str) -> list[dict[str, Any]]:
    return [r for r in batch.records if batch.outcomes[r["record_id"]] == outcome]


def test_missing_fields_really_lack_a_required_field(population: list[Citizen]) -> None:
    batch = build(population)
    spoilt: Counter[str] = Counter()
    for r in by_outcome(batch, "unsynced/missing_fields"):
        rec = parse_object(r)
        assert isinstance(rec, Record)
        fields = list(rec.missing)
        if batch.events[r["record_id"]] == "marriage" and not (isinstance(r.get("spouse_id"), str)
                                                             and r["spouse_id"].strip()):  # fmt: skip
            fields.append("spouse_id")
        assert fields, r
        spoilt.update(fields)
    assert {"full_name", "date_of_birth", "gender", "event_date", "registration_no"} <= set(spoilt)


def test_deceased_not_found_and_malformed_look_like_their_kind(population: list[Citizen]) -> None:
    batch = build(population)
    npd = {c.personal_id: c for c in population}
    legacy = {c.legacy_id for c in population if c.legacy_id}
    for r in by_outcome(batch, "unsynced/deceased"):
        assert any(npd[r[f]].deceased for f in ("personal_id", "spouse_id") if r.get(f) in npd)
    for r in by_outcome(batch, "unsynced/not_found"):
        ids = [r.get(f, "").strip() for f in ("personal_id", "spouse_id", "father_id", "mother_id")]
        assert any(i and i not in npd and i not in legacy and id_shape(i) != "malformed" for i in ids), r
    inconsistent = 0
    for r in by_outcome(batch, "unsynced/malformed_id"):
        ids = [r.get(f, "").strip() for f in ("personal_id", "spouse_id", "father_id", "mother_id")]
        bad_shape = any(
            i and (id_shape(i) == "malformed" or (r["event"] == "birth" and len(i) != 12)) for i in ids
        )
        inconsistent += any(i in npd and id_inconsistent(npd[i]) for i in ids)
        assert bad_shape or any(i in npd and id_inconsistent(npd[i]) for i in ids), r
    assert inconsistent > 0


def test_mismatches_and_corrections_look_like_their_kind(population: list[Citizen]) -> None:
    batch = build(population)
    npd = {c.personal_id: c for c in population}
    variants: Counter[str] = Counter()
    for r in by_outcome(batch, "unsynced/mismatch"):
        if r["event"] == "birth":
            born, day = parse_date(r["date_of_birth"]), parse_date(r["event_date"])
            assert born is not None and day is not None
            wrong = [
                f
                for f, g in (("father_id", "female"), ("mother_id", "male"))
                if npd[r.get(f, "")].gender == g
            ]
            variants["born_after" if born > day else wrong[0]] += 1
        else:
            c, spouse = npd[r["personal_id"].strip()], npd[r["spouse_id"]] if "spouse_id" in r else None
            married = [
                p for p in (c, spouse) if p and (p.model_extra or {}).get("marital_status") == "married"
            ]
            differs = (
                fold_diacritics(r["full_name"]) != fold_diacritics(c.full_name)
                or parse_date(r["date_of_birth"]) != c.date_of_birth
                or parse_gender(r["gender"]) != c.gender
            )
            assert differs or married, r
            variants[r["event"] + ("-married" if married and not differs else "")] += 1
    assert set(variants) >= {"born_after", "death", "marriage", "marriage-married"}
    assert variants["father_id"] + variants["mother_id"] > 0
    corrected = by_outcome(batch, "corrected")
    assert sum(len(r["personal_id"].strip()) == 9 for r in corrected) == 15
    assert sum(r["full_name"].isascii() for r in corrected) == 20


def test_duplicates_come_after_a_cleaned_original_on_the_same_key(population: list[Citizen]) -> None:
    batch = build(population)
    first: dict[str, dict[str, Any]] = {}
    for r in batch.records:
        if batch.outcomes[r["record_id"]] == "unsynced/duplicate":
            original = first[r["registration_no"]]
            assert batch.outcomes[original["record_id"]] == "cleaned"
            assert partition_key(original) == partition_key(r)
            for field in ("event", "event_date", "personal_id", "spouse_id", "father_id", "mother_id"):
                assert original.get(field) == r.get(field)
        elif isinstance(r.get("registration_no"), str):
            first.setdefault(r["registration_no"], r)


def test_harmless_variety_on_cleaned_records(population: list[Citizen]) -> None:
    cleaned = by_outcome(build(population), "cleaned")
    assert any("/" in r["date_of_birth"] for r in cleaned)
    assert any("/" in r["event_date"] for r in cleaned)
    assert any(r["gender"] in ("Nam", "N\u1eef") for r in cleaned)
    assert any(parse_gender(r["gender"]) is not None and r["full_name"].isupper() for r in cleaned)
    assert any(r["full_name"] != normalize_name(r["full_name"]).title() for r in cleaned)
    assert any(
        unicodedata.is_normalized("NFD", r["full_name"]) and not r["full_name"].isascii() for r in cleaned
    )


# -- errors --------------------------------------------------------------------------------------------------


def test_spec_is_checked() -> None:
    spec = CivilGenerateSpec.model_validate(FULL)
    assert spec.records == 340 + 200 + 120 + 35 + 205
    with pytest.raises(ValidationError, match="moved"):
        CivilGenerateSpec.model_validate({"unsynced": {"moved": 1}})
    with pytest.raises(ValidationError, match="records"):
        CivilGenerateSpec.model_validate({"records": 10})
    with pytest.raises(ValidationError):
        CivilGenerateSpec.model_validate({"births": -1})
    with pytest.raises(ValidationError, match="after it ends"):
        CivilGenerateSpec.model_validate({"period": {"start": "2024-02-01", "end": "2024-01-01"}})


def test_short_population_says_what_was_needed_and_found() -> None:
    people = list(generate_population(2, {"052": 500}))
    with pytest.raises(GenerateError, match=r"\(deaths\): needed 1,000, found \d+;.*052"):
        build_civil(CivilGenerateSpec(deaths=1_000), seed=1, province="052", citizens=people, as_of=AS_OF)
    with pytest.raises(GenerateError, match=r"unmarried men aged 20\+ \(marriages\): needed 600"):
        build_civil(CivilGenerateSpec(marriages=600), seed=1, province="052", citizens=people, as_of=AS_OF)


def test_unusable_arguments_are_refused(population: list[Citizen]) -> None:
    spec = CivilGenerateSpec.model_validate({"unsynced": {"duplicate": 1}})
    with pytest.raises(GenerateError, match="duplicates repeat a cleaned record"):
        build_civil(spec, seed=1, province="008", citizens=population, as_of=AS_OF)
    with pytest.raises(GenerateError, match="unknown province"):
        build_civil(CivilGenerateSpec(), seed=1, province="000", citizens=population, as_of=AS_OF)
    late = CivilGenerateSpec.model_validate({"period": {"start": "2024-01-01", "end": "2024-01-31"}})
    with pytest.raises(GenerateError, match="after the as-of date"):
        build_civil(late, seed=1, province="008", citizens=population, as_of=AS_OF)
