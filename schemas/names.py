"""Vietnamese name normalisation: the harmless forms (NFC, spacing, case) and diacritics folding."""

from __future__ import annotations

import unicodedata

__all__ = ["fold_diacritics", "mask_name", "normalize_name", "strip_diacritics"]

# Đ/đ are letters of their own, not D/d with a combining mark, so NFD leaves them alone.
_D_MAP = str.maketrans({"Đ": "D", "đ": "d"})


def normalize_name(value: str) -> str:
    """Harmless normalisation: Unicode NFC, ends trimmed, inner white space collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFC", value).split()).casefold()


def strip_diacritics(value: str) -> str:
    """The text as a diacritics-less keyboard writes it, case kept: `Nguyễn Đức` → `Nguyen Duc`."""
    decomposed = unicodedata.normalize("NFD", value.translate(_D_MAP))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold_diacritics(value: str) -> str:
    """`normalize_name` with every diacritic removed (Đ/đ become D/d): `Nguyễn Đức` → `nguyen duc`."""
    return normalize_name(strip_diacritics(value))


def mask_name(value: str) -> str:
    """A form safe for logs: initials only (`Nguyễn Văn An` → `N. V. A.`)."""
    return " ".join(f"{w[0]}." for w in value.split()) or "?"
