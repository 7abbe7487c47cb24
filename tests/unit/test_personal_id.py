"""The personal ID's structure (`schemas.personal_id`): shape, the G/YY digits, building IDs."""

from __future__ import annotations

import random
from typing import Literal

import pytest

from schemas.personal_id import century_digit, consistent_with, decode, id_shape, make_personal_id
from schemas.provinces import PROVINCES, is_province, province_name

pytestmark = pytest.mark.unit

Gender = Literal["male", "female"]
GENDERS: tuple[Gender, ...] = ("male", "female")


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ("008190000123", "personal"),
        ("001000000000", "personal"),
        ("096999999999", "personal"),
        ("123456789", "legacy"),
        ("000000000", "legacy"),
        ("000190000123", "malformed"),  # unknown province
        ("003190000123", "malformed"),  # a gap in the GSO codes
        ("097190000123", "malformed"),
        ("999190000123", "malformed"),
        ("00819000012", "malformed"),  # 11 digits
        ("0081900001234", "malformed"),  # 13 digits
        ("1234567890", "malformed"),  # 10 digits
        ("12345678", "malformed"),
        ("", "malformed"),
        (" 008190000123", "malformed"),  # callers trim first
        ("008190000123\n", "malformed"),
        ("٠٠٨١٩٠٠٠٠١٢٣", "malformed"),  # Arabic-Indic digits
        ("００８１９００００１２３", "malformed"),  # full-width digits
        ("１２３４５６７８９", "malformed"),
        ("12345678٩", "malformed"),
        ("008 19000012", "malformed"),
        ("00819000012a", "malformed"),
        ("+12345678", "malformed"),
        ("-12345678", "malformed"),
    ],
    ids=lambda v: repr(v),
)
def test_id_shape(value: str, shape: str) -> None:
    assert id_shape(value) == shape


def test_every_province_opens_a_personal_id() -> None:
    assert len(PROVINCES) == 63
    for code in PROVINCES:
        assert id_shape(f"{code}190000123") == "personal"


@pytest.mark.parametrize(
    ("code", "known"),
    [("008", True), ("052", True), ("096", True), ("8", False), (" 008", False), (8, False), (None, False)],
)
def test_is_province(code: object, known: bool) -> None:
    assert is_province(code) is known


def test_province_name() -> None:
    assert province_name("008") == "Tuyên Quang"
    assert province_name("052") == "Bình Định"
    assert province_name("999") == "999"


@pytest.mark.parametrize(
    ("pid", "gender", "year"),
    [
        ("008090000001", "male", 1990),
        ("008190000001", "female", 1990),
        ("008200000001", "male", 2000),
        ("008323000001", "female", 2023),
        ("008400000001", "male", 2100),
        ("008599000001", "female", 2199),
        ("008600000001", "male", 2200),
        ("008900000001", "female", 2300),
        ("008000000001", "male", 1900),
    ],
)
def test_decode(pid: str, gender: str, year: int) -> None:
    assert decode(pid) == (gender, year)


@pytest.mark.parametrize(
    ("gender", "year", "digit"),
    [
        ("male", 1900, "0"),
        ("female", 1999, "1"),
        ("male", 2000, "2"),
        ("female", 2099, "3"),
        ("male", 2100, "4"),
        ("female", 2100, "5"),
        ("male", 2399, "8"),
        ("female", 2399, "9"),
    ],
)
def test_century_digit(gender: Gender, year: int, digit: str) -> None:
    assert century_digit(gender, year) == digit


@pytest.mark.parametrize("year", [1899, 2400])
def test_century_digit_outside_what_g_can_express(year: int) -> None:
    with pytest.raises(ValueError, match=str(year)):
        century_digit("male", year)


@pytest.mark.parametrize(
    ("pid", "gender", "year", "consistent"),
    [
        ("008190000123", "female", 1990, True),
        ("008190000123", "male", 1990, False),
        ("008190000123", "female", 1991, False),
        ("008190000123", "female", 2090, False),
        ("008390000123", "female", 2090, True),
    ],
)
def test_consistent_with(pid: str, gender: Gender, year: int, consistent: bool) -> None:
    assert consistent_with(pid, gender, year) is consistent


def test_make_personal_id_layout() -> None:
    assert make_personal_id("008", "female", 1990, 123) == "008190000123"
    assert make_personal_id("052", "male", 2005, 999_999) == "052205999999"


def test_make_personal_id_round_trips_through_decode() -> None:
    rng = random.Random(6)
    codes = sorted(PROVINCES)
    for _ in range(2000):
        province, year = rng.choice(codes), rng.randint(1900, 2399)
        gender: Gender = rng.choice(GENDERS)
        pid = make_personal_id(province, gender, year, rng.randrange(1_000_000))
        assert id_shape(pid) == "personal"
        assert pid.startswith(province)
        assert decode(pid) == (gender, year)
        assert consistent_with(pid, gender, year)


@pytest.mark.parametrize(
    ("province", "serial", "message"),
    [("000", 1, "province"), ("8", 1, "province"), ("008", -1, "serial"), ("008", 1_000_000, "serial")],
)
def test_make_personal_id_refuses_bad_input(province: str, serial: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_personal_id(province, "male", 1990, serial)
