"""Vietnamese name parts with realistic frequencies, and a seeded picker of full names."""

from __future__ import annotations

import random
import unicodedata
from bisect import bisect
from itertools import accumulate

from schemas.name_frequencies import FAMILY_NAMES, GIVEN_NAMES, MIDDLE_NAMES, Gender
from schemas.names import strip_diacritics  # re-exported: the generator's callers use it from here

# The tables live in schemas (the name matcher weighs by them); re-exported for the generator's callers.
__all__ = ["FAMILY_NAMES", "GIVEN_NAMES", "MIDDLE_NAMES", "Gender", "NamePicker", "strip_diacritics"]


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
