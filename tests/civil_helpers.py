"""Shared test data of the civil-status tests: four citizens of the NPD and a birth and a death
registration naming them. Tests that need a variant copy these (`model_copy`, `{**BIRTH, …}`).

Importable as `civil_helpers`: `tests/conftest.py` puts this folder on `sys.path`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from schemas.citizen import Citizen

__all__ = [
    "BINH",
    "BINH_ID",
    "BINH_LEGACY",
    "BIRTH",
    "DEATH",
    "FATHER",
    "FATHER_ID",
    "LAN",
    "LAN_ID",
    "MOTHER",
    "MOTHER_ID",
]

FATHER_ID = "008085000001"  # male, born 1985
MOTHER_ID = "008187000002"  # female, born 1987
BINH_ID = "052090123456"  # male, born 1990
BINH_LEGACY = "123456789"
LAN_ID = "019192000001"  # female, born 1992


def _citizen(pid: str, name: str, born: date, gender: str, province: str, **more: Any) -> Citizen:
    return Citizen(
        personal_id=pid,
        full_name=name,
        date_of_birth=born,
        gender=gender,
        permanent_province=province,
        **more,
    )


FATHER = _citizen(FATHER_ID, "Nguyễn Văn Đức", date(1985, 3, 4), "male", "008")
MOTHER = _citizen(MOTHER_ID, "Trần Thị Hoa", date(1987, 5, 6), "female", "008")
BINH = _citizen(BINH_ID, "Lê Văn Bình", date(1990, 1, 2), "male", "052", legacy_id=BINH_LEGACY)
LAN = _citizen(LAN_ID, "Phạm Thị Lan", date(1992, 7, 8), "female", "019")

BIRTH: dict[str, Any] = {
    "record_id": "b1",
    "sector": "civil_status",
    "province": "008",
    "event": "birth",
    "event_date": "2024-03-10",
    "registration_no": "KS-2024-001",
    "full_name": "Nguyễn Minh An",
    "date_of_birth": "2024-03-01",
    "gender": "female",
    "father_id": FATHER_ID,
    "mother_id": MOTHER_ID,
}
DEATH: dict[str, Any] = {
    "record_id": "d1",
    "sector": "civil_status",
    "province": "052",
    "event": "death",
    "event_date": "2024-01-15",
    "registration_no": "KT-2024-007",
    "personal_id": BINH_ID,
    "full_name": "Lê Văn Bình",
    "date_of_birth": "1990-01-02",
    "gender": "male",
}
