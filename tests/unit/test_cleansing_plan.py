"""The province's side of the cleansing loop (`connectors.cleansing`): the spec, the plan and the fixes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.cleansing import FIXABLE, CleansingRule, CleansingSpec, FixPlan, plan_for_generated
from connectors.generate import GenerateSpec, generate_records
from mocks.ndxp.population import generate_population
from schemas.citizen import Citizen
from schemas.outcomes import Outcome
from schemas.records import Record, parse_object
from schemas.rules import decide, holder_key, lookup_key
from streams.tasks import correction_task, task_lookup_key

pytestmark = pytest.mark.unit

UNFIXABLE = ("malformed_id", "not_found", "deceased", "moved", "duplicate", "ineligible")


@dataclass
class Source:
    """One generated source: its records, each record's planned kind and the citizen it was made from."""

    sector: str
    records: list[dict[str, Any]]
    kinds: list[str]
    truth: list[Citizen | None]

    def ids_of(self, kind: str) -> set[str]:
        return {r["record_id"] for r, k in zip(self.records, self.kinds, strict=True) if k == kind}


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    return list(generate_population(11, {"008": 2_500, "052": 600}))


def make_source(
    population: Sequence[Citizen], sector: str, unsynced: dict[str, int], seed: int = 3
) -> Source:
    spec = GenerateSpec.model_validate({"records": 240, "unsynced": unsynced})
    kinds: list[str] = []
    truth: list[Citizen | None] = []
    records = generate_records(
        spec,
        sector=sector,
        province="008",
        citizens=[c for c in population if c.permanent_province == "008"],
        other_citizens=[c for c in population if c.permanent_province != "008"],
        seed=seed,
        kinds_out=kinds,
        truth_out=truth,
    )
    return Source(sector, records, kinds, truth)


SEVEN_EACH = {"missing_fields": 7, "mismatch": 7, "not_found": 3, "malformed_id": 3, "deceased": 2}


@pytest.fixture(scope="module")
def insurance(population: list[Citizen]) -> Source:
    return make_source(population, "insurance", {**SEVEN_EACH, "duplicate": 2})


@pytest.fixture(scope="module")
def labour(population: list[Citizen]) -> Source:
    return make_source(population, "labour", {**SEVEN_EACH, "moved": 2})


# The citizen behind the hand-written insurance records below.
ANH = Citizen(
    personal_id="008190000123",
    full_name="Nguyễn Thị Ánh",
    date_of_birth=date(1990, 2, 1),
    gender="female",
    permanent_province="008",
)


def spec(**rules: dict[str, Any]) -> CleansingSpec:
    return CleansingSpec.model_validate(rules)


def plan(source: Source, cleansing: CleansingSpec, seed: int = 1) -> FixPlan:
    return plan_for_generated(
        cleansing,
        sector=source.sector,
        province="008",
        records=source.records,
        kinds=source.kinds,
        truth=source.truth,
        seed=seed,
    )


def error_of(data: Any) -> str:
    with pytest.raises(ValidationError) as info:
        CleansingSpec.model_validate(data)
    return str(info.value)


# --- CleansingSpec ---------------------------------------------------------------------------------------


def test_a_spec_with_both_kinds() -> None:
    s = spec(missing_fields={"share": 0.5, "after_s": 2}, mismatch={"share": 1})
    assert s.missing_fields == CleansingRule(share=0.5, after_s=2.0)
    assert s.mismatch == CleansingRule(share=1.0, after_s=1.0), "a fix takes 1 s unless told"


def test_an_empty_spec_has_no_rules() -> None:
    assert spec().rules() == {}


def test_rules_are_keyed_by_outcome_for_the_kinds_named() -> None:
    s = spec(mismatch={"share": 0.25})
    assert s.rules() == {"unsynced/mismatch": CleansingRule(share=0.25)}
    both = spec(mismatch={"share": 0.25}, missing_fields={"share": 0.75, "after_s": 0})
    assert list(both.rules()) == ["unsynced/missing_fields", "unsynced/mismatch"]
    assert set(both.rules()) == {f"unsynced/{k}" for k in FIXABLE}
    assert {Outcome(o) for o in both.rules()} == {Outcome.MISSING_FIELDS, Outcome.MISMATCH}


@pytest.mark.parametrize("key", ["cleaned", "unsynced/mismatch", "Mismatch", "missing"])
def test_an_unknown_key_is_named_with_the_allowed_ones(key: str) -> None:
    message = error_of({key: {"share": 0.5}})
    assert f"unknown key {key!r} in cleansing; allowed keys: missing_fields, mismatch" in message


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("malformed_id", "a malformed ID is cancelled and re-issued by C06, not by the province"),
        ("not_found", "an ID the NPD does not hold needs the citizen registered first"),
        ("deceased", "a deceased citizen's record is withdrawn, not re-published"),
        ("moved", "a citizen who moved is handed to the new province"),
        ("duplicate", "a duplicate is withdrawn, not re-published"),
    ],
)
def test_an_unfixable_kind_is_refused_with_its_reason(kind: str, why: str) -> None:
    message = error_of({"mismatch": {"share": 0.5}, kind: {"share": 0.5}})
    assert (
        f"{kind} cannot be fixed by re-publishing ({why}); fixable kinds: missing_fields, mismatch" in message
    )


def test_every_unsynced_kind_is_either_fixable_or_refused() -> None:
    kinds = {o.kind for o in Outcome if o.unsynced}
    assert kinds == {*FIXABLE, *UNFIXABLE}


@pytest.mark.parametrize("share", [0, 0.0, 0.001, 0.5, 1, 1.0])
def test_share_within_0_and_1(share: float) -> None:
    assert spec(mismatch={"share": share}).rules()["unsynced/mismatch"].share == share


@pytest.mark.parametrize("share", [-0.01, 1.01, 2, -1])
def test_share_outside_0_and_1_is_refused(share: float) -> None:
    message = error_of({"mismatch": {"share": share}})
    assert "mismatch.share" in message


def test_share_is_required() -> None:
    assert "mismatch.share" in error_of({"mismatch": {"after_s": 3}})


@pytest.mark.parametrize("after_s", [0, 0.5, 3600])
def test_after_s_within_0_and_an_hour(after_s: float) -> None:
    assert spec(mismatch={"share": 1, "after_s": after_s}).rules()["unsynced/mismatch"].after_s == after_s


@pytest.mark.parametrize("after_s", [-0.1, 3600.5, 86_400])
def test_after_s_outside_0_and_an_hour_is_refused(after_s: float) -> None:
    assert "mismatch.after_s" in error_of({"mismatch": {"share": 1, "after_s": after_s}})


def test_an_unknown_key_in_a_rule_is_refused() -> None:
    assert "mismatch.delay" in error_of({"mismatch": {"share": 1, "delay": 3}})


def test_the_spec_is_frozen() -> None:
    s = spec(mismatch={"share": 1})
    with pytest.raises(ValidationError):
        s.mismatch = None  # type: ignore[misc]


# --- plan_for_generated ----------------------------------------------------------------------------------


def test_the_sources_hold_seven_of_each_fixable_kind(insurance: Source, labour: Source) -> None:
    for source in (insurance, labour):
        counts = Counter(source.kinds)
        assert (counts["missing_fields"], counts["mismatch"]) == (7, 7)


@pytest.mark.parametrize(("share", "picked"), [(0, 0), (0.1, 1), (0.5, 4), (0.7, 5), (0.93, 7), (1.0, 7)])
def test_exactly_the_share_of_each_kind_is_picked_rounded_half_up(
    insurance: Source, share: float, picked: int
) -> None:
    # 0.5 of 7 is 3.5 → 4; 0.7 of 7 is 4.9 → 5; 0.1 of 7 is 0.7 → 1
    p = plan(insurance, spec(missing_fields={"share": share}, mismatch={"share": share}))
    assert p.chosen is not None
    assert len(p.chosen & insurance.ids_of("missing_fields")) == picked
    assert len(p.chosen & insurance.ids_of("mismatch")) == picked
    assert len(p.chosen) == 2 * picked


def test_each_kind_has_its_own_share(insurance: Source) -> None:
    p = plan(insurance, spec(missing_fields={"share": 0.5}, mismatch={"share": 0}))
    assert p.chosen is not None
    assert len(p.chosen) == 4 and p.chosen <= insurance.ids_of("missing_fields")


def test_a_kind_without_a_rule_is_never_picked(insurance: Source) -> None:
    p = plan(insurance, spec(mismatch={"share": 1.0}))
    assert p.chosen == insurance.ids_of("mismatch")
    assert set(p.rules) == {"unsynced/mismatch"}


def test_no_rules_pick_nothing(insurance: Source) -> None:
    p = plan(insurance, spec())
    assert p.chosen == set() and p.reference == {}


def synthetic(kind: str, n: int) -> tuple[list[dict[str, Any]], list[str], list[Citizen | None]]:
    records = [{"record_id": f"R-{i}", "sector": "labour"} for i in range(n)]
    return records, [kind] * n, [None] * n


@pytest.mark.parametrize(
    ("share", "n", "picked"),
    [
        (0.5, 5, 3),  # 2.5 → 3 (half up, not to even)
        (0.5, 1, 1),
        (0.25, 6, 2),  # 1.5 → 2
        (0.145, 100, 15),  # 14.5 as written, though 0.145 * 100 is 14.499999999999998 in floats
        (0.3, 10, 3),
        (0.01, 49, 0),  # 0.49 → 0
        (1.0, 0, 0),
    ],
)
def test_the_share_is_the_share_as_written_rounded_half_up(share: float, n: int, picked: int) -> None:
    records, kinds, truth = synthetic("mismatch", n)
    p = plan_for_generated(
        spec(mismatch={"share": share}),
        sector="labour",
        province="008",
        records=records,
        kinds=kinds,
        truth=truth,
        seed=0,
    )
    assert p.chosen is not None and len(p.chosen) == picked
    assert p.reference == {}, "a record made from no citizen has nothing to fix from"


def test_the_plan_names_its_source_rules_and_seed(insurance: Source) -> None:
    s = spec(mismatch={"share": 0.5})
    p = plan(insurance, s, seed=9)
    assert (p.sector, p.province, p.seed) == ("insurance", "008", 9)
    assert p.rules == s.rules()


def test_the_same_seed_picks_the_same_records(insurance: Source) -> None:
    s = spec(missing_fields={"share": 0.5}, mismatch={"share": 0.5})
    first, again = plan(insurance, s, seed=4), plan(insurance, s, seed=4)
    assert first.chosen == again.chosen
    assert first.reference == again.reference


def test_other_seeds_pick_other_records() -> None:
    records, kinds, truth = synthetic("missing_fields", 200)
    s = spec(missing_fields={"share": 0.5})
    picks = {
        frozenset(
            plan_for_generated(
                s, sector="labour", province="008", records=records, kinds=kinds, truth=truth, seed=seed
            ).chosen
            or ()
        )
        for seed in range(5)
    }
    assert len(picks) == 5
    assert {len(p) for p in picks} == {100}


def test_references_carry_the_citizens_identity(insurance: Source, labour: Source) -> None:
    for source in (insurance, labour):
        p = plan(source, spec(missing_fields={"share": 1.0}, mismatch={"share": 1.0}))
        assert p.chosen is not None and set(p.reference) == p.chosen
        for raw, citizen in zip(source.records, source.truth, strict=True):
            if raw["record_id"] not in p.chosen:
                continue
            assert citizen is not None
            ref = p.reference[raw["record_id"]]
            assert {k: ref[k] for k in ("personal_id", "full_name", "date_of_birth", "gender")} == {
                "personal_id": citizen.personal_id,
                "full_name": citizen.full_name,
                "date_of_birth": citizen.date_of_birth.isoformat(),
                "gender": citizen.gender,
            }


def test_only_a_spoilt_insurance_code_gets_a_reference_code(insurance: Source, labour: Source) -> None:
    p = plan(insurance, spec(missing_fields={"share": 1.0}, mismatch={"share": 1.0}))
    assert p.chosen is not None
    for raw in insurance.records:
        if raw["record_id"] not in p.chosen:
            continue
        ref = p.reference[raw["record_id"]]
        code = raw.get("insurance_code")
        if isinstance(code, str) and len(code) == 10 and code.isdigit():
            assert "insurance_code" not in ref, raw
        elif isinstance(code, str) and code.isdigit():
            pass  # a cut-short code: see test_a_cut_short_insurance_code_is_fixable_from_source
        else:
            assert len(ref["insurance_code"]) == 10 and ref["insurance_code"].isdigit(), raw
    labour_plan = plan(labour, spec(missing_fields={"share": 1.0}, mismatch={"share": 1.0}))
    assert all("insurance_code" not in ref for ref in labour_plan.reference.values())


def test_the_reference_code_is_stable_for_a_record() -> None:
    records = [{"record_id": "INS-008-1", "sector": "insurance", "insurance_code": None}]
    refs = [
        plan_for_generated(
            spec(missing_fields={"share": 1.0}),
            sector="insurance",
            province="008",
            records=records,
            kinds=["missing_fields"],
            truth=[ANH],
            seed=seed,
        ).reference["INS-008-1"]
        for seed in (1, 2)
    ]
    assert refs[0] == refs[1]
    assert refs[0] == {
        "personal_id": "008190000123",
        "full_name": "Nguyễn Thị Ánh",
        "date_of_birth": "1990-02-01",
        "gender": "female",
        "insurance_code": refs[0]["insurance_code"],
    }


# --- the plan against the real rules: every planned fix is a fix -----------------------------------------


def tasks_of(source: Source, population: Sequence[Citizen]) -> list[dict[str, Any]]:
    """The correction task of every unsynced record, as a worker makes it."""
    npd = {c.personal_id: c for c in population}
    made = []
    holders: dict[tuple[str, str, str], str] = {}
    for raw in source.records:
        rec = parse_object(raw)
        assert isinstance(rec, Record)
        key, hk = lookup_key(rec), holder_key(rec)
        citizen = npd.get(key) if key else None
        first = holders.get(hk) if hk else None
        decision = decide(rec, citizen, first)
        if decision.passed_identity and first is None and hk:
            holders[hk] = rec.record_id
        task_key = task_lookup_key(rec)
        task = correction_task(
            rec, decision, citizen or (npd.get(task_key) if task_key else None), version=1, decided_ms=0
        )
        if task is not None:
            made.append(task)
    return made


@pytest.mark.parametrize("sector", ["insurance", "labour"])
def test_every_planned_fix_ends_synced(population: list[Citizen], sector: str) -> None:
    source = make_source(population, sector, {"missing_fields": 40, "mismatch": 10, "not_found": 2})
    p = plan(source, spec(missing_fields={"share": 1.0}, mismatch={"share": 1.0}))
    npd = {c.personal_id: c for c in population}
    fixed = 0
    for task in tasks_of(source, population):
        if p.rule(task) is None:
            assert task["outcome"] == "unsynced/not_found"
            continue
        record = p.fix(task)
        assert record is not None, f"a planned fix is unfixable: {task['fields']} of {task['record']}"
        rec = parse_object(record)
        assert isinstance(rec, Record) and rec.record_id == task["record_id"]
        key = lookup_key(rec)
        assert decide(rec, npd.get(key) if key else None, None).outcome.synced, (task, record)
        fixed += 1
    assert fixed == 50


def test_a_cut_short_insurance_code_is_fixable_from_source() -> None:
    # connectors/defects.py spoils an insurance code by cutting it to 9 digits, among other ways.
    raw = {
        "record_id": "INS-008-1",
        "sector": "insurance",
        "province": "008",
        "personal_id": "008190000123",
        "full_name": "Nguyễn Thị Ánh",
        "date_of_birth": "1990-02-01",
        "gender": "female",
        "insurance_code": "012345678",
    }
    p = plan_for_generated(
        spec(missing_fields={"share": 1.0}),
        sector="insurance",
        province="008",
        records=[raw],
        kinds=["missing_fields"],
        truth=[ANH],
        seed=1,
    )
    task = {"record_id": "INS-008-1", "outcome": "unsynced/missing_fields", "fields": ["insurance_code"]}
    assert p.fix({**task, "npd": {}, "record": raw}) is not None


# --- FixPlan.rule ----------------------------------------------------------------------------------------


MISMATCH = CleansingRule(share=0.5, after_s=2)
MISSING = CleansingRule(share=1.0)


def test_a_generated_plan_fixes_exactly_the_chosen_records() -> None:
    p = FixPlan("insurance", "008", {"unsynced/mismatch": MISMATCH}, chosen={"A", "B"})
    assert p.rule({"record_id": "A", "outcome": "unsynced/mismatch"}) is MISMATCH
    assert p.rule({"record_id": "C", "outcome": "unsynced/mismatch"}) is None


def test_a_record_of_a_kind_without_a_rule_is_left() -> None:
    p = FixPlan("insurance", "008", {"unsynced/mismatch": MISMATCH}, chosen={"A"})
    assert p.rule({"record_id": "A", "outcome": "unsynced/missing_fields"}) is None
    assert p.rule({"record_id": "A", "outcome": "unsynced/duplicate"}) is None
    assert p.rule({"record_id": "A"}) is None


def test_an_empty_chosen_set_fixes_nothing() -> None:
    p = FixPlan("insurance", "008", {"unsynced/missing_fields": MISSING}, chosen=set())
    assert p.rule({"record_id": "A", "outcome": "unsynced/missing_fields"}) is None


IDS = [f"LAB-008-{n}" for n in range(10_000)]


def file_plan(share: float, seed: int = 0) -> FixPlan:
    return FixPlan("labour", "008", {"unsynced/mismatch": CleansingRule(share=share)}, seed=seed)


def picked(p: FixPlan) -> set[str]:
    return {i for i in IDS if p.rule({"record_id": i, "outcome": "unsynced/mismatch"}) is not None}


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5, 0.9])
def test_a_file_source_fixes_roughly_the_share(share: float) -> None:
    # Binomial(10,000, share): 4 standard deviations are at most 200 records.
    assert abs(len(picked(file_plan(share))) - share * len(IDS)) < 200


def test_a_file_source_fixes_the_same_records_every_time() -> None:
    assert picked(file_plan(0.3)) == picked(file_plan(0.3))


def test_a_file_source_picks_by_its_seed() -> None:
    assert picked(file_plan(0.3, seed=1)) != picked(file_plan(0.3, seed=2))


def test_a_larger_share_of_a_file_source_keeps_the_smaller_ones_picks() -> None:
    assert picked(file_plan(0.2)) <= picked(file_plan(0.6))


def test_a_file_source_share_of_0_fixes_none_and_of_1_all() -> None:
    assert picked(file_plan(0.0)) == set()
    assert picked(file_plan(1.0)) == set(IDS)


# --- FixPlan.fix -----------------------------------------------------------------------------------------


RAW = {
    "record_id": "INS-008-7",
    "sector": "insurance",
    "province": "008",
    "personal_id": "008190000123",
    "full_name": "Nguyen Thi Anh",
    "date_of_birth": "02/01/1990",
    "gender": "X",
    "insurance_code": "",
}
REFERENCE = {
    "personal_id": "008190000123",
    "full_name": "Nguyễn Thị Ánh (at source)",
    "date_of_birth": "1990-02-01",
    "gender": "female",
    "insurance_code": "0812345678",
}


def fix_plan() -> FixPlan:
    return FixPlan(
        "insurance",
        "008",
        {"unsynced/mismatch": MISMATCH},
        chosen={"INS-008-7"},
        reference={"INS-008-7": REFERENCE},
    )


def a_task(fields: list[str], npd: dict[str, Any], record_id: str = "INS-008-7") -> dict[str, Any]:
    return {
        "record_id": record_id,
        "outcome": "unsynced/mismatch",
        "fields": fields,
        "npd": npd,
        "record": RAW,
    }


def test_npd_values_win_over_what_the_province_has() -> None:
    fixed = fix_plan().fix(
        a_task(["full_name", "gender"], {"full_name": "Nguyễn Thị Ánh", "gender": "female"})
    )
    assert fixed == {**RAW, "full_name": "Nguyễn Thị Ánh", "gender": "female"}


def test_a_field_the_npd_does_not_give_comes_from_the_source() -> None:
    fixed = fix_plan().fix(a_task(["gender", "insurance_code"], {"gender": "female"}))
    assert fixed == {**RAW, "gender": "female", "insurance_code": "0812345678"}


def test_without_npd_values_every_field_comes_from_the_source() -> None:
    task = a_task(["personal_id", "date_of_birth"], {})
    del task["npd"]
    fixed = fix_plan().fix(task)
    assert fixed == {**RAW, "personal_id": "008190000123", "date_of_birth": "1990-02-01"}


def test_a_named_field_without_a_value_is_unfixable() -> None:
    assert fix_plan().fix(a_task(["gender", "occupation"], {"gender": "female"})) is None


def test_a_record_without_reference_is_fixed_from_the_npd_only() -> None:
    p = fix_plan()
    assert p.fix(a_task(["gender"], {"gender": "female"}, record_id="OTHER")) == {**RAW, "gender": "female"}
    assert p.fix(a_task(["insurance_code"], {}, record_id="OTHER")) is None


def test_a_task_naming_no_field_gives_the_record_back() -> None:
    assert fix_plan().fix(a_task([], {})) == RAW


def test_the_fix_leaves_the_task_record_untouched() -> None:
    task = a_task(["gender"], {"gender": "female"})
    fixed = fix_plan().fix(task)
    assert fixed is not None and fixed is not task["record"]
    assert task["record"] == RAW and RAW["gender"] == "X"


def test_fix_keeps_the_record_id_and_every_other_field() -> None:
    task = a_task(["gender"], {"gender": "female"})
    task["record"] = {**RAW, "occupation": "nông dân"}
    fixed = fix_plan().fix(task)
    assert fixed is not None
    assert fixed["record_id"] == "INS-008-7" and fixed["occupation"] == "nông dân"
