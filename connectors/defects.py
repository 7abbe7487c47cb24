"""Shapes of generated sector records: a clean record and each defect, built so that it hits its own rule.

Every builder returns one record as the sector holds it (CONTRACT.md). Clean and duplicate records carry
harmless variety (NFD names, extra spaces, upper case, `DD/MM/YYYY` dates, `Nam`/`Nữ`), so the pipeline's
normalisation is exercised on ordinary traffic, not only on defects.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import date, timedelta
from typing import Any

from connectors.name_defects import plant
from connectors.names_vi import Gender, NamePicker, strip_diacritics
from schemas.citizen import Citizen
from schemas.names import fold_diacritics
from schemas.personal_id import century_digit
from schemas.provinces import PROVINCES

__all__ = ["RecordMaker", "consistent", "dmy", "g_yy", "vary_identity"]

_INSURANCE_SPACE = 10**8  # 8 digits after the 2-digit province prefix of a 10-digit social-insurance code
_OCCUPATIONS = (
    "Nông dân", "Công nhân", "Giáo viên", "Buôn bán", "Lái xe", "Thợ may", "Cán bộ, công chức",
    "Kỹ sư", "Nội trợ", "Lao động tự do", "Học sinh, sinh viên", "Thợ xây", "Y tá",
)  # fmt: skip
_EMPLOYMENT = ("employed",) * 6 + ("self_employed",) * 3 + ("unemployed",)
# Three-digit codes no province has, for IDs that rule 3 must call malformed.
_UNKNOWN_PROVINCES = (*(f"{n:03d}" for n in range(100) if f"{n:03d}" not in PROVINCES), "100", "999")
_NU = "N\u1eef"  # escaped so that no editor can decompose it


_GENDERS: tuple[Gender, ...] = ("male", "female")
# G and YY digits for every (gender, year) a G digit can express: 1900–2399.
_G_YY: dict[tuple[str, int], str] = {
    (g, y): f"{century_digit(g, y)}{y % 100:02d}" for g in _GENDERS for y in range(1900, 2400)
}


def g_yy(gender: Gender, year: int) -> str:
    """The G and YY digits of a personal ID for this gender and birth year (1900–2399)."""
    return _G_YY[gender, year]


def consistent(c: Citizen) -> bool:
    """Fast `not id_inconsistent(c)`: the ID's G and YY digits agree with the citizen's gender and year."""
    # A year no G digit can express (before 1900) gets None: no ID agrees with it.
    return c.personal_id[3:6] == _G_YY.get((c.gender, c.date_of_birth.year))


def dmy(value: date) -> str:
    """`DD/MM/YYYY`, as Vietnamese forms write a date: a variant every reader of records must accept."""
    return f"{value.day:02d}/{value.month:02d}/{value.year}"


def vary_identity(rng: random.Random, name: str, born: date, gender: str) -> tuple[str, date | str, str]:
    """Name, birth date and gender written with harmless variety in a share of them (three draws of `rng`).

    The name may come NFD, upper case or with extra spaces; the birth date as `DD/MM/YYYY` (a string) or
    left a date; the gender as `Nam`/`Nữ`.
    """
    rand = rng.random
    roll = rand()
    if roll < 0.04:
        name = unicodedata.normalize("NFD", name)
    elif roll < 0.06:
        name = name.upper()
    elif roll < 0.08:
        name = "  " + name.replace(" ", "  ", 1) + " "
    when: date | str = dmy(born) if rand() < 0.25 else born
    if rand() < 0.3:
        gender = "Nam" if gender == "male" else _NU
    return name, when, gender


class RecordMaker:
    """Builds the records of one source (sector, province) from one seeded stream."""

    def __init__(self, rng: random.Random, sector: str, province: str, citizen_ids: frozenset[str]) -> None:
        self.rng = rng
        self.sector = sector
        self.province = province
        self.prefix = f"{sector[:3].upper()}-{province}-"
        self.names = NamePicker()
        # Known IDs, so that a made-up ID is never someone's; grown with every ID made up here.
        self.taken = set(citizen_ids)
        # Unique insurance codes: an affine bijection of the record's position on 8 digits.
        self.code_step = rng.randrange(1, _INSURANCE_SPACE // 10) * 10 + rng.choice((1, 3, 7, 9))
        self.code_shift = rng.randrange(_INSURANCE_SPACE)

    # -- shared parts ------------------------------------------------------------------------------

    def base(self, n: int, personal_id: object, name: str, born: date | str, gender: str) -> dict[str, Any]:
        """A record of position `n` (0-based) with the sector's own fields filled in."""
        rec: dict[str, Any] = {
            "record_id": f"{self.prefix}{n + 1:07d}",
            "sector": self.sector,
            "province": self.province,
            "personal_id": personal_id,
            "full_name": name,
            "date_of_birth": born.isoformat() if isinstance(born, date) else born,
            "gender": gender,
        }
        if self.sector == "insurance":
            serial = (n * self.code_step + self.code_shift) % _INSURANCE_SPACE
            rec["insurance_code"] = f"{self.province[1:]}{serial:08d}"
        elif self.rng.random() < 0.8:
            rec["occupation"] = self.rng.choice(_OCCUPATIONS)
            rec["employment_status"] = self.rng.choice(_EMPLOYMENT)
        return rec

    def varied(self, n: int, c: Citizen, personal_id: str | None = None) -> dict[str, Any]:
        """The citizen as the NPD holds them, written with harmless variety in a share of the fields."""
        name, born, gender = vary_identity(self.rng, c.full_name, c.date_of_birth, c.gender)
        pid = c.personal_id if personal_id is None else personal_id
        if self.rng.random() < 0.003:
            pid = f" {pid} "  # ends are trimmed before any rule looks at an ID
        return self.base(n, pid, name, born, gender)

    def exact(self, n: int, c: Citizen, personal_id: str | None = None) -> dict[str, Any]:
        """The citizen exactly as the NPD holds them."""
        pid = c.personal_id if personal_id is None else personal_id
        return self.base(n, pid, c.full_name, c.date_of_birth, c.gender)

    def _made_up_person(self) -> tuple[str, str, date, Gender]:
        """A plausible person and a well-formed, consistent ID that nobody in the NPD holds."""
        rng = self.rng
        gender: Gender = "male" if rng.random() < 0.5 else "female"
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 73))
        province = self.province if rng.random() < 0.8 else rng.choice(tuple(PROVINCES))
        prefix = f"{province}{g_yy(gender, born.year)}"
        # Serials from 995000 up are never issued by the population generator; the set guards a file.
        pid = f"{prefix}{rng.randrange(995_000, 1_000_000):06d}"
        while pid in self.taken:
            pid = f"{prefix}{rng.randrange(1_000_000):06d}"
        self.taken.add(pid)
        return pid, self.names.full_name(rng, gender), born, gender

    # -- one builder per outcome -------------------------------------------------------------------

    def not_found(self, n: int) -> dict[str, Any]:
        """Rule 5: a well-formed 12-digit ID, consistent with the record's gender and year, held by nobody."""
        pid, name, born, gender = self._made_up_person()
        return self.base(n, pid, name, born, gender)

    def malformed(self, n: int) -> dict[str, Any]:
        """Rule 3: an ID of the wrong length, with a non-digit, or with an unknown province code."""
        pid, name, born, gender = self._made_up_person()
        rng = self.rng
        variant = rng.randrange(7)
        if variant == 0:
            bad = pid[:-1]  # 11 digits
        elif variant == 1:
            bad = pid + str(rng.randrange(10))  # 13 digits
        elif variant == 2:
            bad = pid[:10]  # 10 digits
        elif variant == 3:
            at = rng.randrange(3, 12)
            bad = pid[:at] + rng.choice("OlIS") + pid[at + 1 :]  # a letter typed for a digit
        elif variant == 4:
            bad = f"{pid[:3]} {pid[3:6]} {pid[6:]}"  # grouped with inner spaces
        elif variant == 5:
            bad = f"{pid[:3]}-{pid[3:]}"
        else:
            bad = rng.choice(_UNKNOWN_PROVINCES) + pid[3:]  # "000…", "099…"
        return self.base(n, bad, name, born, gender)

    def missing(self, n: int, c: Citizen) -> dict[str, Any]:
        """Rule 2: one required field absent, empty, null, of the wrong JSON type, or unreadable."""
        rec = self.varied(n, c)
        fields = ["personal_id", "full_name", "date_of_birth", "gender"]
        if self.sector == "insurance":
            fields.append("insurance_code")
        name = self.rng.choice(fields)
        year = c.date_of_birth.year
        spoilt: dict[str, tuple[object, ...]] = {
            "personal_id": ("", "   ", None, int(c.personal_id)),
            "full_name": ("", "   ", None, c.full_name.split()),
            "date_of_birth": (
                f"30/02/{year}",
                f"{year}-13-01",
                f"{c.date_of_birth.day}/2/{year}",
                "",
                19900101,
            ),
            "gender": ("", "X", "không rõ", None, 1),
            "insurance_code": ("", rec.get("insurance_code", "")[:9], None),
        }
        choices = spoilt[name]
        pick = self.rng.randrange(len(choices) + 1)
        if pick == len(choices):
            del rec[name]
        else:
            rec[name] = choices[pick]
        return rec

    def mismatch(self, n: int, c: Citizen) -> dict[str, Any]:
        """Rule 10: a real citizen with a different name (even without diacritics), birth date or gender."""
        rec = self.varied(n, c)
        roll = self.rng.random()
        if roll < 0.5:
            words = c.full_name.split()
            folded = fold_diacritics(c.full_name)
            while fold_diacritics(" ".join(words)) == folded:
                words[-1] = self.names.given_name(self.rng, c.gender)
            rec["full_name"] = " ".join(words)
        elif roll < 0.8:
            shift = self.rng.choice((-1, 1)) * self.rng.randrange(1, 400)
            rec["date_of_birth"] = dmy(c.date_of_birth + timedelta(days=shift))
        else:
            rec["gender"] = "female" if c.gender == "male" else "male"
        return rec

    def name_defect(self, n: int, c: Citizen, kind: str) -> dict[str, Any]:
        """A planted name defect (`connectors.name_defects`), the other fields as for a clean record."""
        rec = self.varied(n, c)
        rec["full_name"] = plant(self.rng, kind, c.full_name, c.gender, self.names)
        return rec

    def no_diacritics(self, n: int, c: Citizen) -> dict[str, Any]:
        """Rule 11: the name typed without diacritics (Đ as D), everything else right."""
        rec = self.exact(n, c)
        rec["full_name"] = strip_diacritics(c.full_name)
        return rec
