"""Vietnamese name parts with realistic frequencies, and a seeded picker of full names."""

from __future__ import annotations

import random
import unicodedata
from bisect import bisect
from itertools import accumulate
from typing import Literal

from schemas.names import strip_diacritics  # re-exported: the generator's callers use it from here

__all__ = ["FAMILY_NAMES", "GIVEN_NAMES", "MIDDLE_NAMES", "NamePicker", "strip_diacritics"]


Gender = Literal["male", "female"]

# Family names and rough shares in percent (Nguyễn ~38%); the tail keeps Tày/Nùng names (Nông, Ma).
FAMILY_NAMES: dict[str, float] = {
    "Nguyễn": 38.0, "Trần": 11.0, "Lê": 9.5, "Phạm": 7.0, "Hoàng": 4.5, "Huỳnh": 1.5, "Phan": 4.5,
    "Vũ": 3.9, "Võ": 2.0, "Đặng": 2.1, "Bùi": 2.0, "Đỗ": 1.4, "Hồ": 1.3, "Ngô": 1.3, "Dương": 1.0,
    "Lý": 0.5, "Đinh": 0.6, "Trịnh": 0.5, "Đào": 0.5, "Đoàn": 0.4, "Mai": 0.4, "Lương": 0.4, "Hà": 0.4,
    "Cao": 0.3, "Nông": 0.3, "Tạ": 0.2, "Lưu": 0.2, "Tô": 0.2, "Lâm": 0.2, "Triệu": 0.2, "Chu": 0.1,
    "Quách": 0.1, "Ma": 0.1, "Hứa": 0.1, "La": 0.1, "Thái": 0.1, "Kiều": 0.1, "Khổng": 0.05, "Vương": 0.1,
}  # fmt: skip

MIDDLE_NAMES: dict[Gender, dict[str, float]] = {
    "male": {
        "Văn": 35, "Đức": 10, "Minh": 10, "Quang": 6, "Hữu": 6, "Công": 5, "Đình": 4, "Xuân": 4, "Thành": 4,
        "Trung": 3, "Ngọc": 3, "Mạnh": 3, "Tiến": 3, "Hoàng": 3, "Thế": 3, "Anh": 2, "Việt": 2, "Trọng": 2,
        "Bá": 2, "Gia": 2, "Tuấn": 1, "Đăng": 1, "Huy": 1,
    },
    "female": {
        "Thị": 45, "Ngọc": 8, "Thu": 6, "Thanh": 5, "Minh": 4, "Phương": 4, "Hồng": 4, "Kim": 3, "Thùy": 3,
        "Bích": 2, "Diệu": 2, "Khánh": 2, "Mai": 2, "Hải": 2, "Bảo": 2, "Hoài": 2, "Quỳnh": 2, "Mỹ": 2,
        "Lan": 1, "Tuyết": 1, "Đoan": 1,
    },
}  # fmt: skip

GIVEN_NAMES: dict[Gender, tuple[str, ...]] = {
    "male": (
        "An", "Anh", "Bảo", "Bình", "Cường", "Chiến", "Công", "Dũng", "Duy", "Dương", "Đạt", "Đức", "Định",
        "Đông", "Đạo", "Điệp", "Giang", "Hải", "Hào", "Hiếu", "Hiệp", "Hoàng", "Hùng", "Huy", "Hưng",
        "Hưởng", "Khang", "Khánh", "Khoa", "Kiên", "Lâm", "Long", "Lộc", "Lực", "Mạnh", "Minh", "Nam",
        "Nghĩa", "Nhân", "Phát", "Phong", "Phúc", "Quang", "Quân", "Quý", "Sơn", "Tài", "Tâm", "Thắng",
        "Thành", "Thiện", "Thịnh", "Toàn", "Trọng", "Trung", "Trường", "Tuấn", "Tùng", "Tú", "Việt",
        "Vinh", "Vũ", "Hậu", "Khải", "Luận", "Nguyên", "Thuận", "Tiến", "Tuyển", "Vượng",
    ),
    "female": (
        "An", "Anh", "Ánh", "Bích", "Châu", "Chi", "Diệp", "Dung", "Duyên", "Giang", "Hà", "Hạnh", "Hằng",
        "Hiền", "Hoa", "Hồng", "Huệ", "Hương", "Hường", "Huyền", "Lan", "Liên", "Linh", "Loan", "Lụa", "Mai",
        "My", "Nga", "Ngân", "Ngọc", "Nhung", "Nhi", "Oanh", "Phương", "Phượng", "Quỳnh", "Tâm", "Thảo",
        "Thắm", "Thanh", "Thơm", "Thủy", "Thúy", "Thư", "Trang", "Trâm", "Tuyết", "Uyên", "Vân", "Vy",
        "Xuân", "Yến", "Đào", "Điệp", "Đoan", "Nguyệt", "Hưởng", "Thoa",
    ),
}  # fmt: skip

# Vietnamese names are usually three words; about one in seven carries a second middle name.
_SECOND_MIDDLE_SHARE = 0.15


def _nfc(words: tuple[str, ...]) -> tuple[str, ...]:
    # The tables are typed in NFC; normalising guards against an editor that decomposes them.
    return tuple(unicodedata.normalize("NFC", w) for w in words)


class _Weighted:
    """Draws from a weighted table with one `random()` and a bisect (faster than `Random.choices`)."""

    def __init__(self, table: dict[str, float]) -> None:
        self.words = _nfc(tuple(table))
        self.cumulative = list(accumulate(table.values()))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random) -> str:
        return self.words[bisect(self.cumulative, rng.random() * self.total)]


class NamePicker:
    """Seeded full names `Family Middle [Middle] Given`, gender-appropriate."""

    def __init__(self) -> None:
        self._family = _Weighted(FAMILY_NAMES)
        self._middle = {g: _Weighted(t) for g, t in MIDDLE_NAMES.items()}
        self._given = {g: _nfc(t) for g, t in GIVEN_NAMES.items()}

    def full_name(self, rng: random.Random, gender: Gender) -> str:
        """A full name drawn from `rng`."""
        middle = self._middle[gender]
        words = [self._family.pick(rng), middle.pick(rng)]
        if rng.random() < _SECOND_MIDDLE_SHARE:
            second = middle.pick(rng)
            if second != words[1]:
                words.append(second)
        given = self._given[gender]
        words.append(given[int(rng.random() * len(given))])
        return " ".join(words)

    def given_name(self, rng: random.Random, gender: Gender) -> str:
        """A given name alone (the last word of a full name)."""
        given = self._given[gender]
        return given[int(rng.random() * len(given))]
