"""Province codes: the 63 legacy ones that open a personal ID, and the 34 provinces in force since 2025-07-01.

Where the tables come from:
- `PROVINCES` (legacy): the national statistics office's 63 province codes, zero-padded to three digits,
  as they stood before the 2025 merger. Personal IDs keep these codes whatever the map does later.
- `CURRENT_PROVINCES`: Decision 19/2025/QĐ-TTg (Bảng danh mục và mã số các đơn vị hành chính Việt Nam,
  effective 2025-07-01; https://datafiles.chinhphu.vn/cpp/files/vbpq/2025/7/19ttg.signed.pdf), its
  two-digit province codes zero-padded to three as popsync writes every province code.
- `MERGED_INTO` (legacy → current): Resolution 202/2025/QH15 (12 June 2025) on the arrangement of
  province-level units, which merges whole provinces (no legacy province is split).
Cross-checked, 2026-12-07, against public copies of both texts: the 34 codes against three independent
datasets that cite Decision 19/2025/QĐ-TTg (a migration quoting the decision's PDF, a TypeScript
province list, and open-admin-data/vietnam-administrative-divisions, whose `tuyen-quang-08` holds the
communes of old Hà Giang, e.g. Đồng Văn 00721); the merger map against three independent transcriptions of
Resolution 202/2025/QH15. Note the codes are not always the namesake's old code: the decision gave the
new Lào Cai Yên Bái's 15, Bắc Ninh Bắc Giang's 24, Quảng Trị Quảng Bình's 44, Gia Lai Bình Định's 52,
Tây Ninh Long An's 80, Đồng Tháp Tiền Giang's 82 and An Giang Kiên Giang's 91. Each current code is
therefore also a legacy code, of a province merged into that current one: `current_province` maps a code
written either way to the same current province.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

__all__ = [
    "CURRENT_PROVINCES",
    "LEGACY_PROVINCES",
    "MERGED_INTO",
    "MERGER_DATE",
    "PROVINCES",
    "ProvinceMap",
    "current_province",
    "is_province",
    "map_for",
    "province_name",
    "same_province",
]

# Codes and names as the national statistics office lists them before the 2025 merger; the personal ID
# keeps these codes whatever the administrative map does later.
PROVINCES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh",
    "086": "Vĩnh Long", "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}  # fmt: skip
LEGACY_PROVINCES = PROVINCES

# Decision 19/2025/QĐ-TTg's code and name of each current province, and (Resolution 202/2025/QH15) the
# legacy provinces it was formed from; the 11 provinces the resolution left alone list only themselves.
_CURRENT: dict[str, tuple[str, tuple[str, ...]]] = {
    "001": ("Hà Nội", ("001",)),
    "004": ("Cao Bằng", ("004",)),
    "008": ("Tuyên Quang", ("008", "002")),
    "011": ("Điện Biên", ("011",)),
    "012": ("Lai Châu", ("012",)),
    "014": ("Sơn La", ("014",)),
    "015": ("Lào Cai", ("010", "015")),
    "019": ("Thái Nguyên", ("019", "006")),
    "020": ("Lạng Sơn", ("020",)),
    "022": ("Quảng Ninh", ("022",)),
    "024": ("Bắc Ninh", ("027", "024")),
    "025": ("Phú Thọ", ("025", "026", "017")),
    "031": ("Hải Phòng", ("031", "030")),
    "033": ("Hưng Yên", ("033", "034")),
    "037": ("Ninh Bình", ("037", "035", "036")),
    "038": ("Thanh Hóa", ("038",)),
    "040": ("Nghệ An", ("040",)),
    "042": ("Hà Tĩnh", ("042",)),
    "044": ("Quảng Trị", ("045", "044")),
    "046": ("Huế", ("046",)),
    "048": ("Đà Nẵng", ("048", "049")),
    "051": ("Quảng Ngãi", ("051", "062")),
    "052": ("Gia Lai", ("064", "052")),
    "056": ("Khánh Hòa", ("056", "058")),
    "066": ("Đắk Lắk", ("066", "054")),
    "068": ("Lâm Đồng", ("068", "067", "060")),
    "075": ("Đồng Nai", ("075", "070")),
    "079": ("Hồ Chí Minh", ("079", "074", "077")),
    "080": ("Tây Ninh", ("072", "080")),
    "082": ("Đồng Tháp", ("087", "082")),
    "086": ("Vĩnh Long", ("086", "083", "084")),
    "091": ("An Giang", ("089", "091")),
    "092": ("Cần Thơ", ("092", "094", "093")),
    "096": ("Cà Mau", ("096", "095")),
}
CURRENT_PROVINCES: dict[str, str] = {code: name for code, (name, _) in _CURRENT.items()}
MERGED_INTO: dict[str, str] = {old: code for code, (_, olds) in _CURRENT.items() for old in olds}
MERGER_DATE = date(2025, 7, 1)  # the new provinces' local governments operate from this day

# A wrong table would silently misjudge IDs and residences: refuse to import one.
assert len(PROVINCES) == 63
assert len(CURRENT_PROVINCES) == 34
assert sorted(MERGED_INTO) == sorted(PROVINCES)  # total, and each legacy province in one current one
assert sum(len(olds) for _, olds in _CURRENT.values()) == 63
assert all(MERGED_INTO[code] == code for code in CURRENT_PROVINCES)  # a current code maps to itself


class ProvinceMap(StrEnum):
    """Which provinces a residence comparison or a report uses: the 63 legacy or the 34 current ones."""

    LEGACY = "legacy"
    CURRENT = "current"


def map_for(as_of: date | None) -> ProvinceMap:
    """The map in force on `as_of`: current from MERGER_DATE on; legacy before it or without a date."""
    return ProvinceMap.CURRENT if as_of is not None and as_of >= MERGER_DATE else ProvinceMap.LEGACY


def is_province(code: object) -> bool:
    """True when `code` is exactly one of the 63 three-digit province codes (no trimming).

    Every current code is one of them too, so a record naming its province by either code passes."""
    return isinstance(code, str) and code in PROVINCES


def current_province(code: str) -> str:
    """The current province a legacy or current code lies in (`"002"` → `"008"`); an unknown code as is."""
    return MERGED_INTO.get(code, code)


def same_province(a: str, b: str, provinces: ProvinceMap = ProvinceMap.LEGACY) -> bool:
    """Whether two province codes name the same province under `provinces` (legacy: the same code)."""
    return a == b or (provinces is ProvinceMap.CURRENT and current_province(a) == current_province(b))


def province_name(code: str, provinces: ProvinceMap = ProvinceMap.LEGACY) -> str:
    """Vietnamese name of a province code under `provinces`, or the code itself when unknown."""
    if provinces is ProvinceMap.CURRENT:
        return CURRENT_PROVINCES.get(current_province(code), code)
    return PROVINCES.get(code, code)
