"""Shares of Vietnamese name parts in the population: what the generator draws and the name matcher weighs.

The family-name shares follow the published surveys (Nguyễn about 38%, Trần 11%, Lê 9.5%, …); the tail
keeps Tày/Nùng names (Nông, Ma). Middle names are weighted per gender; given names are equally likely
within a gender's list. `schemas.name_match` turns these shares into term-frequency weights (a rare
name agreeing is stronger evidence than Nguyễn agreeing); `connectors.names_vi` draws names from them.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["FAMILY_NAMES", "GIVEN_NAMES", "MIDDLE_NAMES", "Gender"]

Gender = Literal["male", "female"]

# Family names and rough shares in percent.
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
