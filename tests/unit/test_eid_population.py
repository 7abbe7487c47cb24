"""Population with exact age groups (`mocks.ndxp.population_exact`): the e-ID denominators, exactly."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from mocks.ndxp.population import citizen_json, generate_population
from mocks.ndxp.population_exact import AgeGroups, age_on, generate_by_age, is_eligible
from popsync.population import scenario_population
from popsync.scenario import load_scenario
from schemas.personal_id import consistent_with

pytestmark = pytest.mark.unit

AS_OF = date(2024, 6, 30)
GROUPS = {"052": AgeGroups(aged_14_plus=3000, under_14=700, deceased=60), "008": AgeGroups(500)}


def test_group_counts_are_exact_on_the_reference_date() -> None:
    people = list(generate_by_age(4, GROUPS, AS_OF))
    by_province = Counter(c.permanent_province for c in people)
    assert by_province == {"052": 3760, "008": 500}
    in_052 = [c for c in people if c.permanent_province == "052"]
    assert sum(is_eligible(c, AS_OF) for c in in_052) == 3000
    assert sum(c.deceased for c in in_052) == 60
    assert sum(not c.deceased and age_on(c.date_of_birth, AS_OF) < 14 for c in in_052) == 700
    assert all(c.date_of_birth <= AS_OF for c in people)
    assert all(c.date_of_death is None or c.date_of_birth < c.date_of_death <= AS_OF for c in people)


def test_ids_are_unique_and_mostly_consistent() -> None:
    people = list(generate_by_age(4, GROUPS, AS_OF))
    assert len({c.personal_id for c in people}) == len(people)
    legacy = [c.legacy_id for c in people if c.legacy_id]
    assert len(set(legacy)) == len(legacy) > 0
    consistent = sum(consistent_with(c.personal_id, c.gender, c.date_of_birth.year) for c in people)
    assert consistent >= len(people) - 10


def test_same_seed_same_citizens_and_the_pyramid_generator_is_untouched() -> None:
    def dump(seed: int, as_of: date = AS_OF) -> list[str]:
        return [citizen_json(c) for c in generate_by_age(seed, GROUPS, as_of)]

    assert dump(4) == dump(4)
    assert dump(4) != dump(5)
    assert dump(4) != dump(4, date(2023, 12, 31))
    # A population drawn by count is not disturbed by drawing one by age.
    before = [citizen_json(c) for c in generate_population(4, {"052": 200})]
    list(generate_by_age(4, GROUPS, AS_OF))
    assert [citizen_json(c) for c in generate_population(4, {"052": 200})] == before


def test_age_on_a_leap_day_birthday() -> None:
    born = date(2008, 2, 29)
    assert age_on(born, date(2022, 2, 28)) == 13
    assert age_on(born, date(2022, 3, 1)) == 14
    assert age_on(date(2010, 6, 30), AS_OF) == 14 and age_on(date(2010, 7, 1), AS_OF) == 13


@pytest.mark.parametrize(
    ("groups", "as_of", "says"),
    [
        ({"099": AgeGroups(1)}, AS_OF, "unknown province code '099'"),
        ({"008": AgeGroups(-1)}, AS_OF, "aged_14_plus of 008 must not be negative"),
        ({"008": AgeGroups(1, deceased=-2)}, AS_OF, "deceased of 008 must not be negative"),
        ({"008": AgeGroups(1)}, date(2005, 1, 1), "outside 2010-01-01–2030-12-31"),
    ],
)
def test_bad_requests_fail_at_the_call(groups: dict[str, AgeGroups], as_of: date, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        generate_by_age(1, groups, as_of)


def test_a_scenario_population_joins_both_forms(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        'name: p\nseed: 2\npopulation:\n  as_of: 2024-06-30\n  generate: {"008": 300}\n'
        '  generate_by_age: {"052": {aged_14_plus: 400, under_14: 50}}\n'
        'eid:\n  - {province: "052", applied: 10}\n',
        encoding="utf-8",
    )
    people = scenario_population(load_scenario(path))
    assert {p: len(c) for p, c in people.items()} == {"008": 300, "052": 450}
    assert sum(is_eligible(c, AS_OF) for c in people["052"]) == 400
