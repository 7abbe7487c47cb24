"""The province tables (63 legacy, 34 current, the merger map) and rule 9 (`moved`) under either map."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.citizen import Citizen
from schemas.outcomes import Outcome
from schemas.personal_id import consistent_with, id_shape
from schemas.provinces import (
    CURRENT_PROVINCES,
    MERGED_INTO,
    MERGER_DATE,
    PROVINCES,
    ProvinceMap,
    current_province,
    is_province,
    map_for,
    province_name,
    same_province,
)
from schemas.records import Record, parse_object
from schemas.rules import decide

pytestmark = pytest.mark.unit

LEGACY = ProvinceMap.LEGACY
CURRENT = ProvinceMap.CURRENT

# Decision 19/2025/QĐ-TTg's 34 codes as the decision prints them (two digits).
DECISION_19_CODES = (
    "01", "04", "08", "11", "12", "14", "15", "19", "20", "22", "24", "25", "31", "33", "37", "38", "40",
    "42", "44", "46", "48", "51", "52", "56", "66", "68", "75", "79", "80", "82", "86", "91", "92", "96",
)  # fmt: skip
# Resolution 202/2025/QH15 by name: the current province and the legacy provinces merged into it besides
# its namesake (Lào Cai, Bắc Ninh, Quảng Trị, Gia Lai, Tây Ninh, Đồng Tháp, An Giang took a partner's code).
MERGERS_BY_NAME = {
    "Tuyên Quang": {"Tuyên Quang", "Hà Giang"},
    "Lào Cai": {"Lào Cai", "Yên Bái"},
    "Thái Nguyên": {"Thái Nguyên", "Bắc Kạn"},
    "Phú Thọ": {"Phú Thọ", "Vĩnh Phúc", "Hòa Bình"},
    "Bắc Ninh": {"Bắc Ninh", "Bắc Giang"},
    "Hưng Yên": {"Hưng Yên", "Thái Bình"},
    "Hải Phòng": {"Hải Phòng", "Hải Dương"},
    "Ninh Bình": {"Ninh Bình", "Hà Nam", "Nam Định"},
    "Quảng Trị": {"Quảng Trị", "Quảng Bình"},
    "Đà Nẵng": {"Đà Nẵng", "Quảng Nam"},
    "Quảng Ngãi": {"Quảng Ngãi", "Kon Tum"},
    "Gia Lai": {"Gia Lai", "Bình Định"},
    "Khánh Hòa": {"Khánh Hòa", "Ninh Thuận"},
    "Lâm Đồng": {"Lâm Đồng", "Đắk Nông", "Bình Thuận"},
    "Đắk Lắk": {"Đắk Lắk", "Phú Yên"},
    "Hồ Chí Minh": {"Hồ Chí Minh", "Bình Dương", "Bà Rịa - Vũng Tàu"},
    "Đồng Nai": {"Đồng Nai", "Bình Phước"},
    "Tây Ninh": {"Tây Ninh", "Long An"},
    "Cần Thơ": {"Cần Thơ", "Sóc Trăng", "Hậu Giang"},
    "Vĩnh Long": {"Vĩnh Long", "Bến Tre", "Trà Vinh"},
    "Đồng Tháp": {"Đồng Tháp", "Tiền Giang"},
    "Cà Mau": {"Cà Mau", "Bạc Liêu"},
    "An Giang": {"An Giang", "Kiên Giang"},
}
UNCHANGED = {"Hà Nội", "Cao Bằng", "Điện Biên", "Lai Châu", "Sơn La", "Lạng Sơn", "Quảng Ninh", "Thanh Hóa"}
UNCHANGED |= {"Nghệ An", "Hà Tĩnh"}  # and Huế, which is Thừa Thiên Huế renamed


# ---------------------------------------------------------------- the tables


def test_legacy_table_is_the_63_codes_ids_open_with() -> None:
    assert len(PROVINCES) == 63
    assert all(len(c) == 3 and c.isdigit() for c in PROVINCES)
    assert (
        PROVINCES["002"] == "Hà Giang"
        and PROVINCES["008"] == "Tuyên Quang"
        and PROVINCES["052"] == "Bình Định"
    )


def test_current_codes_are_decision_19s_zero_padded() -> None:
    assert sorted(CURRENT_PROVINCES) == [f"0{c}" for c in DECISION_19_CODES]
    assert len(set(CURRENT_PROVINCES.values())) == 34


def test_map_is_total_and_lands_on_the_34() -> None:
    assert set(MERGED_INTO) == set(PROVINCES)
    assert set(MERGED_INTO.values()) == set(
        CURRENT_PROVINCES
    )  # onto: every current province has a legacy one


def test_map_matches_resolution_202_by_name() -> None:
    by_current: dict[str, set[str]] = {}
    for old, new in MERGED_INTO.items():
        by_current.setdefault(CURRENT_PROVINCES[new], set()).add(PROVINCES[old])
    expected = {**MERGERS_BY_NAME, **{n: {n} for n in UNCHANGED}, "Huế": {"Thừa Thiên Huế"}}
    assert by_current == expected


def test_the_issues_three_examples() -> None:
    assert current_province("002") == "008"  # Tuyên Quang includes the former Hà Giang
    assert current_province("006") == "019"  # Thái Nguyên includes Bắc Kạn
    assert current_province("052") == current_province("064") == "052"  # Bình Định and Gia Lai: Gia Lai
    assert province_name("052", CURRENT) == "Gia Lai" and province_name("052", LEGACY) == "Bình Định"


def test_every_current_code_is_a_legacy_code_of_a_province_merged_into_it() -> None:
    # So a record may name its province by either code: rule 1 accepts both, and both map alike.
    for code in CURRENT_PROVINCES:
        assert is_province(code)
        assert current_province(code) == code


@given(st.sampled_from(sorted(PROVINCES)))
def test_current_province_is_idempotent(code: str) -> None:
    once = current_province(code)
    assert current_province(once) == once


@given(st.text(max_size=5))
def test_unknown_codes_map_to_themselves_and_match_only_themselves(code: str) -> None:
    if code not in PROVINCES:
        assert current_province(code) == code
        assert not same_province(code, "008", CURRENT) or code == "008"
        assert province_name(code, CURRENT) == code == province_name(code, LEGACY)


@given(st.sampled_from(sorted(PROVINCES)), st.sampled_from(sorted(PROVINCES)))
def test_same_province_legacy_is_equality_current_is_the_merger(a: str, b: str) -> None:
    assert same_province(a, b, LEGACY) == (a == b)
    assert same_province(a, b, CURRENT) == (MERGED_INTO[a] == MERGED_INTO[b])


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (None, LEGACY),
        (date(2023, 12, 31), LEGACY),
        (MERGER_DATE - timedelta(days=1), LEGACY),
        (MERGER_DATE, CURRENT),
        (date(2026, 12, 7), CURRENT),
    ],
)
def test_map_for_switches_on_1_july_2025(as_of: date | None, expected: ProvinceMap) -> None:
    assert date(2025, 7, 1) == MERGER_DATE
    assert map_for(as_of) is expected


def test_ids_keep_the_legacy_birth_province_codes() -> None:
    # 002 (Hà Giang) and 064 (Gia Lai) are no current provinces, yet IDs opening with them stay valid.
    for code in ("002", "006", "064", "089"):
        assert code not in CURRENT_PROVINCES
        assert id_shape(f"{code}190000123") == "personal"
        assert consistent_with(f"{code}190000123", "female", 1990)
    assert id_shape("099190000123") == "malformed"  # no province had 099, then or now


# ---------------------------------------------------------------- rule 9 under either map

HA_GIANG_ID = "002085123456"  # born in Hà Giang, male, 1985
RESIDENT: dict[str, Any] = {
    "personal_id": HA_GIANG_ID,
    "full_name": "Vàng Seo Dính",
    "date_of_birth": date(1985, 3, 4),
    "gender": "male",
    "permanent_province": "002",  # permanent residence recorded in (old) Hà Giang
}


def labour(province: str) -> Record:
    parsed = parse_object(
        {
            "record_id": "l1",
            "sector": "labour",
            "province": province,
            "personal_id": HA_GIANG_ID,
            "full_name": "Vàng Seo Dính",
            "date_of_birth": "04/03/1985",
            "gender": "Nam",
        }
    )
    assert isinstance(parsed, Record), parsed
    return parsed


def test_ha_giang_resident_on_a_tuyen_quang_form_moved_under_legacy_not_under_current() -> None:
    resident = Citizen(**RESIDENT)
    assert decide(labour("008"), resident, None).outcome is Outcome.MOVED  # as before (default map)
    assert decide(labour("008"), resident, None, provinces=LEGACY).outcome is Outcome.MOVED
    assert decide(labour("008"), resident, None, provinces=CURRENT).outcome is Outcome.CLEANED


def test_a_form_may_name_the_province_by_either_code() -> None:
    # Residence recorded under the current code, form filed under the legacy one, and the other way round.
    for residence, filed in (("008", "002"), ("002", "008"), ("002", "002"), ("008", "008")):
        resident = Citizen(**(RESIDENT | {"permanent_province": residence}))
        assert decide(labour(filed), resident, None, provinces=CURRENT).outcome is Outcome.CLEANED


def test_a_real_move_is_still_moved_under_current() -> None:
    for residence in ("019", "006", "010"):  # Thái Nguyên, Bắc Kạn (now Thái Nguyên), Lào Cai
        resident = Citizen(**(RESIDENT | {"permanent_province": residence}))
        assert decide(labour("008"), resident, None, provinces=CURRENT).outcome is Outcome.MOVED


def test_the_map_changes_nothing_but_labours_moved() -> None:
    resident = Citizen(**(RESIDENT | {"permanent_province": "019"}))
    record = parse_object(
        {
            "record_id": "i1",
            "sector": "insurance",
            "province": "008",
            "personal_id": HA_GIANG_ID,
            "full_name": "Vang Seo Dinh",
            "date_of_birth": "1985-03-04",
            "gender": "male",
            "insurance_code": "0123456789",
        }
    )
    assert isinstance(record, Record)
    assert decide(record, resident, None, provinces=CURRENT) == decide(record, resident, None)
    assert decide(record, resident, "other", provinces=CURRENT).outcome is Outcome.DUPLICATE


@given(
    residence=st.sampled_from(sorted(PROVINCES)),
    filed=st.sampled_from(sorted(PROVINCES)),
)
def test_moved_is_exactly_a_different_current_province(residence: str, filed: str) -> None:
    resident = Citizen(**(RESIDENT | {"permanent_province": residence}))
    got = decide(labour(filed), resident, None, provinces=CURRENT).outcome
    assert (got is Outcome.MOVED) == (MERGED_INTO[residence] != MERGED_INTO[filed])
    legacy = decide(labour(filed), resident, None).outcome
    assert (legacy is Outcome.MOVED) == (residence != filed)


def test_a_worker_reads_its_date_from_streams_as_of(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.config import StreamsSettings

    assert StreamsSettings().as_of is None
    monkeypatch.setenv("STREAMS_AS_OF", "2026-01-15")
    settings = StreamsSettings()
    assert settings.as_of == date(2026, 1, 15)
    assert map_for(settings.as_of) is CURRENT


def test_a_generated_sources_residents_follow_the_map() -> None:
    from mocks.ndxp.population import generate_population
    from popsync.population import residents

    by: dict[str, list[Citizen]] = {}
    for c in generate_population(3, {"002": 30, "008": 40, "019": 20}):
        by.setdefault(c.permanent_province, []).append(c)
    # legacy: exactly the lists a source was given before the current map existed
    here, elsewhere = residents(by, "008", LEGACY)
    assert here == by["008"] and elsewhere == [*by["002"], *by["019"]]
    here, elsewhere = residents(by, "008", CURRENT)
    assert here == [*by["002"], *by["008"]] and elsewhere == by["019"]
    assert residents(by, "002", CURRENT) == (here, elsewhere)  # either code names the new Tuyên Quang
