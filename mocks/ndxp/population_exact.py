"""A synthetic population with exact head counts by age group on a reference date (the e-ID denominators).

`generate_population` draws ages from the age pyramid, so how many citizens are aged 14 and over comes out
only roughly. The seeds' e-ID figures are shares of exactly that group (Bình Định: 1.256.188 citizens aged
14 and over), so this generator takes the groups' sizes instead: living citizens aged 14 and over on
`as_of`, living citizens under 14, and deceased citizens. Each citizen is made by the same building blocks
as `generate_population` (age pyramid, names, ID serial partitioning, legacy IDs, other basic fields); an
age outside the citizen's group is drawn again. Each province draws from its own stream, separate from the
one `generate_population` uses; IDs stay unique across provinces because serials are partitioned by the
province of residence (see `mocks.ndxp.population`).
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from connectors.names_vi import Gender
from mocks.ndxp.population import (
    _BLOOD,
    _BORN_ELSEWHERE,
    _CODES,
    _DEATH_P,
    _DEATHS_FROM,
    _HIGHLAND,
    _INCONSISTENT_SHARE,
    _LEGACY_SHARE,
    _MINORITIES,
    _NAMES,
    _RELIGIONS,
    _YEAR_CUM,
    _YEAR_DAYS,
    _YEAR_START,
    _YEARS,
    _marital_status,
    _ProvinceStream,
)
from schemas.citizen import Citizen
from schemas.provinces import is_province

__all__ = [
    "EARLIEST_AS_OF",
    "ELIGIBLE_AGE",
    "LATEST_AS_OF",
    "AgeGroups",
    "age_on",
    "generate_by_age",
    "is_eligible",
]

ELIGIBLE_AGE = 14  # citizens aged 14 and over may hold an e-ID account (the seeds' denominator)
# The pyramid covers births 1930–2023: a reference date must leave both age groups possible.
EARLIEST_AS_OF = date(2010, 1, 1)
LATEST_AS_OF = date(2030, 12, 31)
_MAX_DEATH_P = max(_DEATH_P)


@dataclass(frozen=True, slots=True)
class AgeGroups:
    """Head counts of one province: living aged 14+ on the reference date, living under 14, deceased."""

    aged_14_plus: int
    under_14: int = 0
    deceased: int = 0

    @property
    def total(self) -> int:
        return self.aged_14_plus + self.under_14 + self.deceased


def age_on(born: date, on: date) -> int:
    """Completed years of age on `on` (a birthday on 29 February counts from 1 March in other years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def is_eligible(citizen: Citizen, as_of: date) -> bool:
    """Alive and aged 14 or over on `as_of`: who counts in the e-ID denominator."""
    return (
        not citizen.deceased and citizen.date_of_birth <= as_of and age_on(citizen.date_of_birth, as_of) >= 14
    )


_ADULT, _CHILD, _DEAD = 0, 1, 2


def _draw_birth(rng: random.Random) -> tuple[int, date]:
    """An (index into the pyramid's years, birth date) as `generate_population` draws them."""
    rand = rng.random
    age = min(bisect(_YEAR_CUM, rand() * _YEAR_CUM[-1]), len(_YEARS) - 1)
    return age, date.fromordinal(_YEAR_START[age] + int(rand() * _YEAR_DAYS[age]))


def _birth_in_group(rng: random.Random, group: int, as_of: date) -> tuple[int, date]:
    """A birth drawn from the pyramid, drawn again until it fits `group` on `as_of`."""
    while True:
        index, born = _draw_birth(rng)
        if born > as_of or (group == _DEAD and born >= as_of):
            continue
        age = age_on(born, as_of)
        if group == _ADULT and age >= ELIGIBLE_AGE:
            return index, born
        if group == _CHILD and age < ELIGIBLE_AGE:
            return index, born
        # The dead are mostly the old: keep a draw with the generator's own death probability by age.
        if group == _DEAD and rng.random() * _MAX_DEATH_P < _DEATH_P[min(age, len(_DEATH_P) - 1)]:
            return index, born


def _province_by_age(seed: int, province: str, groups: AgeGroups, as_of: date) -> Iterator[Citizen]:
    rng = random.Random(f"{seed}:{province}:by-age")
    stream = _ProvinceStream(rng, province)
    rand = rng.random
    others = tuple(c for c in _CODES if c != province)
    kinh = 0.45 if province in _HIGHLAND else 0.88
    left = [groups.aged_14_plus, groups.under_14, groups.deceased]
    remaining = groups.total
    while remaining:
        # A random merge of the three groups: the file does not list all adults first.
        pick = int(rand() * remaining)
        group = 0 if pick < left[0] else (1 if pick < left[0] + left[1] else 2)
        left[group] -= 1
        remaining -= 1
        index, born = _birth_in_group(rng, group, as_of)
        year = _YEARS[index]
        gender: Gender = "male" if rand() < 0.497 else "female"
        birth_province = province if rand() >= _BORN_ELSEWHERE else others[int(rand() * len(others))]
        id_gender, id_year = gender, year
        if rand() < _INCONSISTENT_SHARE:
            if rand() < 0.5:
                id_gender = "female" if gender == "male" else "male"
            else:
                id_year = year + 1 if year < 2023 else year - 1
        age = age_on(born, as_of)
        record: dict[str, Any] = {
            "personal_id": stream.personal_id(birth_province, id_gender, id_year),
            "legacy_id": stream.legacy_id() if year < 2000 and rand() < _LEGACY_SHARE else None,
            "full_name": _NAMES.full_name(rng, gender),
            "date_of_birth": born,
            "gender": gender,
            "birth_province": birth_province,
            "permanent_province": province,
            "status": "alive",
            "date_of_death": None,
        }
        if group == _DEAD:
            first = max(born + timedelta(days=1), _DEATHS_FROM)
            record["status"] = "deceased"
            record["date_of_death"] = first + timedelta(days=int(rand() * ((as_of - first).days + 1)))
        record["ethnicity"] = "Kinh" if rand() < kinh else _MINORITIES[int(rand() * len(_MINORITIES))]
        record["religion"] = _RELIGIONS[int(rand() * len(_RELIGIONS))]
        record["nationality"] = "VN"
        record["marital_status"] = _marital_status(rng, age)
        record["blood_type"] = _BLOOD[int(rand() * len(_BLOOD))]
        record["current_residence"] = province
        yield Citizen.model_validate(record)


def generate_by_age(seed: int, by_province: Mapping[str, AgeGroups], as_of: date) -> Iterator[Citizen]:
    """Citizens with exact age-group counts on `as_of`, province by province in code order.

    The request is checked at the call (ValueError naming the problem); citizens are made as the iterator
    is consumed. Same seed, counts and date: the same citizens.
    """
    if not EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
        raise ValueError(
            f"reference date {as_of} is outside {EARLIEST_AS_OF}–{LATEST_AS_OF}, the span the synthetic "
            "age pyramid (births 1930–2023) can fill both age groups for"
        )
    for province, groups in by_province.items():
        if not is_province(province):
            raise ValueError(f"unknown province code {province!r} in the population to generate")
        for name in ("aged_14_plus", "under_14", "deceased"):
            if getattr(groups, name) < 0:
                raise ValueError(f"{name} of {province} must not be negative, got {getattr(groups, name)}")
    ordered = dict(sorted(by_province.items()))
    return (
        c for province, groups in ordered.items() for c in _province_by_age(seed, province, groups, as_of)
    )
