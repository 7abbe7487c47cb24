"""Vietnamese name normalisation: the harmless forms (NFC, spacing, case) and diacritics folding."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["fold_diacritics", "mask_name", "normalize_name", "strip_diacritics"]

# Đ/đ are letters of their own, not D/d with a combining mark, so NFD leaves them alone.
_D_MAP = str.maketrans({"Đ": "D", "đ": "d"})
# The combining diacritical marks block holds every mark Vietnamese uses; all of it is combining but
# U+034F (the grapheme joiner, combining class 0), which `unicodedata.combining` keeps, so it stays here.
_COMMON_MARKS = re.compile("[\u0300-\u034e\u0350-\u036f]+")


# Both are pure and called for every record's and citizen's name; a name recurs (family names, a
# citizen's several records), so a bounded cache saves most of the Unicode work on the hot path.
@lru_cache(maxsize=65536)
def normalize_name(value: str) -> str:
    """Harmless normalisation: Unicode NFC, ends trimmed, inner white space collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFC", value).split()).casefold()


def strip_diacritics(value: str) -> str:
    """The text as a diacritics-less keyboard writes it, case kept: `Nguyễn Đức` → `Nguyen Duc`."""
    if value.isascii():
        return value
    stripped = _COMMON_MARKS.sub("", unicodedata.normalize("NFD", value.translate(_D_MAP)))
    if stripped.isascii():  # every Vietnamese name ends here
        return stripped
    return "".join(c for c in stripped if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def fold_diacritics(value: str) -> str:
    """`normalize_name` with every diacritic removed (Đ/đ become D/d): `Nguyễn Đức` → `nguyen duc`."""
    return normalize_name(strip_diacritics(value))


def mask_name(value: str) -> str:
    """A form safe for logs: initials only (`Nguyễn Văn An` → `N. V. A.`)."""
    return " ".join(f"{w[0]}." for w in value.split()) or "?"
