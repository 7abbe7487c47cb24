"""Deterministic synthetic population for the mock NPD: seed and counts in, the same citizens out.

Each province draws from its own stream (`Random(f"{seed}:{province}")`), so adding a province to a
scenario leaves the others' citizens unchanged. Personal IDs are unique across the whole population
because the six serial digits are partitioned: people born in their province of residence take serials
0–899999 of their (province, G, YY) group; people born elsewhere take a 1,500-wide slot reserved for
their province of residence from 900000 up; serials from `NEVER_ISSUED_FROM` on are never issued, which
is where the record generator finds well-formed IDs that are not in the NPD.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from connectors.names_vi import Gender, NamePicker
from schemas.citizen import Citizen
from schemas.personal_id import consistent_with, make_personal_id
from schemas.provinces import PROVINCES, is_province

__all__ = ["NEVER_ISSUED_FROM", "citizen_json", "generate_population", "id_inconsistent", "write_population"]

_CODES = tuple(sorted(PROVINCES))
_NATIVE_SERIALS = 900_000
_MIGRANT_SLOT = 1_500
NEVER_ISSUED_FROM = _NATIVE_SERIALS + _MIGRANT_SLOT * len(_CODES) + 500  # 995000
_LEGACY_SPACE = 10_000_000  # 7 digits after a 2-digit prefix naming the province of residence

_LAST_DAY = date(2023, 12, 31)
_DEATHS_FROM = date(2010, 1, 1)
_BORN_ELSEWHERE = 0.10
_LEGACY_SHARE = 0.30  # of those born before 2000
_INCONSISTENT_SHARE = 0.0005

# Vietnam's 2023 age pyramid, percent per five-year band from age 0; each year of a band gets a fifth.
_AGE_BANDS = (7.5, 8.5, 8.0, 7.0, 7.0, 7.5, 8.5, 8.5, 7.5, 6.5, 6.0, 5.0, 4.5, 3.5, 2.3, 1.3, 0.9, 0.6, 0.3)
_YEARS = tuple(range(2023, 1929, -1))  # age 0 … 93
_YEAR_CUM = list(accumulate(_AGE_BANDS[min(age // 5, len(_AGE_BANDS) - 1)] for age in range(len(_YEARS))))
_YEAR_START = tuple(date(y, 1, 1).toordinal() for y in _YEARS)
_YEAR_DAYS = tuple(date(y, 12, 31).toordinal() - date(y, 1, 1).toordinal() + 1 for y in _YEARS)
# The G and YY digits for every (gender, year) the generator issues IDs for (inconsistent ones reach 2024).
_GENDERS: tuple[Gender, ...] = ("male", "female")
_G_YY = {
    (g, y): make_personal_id("001", g, y, 0)[3:6] for g in _GENDERS for y in range(_YEARS[-1], _YEARS[0] + 2)
}

# Mountainous northern provinces where Tày, Dao, Mông, Nùng … are a large share of the people.
_HIGHLAND = frozenset(
    {"002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "020", "062", "064"}
)
_MINORITIES = ("Tày", "Thái", "Mường", "Mông", "Dao", "Nùng", "Sán Dìu", "Khmer", "Hoa", "Gia Rai", "Ê Đê")
_RELIGIONS = ("Không",) * 86 + ("Phật giáo",) * 7 + ("Công giáo",) * 5 + ("Tin Lành", "Cao Đài")
_BLOOD = ("O",) * 42 + ("B",) * 31 + ("A",) * 21 + ("AB",) * 6

_NAMES = NamePicker()


def id_inconsistent(c: Citizen) -> bool:
    """True when the citizen's own personal ID contradicts their gender or birth year (rule 6)."""
    return not consistent_with(c.personal_id, c.gender, c.date_of_birth.year)


def _death_probability(age: int) -> float:
    # Tuned so that about 1.5% of a generated population is recorded as deceased, mostly the old.
    if age < 40:
        return 0.003
    if age < 60:
        return 0.01
    return 0.04 if age < 75 else 0.2


_DEATH_P = tuple(_death_probability(age) for age in range(len(_YEARS)))


def _marital_status(rng: random.Random, age: int) -> str:
    if age < 18:
        return "single"
    roll = rng.random()
    if age < 30:
        return "married" if roll < 0.5 else "single"
    if roll < 0.82:
        return "married"
    if roll < 0.88:
        return "divorced"
    return "widowed" if age >= 50 else "single"


class _ProvinceStream:
    """Issues unique serials and legacy IDs for the citizens resident in one province."""

    def __init__(self, rng: random.Random, province: str) -> None:
        self.rng = rng
        self.province = province
        self.index = _CODES.index(province)
        self.used: dict[tuple[str, str, int], set[int]] = {}
        self.legacy: set[int] = set()

    def personal_id(self, birth_province: str, gender: Gender, year: int) -> str:
        used = self.used.setdefault((birth_province, gender, year), set())
        if birth_province == self.province:
            base, width = 0, _NATIVE_SERIALS
        else:
            base, width = _NATIVE_SERIALS + self.index * _MIGRANT_SLOT, _MIGRANT_SLOT
        if len(used) >= width * 0.9:
            raise ValueError(
                f"too many citizens of {self.province} born in {birth_province} in {year} ({gender}) for "
                f"unique personal IDs; generate fewer citizens for {self.province}"
            )
        rand = self.rng.random
        serial = base + int(rand() * width)
        while serial in used:
            serial = base + int(rand() * width)
        used.add(serial)
        # Same digits as `make_personal_id`, without re-checking a province code taken from the table.
        return f"{birth_province}{_G_YY[gender, year]}{serial:06d}"

    def legacy_id(self) -> str:
        number = int(self.rng.random() * _LEGACY_SPACE)
        while number in self.legacy:
            number = int(self.rng.random() * _LEGACY_SPACE)
        self.legacy.add(number)
        return f"{self.index + 10:02d}{number:07d}"


def _province_citizens(seed: int, province: str, count: int) -> Iterator[Citizen]:
    rng = random.Random(f"{seed}:{province}")
    stream = _ProvinceStream(rng, province)
    rand = rng.random
    others = tuple(c for c in _CODES if c != province)
    kinh = 0.45 if province in _HIGHLAND else 0.88
    for _ in range(count):
        gender: Gender = "male" if rand() < 0.497 else "female"
        age = min(bisect(_YEAR_CUM, rand() * _YEAR_CUM[-1]), len(_YEARS) - 1)
        year = _YEARS[age]
        born = date.fromordinal(_YEAR_START[age] + int(rand() * _YEAR_DAYS[age]))
        birth_province = province if rand() >= _BORN_ELSEWHERE else others[int(rand() * len(others))]
        id_gender, id_year = gender, year
        if rand() < _INCONSISTENT_SHARE:
            # The NPD's own error: the ID was issued with the wrong gender digit or a neighbouring year.
            if rand() < 0.5:
                id_gender = "female" if gender == "male" else "male"
            else:
                id_year = year + 1 if year < 2023 else year - 1
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
        if rand() < _DEATH_P[age]:
            first = max(born + timedelta(days=1), _DEATHS_FROM)
            record["status"] = "deceased"
            record["date_of_death"] = first + timedelta(days=int(rand() * ((_LAST_DAY - first).days + 1)))
        record["ethnicity"] = "Kinh" if rand() < kinh else _MINORITIES[int(rand() * len(_MINORITIES))]
        record["religion"] = _RELIGIONS[int(rand() * len(_RELIGIONS))]
        record["nationality"] = "VN"
        record["marital_status"] = _marital_status(rng, age)
        record["blood_type"] = _BLOOD[int(rand() * len(_BLOOD))]
        record["current_residence"] = province
        yield Citizen.model_validate(record)


def generate_population(seed: int, by_province: Mapping[str, int]) -> Iterator[Citizen]:
    """Citizens for each province in `by_province` (code → count), province by province in code order.

    The request is checked at the call (ValueError for an unknown province code or a negative count);
    the citizens are made as the iterator is consumed.
    """
    for province, count in by_province.items():
        if not is_province(province):
            raise ValueError(f"unknown province code {province!r} in the population to generate")
        if count < 0:
            raise ValueError(f"citizen count for {province} must not be negative, got {count}")
    counts = dict(sorted(by_province.items()))
    return (c for province, count in counts.items() for c in _province_citizens(seed, province, count))


def citizen_json(c: Citizen) -> str:
    """One population-file line (CONTRACT.md): dates as YYYY-MM-DD, null for absent optional values."""
    # pydantic's own serialiser: compact JSON, UTF-8 kept as is, three times faster than `json.dumps`.
    return c.model_dump_json()


def write_population(path: str | Path, citizens: Iterable[Citizen]) -> int:
    """Write citizens as UTF-8 JSON lines; returns how many were written."""
    written = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for c in citizens:
            out.write(citizen_json(c))
            out.write("\n")
            written += 1
    return written
