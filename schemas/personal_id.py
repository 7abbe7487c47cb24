"""The 12-digit personal ID (PPP G YY RRRRRR) and the 9-digit legacy ID: structure, not existence."""

from __future__ import annotations

from typing import Literal

from schemas.provinces import PROVINCES, is_province

__all__ = [
    "century_digit",
    "consistent_with",
    "decode",
    "id_shape",
    "make_personal_id",
]


Gender = Literal["male", "female"]


def id_shape(value: str) -> Literal["personal", "legacy", "malformed"]:
    """Classify a trimmed ID: a 12-digit ID with a known province, a 9-digit legacy ID, or neither."""
    # Only ASCII digits are digits (`isdigit` alone takes Arabic-Indic and full-width ones); no regex
    # engine, as this runs for every record.
    if not (value.isascii() and value.isdigit()):
        return "malformed"
    if len(value) == 12:
        return "personal" if value[:3] in PROVINCES else "malformed"
    return "legacy" if len(value) == 9 else "malformed"


def century_digit(gender: Gender, birth_year: int) -> str:
    """The G digit: 0/1 male/female born 1900–1999, 2/3 born 2000–2099, 4/5 born 2100–2199, …"""
    century = (birth_year - 1900) // 100
    if not 0 <= century <= 4:
        raise ValueError(f"birth year {birth_year} is outside 1900–2399, which the G digit cannot express")
    return str(century * 2 + (1 if gender == "female" else 0))


def decode(personal_id: str) -> tuple[Gender, int]:
    """Gender and birth year that a well-formed 12-digit ID states."""
    g = int(personal_id[3])
    year = 1900 + (g // 2) * 100 + int(personal_id[4:6])
    return ("female" if g % 2 else "male"), year


_DECODED: dict[str, tuple[Gender, int]] = {}  # "GYY" -> what it states: at most 1,000 entries


def consistent_with(personal_id: str, gender: Gender, birth_year: int) -> bool:
    """True when the ID's gender/century digit and year digits agree with the given gender and year."""
    digits = personal_id[3:6]
    stated = _DECODED.get(digits)
    if stated is None:
        stated = _DECODED[digits] = decode(personal_id)
    return stated == (gender, birth_year)


def make_personal_id(province: str, gender: Gender, birth_year: int, serial: int) -> str:
    """Build a structurally valid ID; `serial` (0–999999) becomes the six random digits."""
    if not is_province(province):
        raise ValueError(f"unknown province code {province!r}")
    if not 0 <= serial <= 999_999:
        raise ValueError(f"serial {serial} must be 0–999999")
    return f"{province}{century_digit(gender, birth_year)}{birth_year % 100:02d}{serial:06d}"
