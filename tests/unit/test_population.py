"""The synthetic population (`mocks.ndxp.population`): determinism, unique valid IDs, realistic shares."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from mocks.ndxp.population import citizen_json, generate_population, id_inconsistent, write_population
from schemas.citizen import Citizen
from schemas.names import fold_diacritics, normalize_name
from schemas.personal_id import make_personal_id
from schemas.provinces import is_province

pytestmark = pytest.mark.unit

SIZES = {"008": 30_000, "052": 20_000, "019": 10_000}


@pytest.fixture(scope="module")
def people() -> list[Citizen]:
    return list(generate_population(7, SIZES))


def dumps(citizens: list[Citizen]) -> list[str]:
    return [citizen_json(c) for c in citizens]


def test_same_seed_same_citizens() -> None:
    first = dumps(list(generate_population(3, {"008": 2_000, "001": 500})))
    assert first == dumps(list(generate_population(3, {"001": 500, "008": 2_000})))


def test_other_seed_other_citizens() -> None:
    a = dumps(list(generate_population(3, {"008": 500})))
    b = dumps(list(generate_population(4, {"008": 500})))
    assert len(a) == len(b) == 500
    assert sum(x == y for x, y in zip(a, b, strict=True)) == 0


def test_adding_a_province_leaves_the_others_unchanged() -> None:
    alone = dumps(list(generate_population(5, {"008": 1_000})))
    together = list(generate_population(5, {"008": 1_000, "052": 800, "001": 300}))
    assert dumps([c for c in together if c.permanent_province == "008"]) == alone


def test_counts_and_order_by_province(people: list[Citizen]) -> None:
    assert Counter(c.permanent_province for c in people) == SIZES
    assert [c.permanent_province for c in people] == sorted(c.permanent_province for c in people)


def test_personal_ids_unique_and_well_formed(people: list[Citizen]) -> None:
    ids = [c.personal_id for c in people]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 12 and i.isascii() and i.isdigit() and is_province(i[:3]) for i in ids)
    assert all(c.birth_province == c.personal_id[:3] for c in people)


def test_ids_agree_with_gender_and_year_except_a_small_share(people: list[Citizen]) -> None:
    bad = [c for c in people if id_inconsistent(c)]
    # 0.05% of 60,000 is about 30; the share is small but never nothing at this size.
    assert 5 <= len(bad) <= 100


def test_id_inconsistent_helper() -> None:
    pid = make_personal_id("008", "female", 1990, 12)
    base = {"personal_id": pid, "full_name": "Lê Thị Hà", "date_of_birth": date(1990, 5, 1)}
    assert not id_inconsistent(Citizen(**base, gender="female", permanent_province="008"))
    assert id_inconsistent(Citizen(**base, gender="male", permanent_province="008"))
    other_year = {**base, "date_of_birth": date(1991, 5, 1)}
    assert id_inconsistent(Citizen(**other_year, gender="female", permanent_province="008"))


def test_legacy_ids_unique_for_about_thirty_percent_of_those_born_before_2000(people: list[Citizen]) -> None:
    legacy = [c.legacy_id for c in people if c.legacy_id is not None]
    assert len(set(legacy)) == len(legacy)
    assert all(len(x) == 9 and x.isdigit() for x in legacy)
    assert all(c.date_of_birth.year < 2000 for c in people if c.legacy_id)
    older = [c for c in people if c.date_of_birth.year < 2000]
    assert 0.27 < len(legacy) / len(older) < 0.33


def test_deceased_share_and_dates(people: list[Citizen]) -> None:
    dead = [c for c in people if c.deceased]
    assert 0.008 < len(dead) / len(people) < 0.025
    for c in dead:
        assert c.status == "deceased"
        assert c.date_of_death is not None
        assert c.date_of_birth < c.date_of_death <= date(2023, 12, 31)
    assert all(c.date_of_death is None for c in people if c.status == "alive")


def test_born_elsewhere_share(people: list[Citizen]) -> None:
    elsewhere = sum(c.birth_province != c.permanent_province for c in people)
    assert 0.08 < elsewhere / len(people) < 0.12


def test_birth_years_and_genders(people: list[Citizen]) -> None:
    years = [c.date_of_birth.year for c in people]
    assert min(years) >= 1930
    assert max(years) <= 2023
    assert 0.45 < sum(c.gender == "female" for c in people) / len(people) < 0.55
    children = sum(y > 2005 for y in years) / len(years)
    assert 0.15 < children < 0.35


def test_names_are_vietnamese_with_diacritics(people: list[Citizen]) -> None:
    names = [c.full_name for c in people]
    assert all(unicodedata.is_normalized("NFC", n) for n in names)
    assert all(3 <= len(n.split()) <= 4 for n in names)
    assert 0.33 < sum(n.startswith("Nguyễn ") for n in names) / len(names) < 0.43
    assert sum("Đ" in n or "đ" in n for n in names) > len(names) * 0.05
    with_diacritics = sum(fold_diacritics(n) != normalize_name(n) for n in names)
    assert with_diacritics > len(names) * 0.95
    for word in ("Trường", "Hưởng", "Đức"):
        assert any(word in n.split() for n in names)


def test_middle_names_follow_gender(people: list[Citizen]) -> None:
    assert all(c.gender == "female" for c in people if c.full_name.split()[1] == "Thị")
    assert all(c.gender == "male" for c in people if c.full_name.split()[1] == "Văn")


def test_other_basic_fields(people: list[Citizen]) -> None:
    extras = [c.model_extra or {} for c in people]
    assert all(e["nationality"] == "VN" for e in extras)
    assert all(e["current_residence"] == c.permanent_province for e, c in zip(extras, people, strict=True))
    assert {e["blood_type"] for e in extras} == {"O", "A", "B", "AB"}
    assert {e["marital_status"] for e in extras} <= {"single", "married", "divorced", "widowed"}
    ethnic = Counter(e["ethnicity"] for e in extras)
    assert ethnic.most_common(1)[0][0] == "Kinh"
    assert {"Tày", "Dao", "Nùng"} <= set(ethnic)
    assert all(
        e["marital_status"] == "single"
        for e, c in zip(extras, people, strict=True)
        if c.date_of_birth.year > 2010
    )


def test_citizens_survive_validation(people: list[Citizen]) -> None:
    for c in people[::500]:
        assert Citizen.model_validate(c.model_dump()) == c


def test_write_population_round_trip(tmp_path: Path) -> None:
    citizens = list(generate_population(9, {"008": 300}))
    path = tmp_path / "population.jsonl"
    assert write_population(path, citizens) == 300
    text = path.read_text(encoding="utf-8")
    assert "\\u" not in text  # ensure_ascii off: the names are written as UTF-8
    rows = [json.loads(line) for line in text.splitlines()]
    assert [Citizen.model_validate(r) for r in rows] == citizens
    assert {"personal_id", "legacy_id", "date_of_death", "ethnicity"} <= set(rows[0])
    assert any(r["legacy_id"] is None for r in rows)
    assert all(len(r["date_of_birth"]) == 10 and r["date_of_birth"][4] == "-" for r in rows)


@pytest.mark.parametrize(("sizes", "message"), [({"009": 5}, "unknown province"), ({"008": -1}, "negative")])
def test_bad_requests_refused(sizes: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_population(1, sizes)  # refused at the call, before any citizen is made
