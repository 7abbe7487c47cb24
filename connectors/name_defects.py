"""Planted name defects: the same person's name written with a slip, or another person's name. Ground truth.

A source's `generate.names` block asks for exact numbers of each kind; `simulate` then knows, for every
planted record, whether its name is the citizen's (typo, tone_mark, order, dropped_middle) or not
(different_person), and measures the matcher's precision and recall against that.

| kind | the record's name | exact rules | fuzzy |
|---|---|---|---|
| `typo` | one slip: a neighbouring key, a letter dropped, doubled or swapped | mismatch | corrected |
| `tone_mark` | one word's tone mark changed, removed or added (Hùng → Hủng) | corrected | corrected |
| `order` | family name last, given name first, or all reversed | mismatch | corrected |
| `dropped_middle` | one middle name left out | mismatch | corrected |
| `different_person` | another person's name (half keep the family name: a relative) | mismatch | mismatch |

A slip is planted without asking the matcher: a typo may land on another real name (Anh → An), and the
matcher is then expected to miss it. A different person's given name differs from the citizen's even
without diacritics (Thủy/Thúy differ only in a tone mark, which the exact rules already accept).
"""

from __future__ import annotations

import random
import unicodedata

from connectors.names_vi import Gender, NamePicker
from schemas.names import fold_diacritics

__all__ = ["NAME_KINDS", "SAME_PERSON_KINDS", "plant"]

# In the order a `generate.names` block lists them; kinds in `kinds_out` carry the `name_` prefix.
NAME_KINDS = ("typo", "tone_mark", "order", "dropped_middle", "different_person")
SAME_PERSON_KINDS = frozenset(NAME_KINDS) - {"different_person"}

_TONES = ("\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
_VOWELS = frozenset("aeiouy")
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _key in enumerate(_row):
        near = [_row[k] for k in (_c - 1, _c + 1) if 0 <= k < len(_row)]
        near += [_ROWS[r][_c] for r in (_r - 1, _r + 1) if 0 <= r < 3 and _c < len(_ROWS[r])]
        _NEIGHBOURS[_key] = "".join(near)


def plant(rng: random.Random, kind: str, name: str, gender: Gender, picker: NamePicker) -> str:
    """The citizen's `name` with a defect of `kind` (one of NAME_KINDS); raises ValueError if it cannot
    carry one (fewer than three words for `dropped_middle`)."""
    words = name.split()
    if kind == "typo":
        return _typo(rng, words)
    if kind == "tone_mark":
        return _tone(rng, words)
    if kind == "order":
        return _order(rng, words)
    if kind == "dropped_middle":
        if len(words) < 3:
            raise ValueError("a name of fewer than three words has no middle name to drop")
        del words[rng.randrange(1, len(words) - 1)]
        return " ".join(words)
    if kind == "different_person":
        return _other(rng, words, gender, picker)
    raise ValueError(f"unknown name defect {kind!r}; kinds: {', '.join(NAME_KINDS)}")


def _pick_word(rng: random.Random, words: list[str]) -> int:
    """A word's index: the given name half the time, the family name a quarter, a middle one the rest."""
    roll = rng.random()
    if roll < 0.5 or len(words) == 1:
        return len(words) - 1
    if roll < 0.75 or len(words) == 2:
        return 0
    return rng.randrange(1, len(words) - 1)


def _typo(rng: random.Random, words: list[str]) -> str:
    at = _pick_word(rng, words)
    word = words[at]
    for _ in range(50):
        chars = list(word)
        i = rng.randrange(len(chars))
        op = rng.randrange(4)
        base = fold_diacritics(chars[i])
        if op == 0 and base in _NEIGHBOURS:  # a neighbouring key (the letter loses its marks)
            key = rng.choice(_NEIGHBOURS[base])
            chars[i] = key.upper() if chars[i].isupper() else key
        elif op == 1 and len(chars) > 1:  # a letter dropped
            del chars[i]
        elif op == 2:  # a letter typed twice
            chars.insert(i + 1, chars[i].lower())
        elif op == 3 and i + 1 < len(chars) and chars[i] != chars[i + 1]:  # two letters swapped
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
            if i == 0:
                chars[0], chars[1] = chars[0].upper(), chars[1].lower()
        else:
            continue
        typed = "".join(chars)
        if fold_diacritics(typed) != fold_diacritics(word):  # a slip of the letters, not of the marks
            words[at] = typed
            return " ".join(words)
    raise ValueError("no typo found for this word")  # not reached for any word of a letter or more


def _tone(rng: random.Random, words: list[str]) -> str:
    candidates = [i for i, w in enumerate(words) if set(fold_diacritics(w).lower()) & _VOWELS]
    if not candidates:
        raise ValueError("a name without vowels carries no tone mark")
    at = rng.choice(candidates)
    decomposed = unicodedata.normalize("NFD", words[at])
    present = [t for t in _TONES if t in decomposed]
    if present:
        tone = present[0]
        others = [t for t in _TONES if t != tone] + [""]
        changed = decomposed.replace(tone, rng.choice(others), 1)
    else:
        # After a vowel and the marks of its letter (â, ơ, ư), where Vietnamese writes a tone.
        spots = [
            i + 1
            for i, ch in enumerate(decomposed)
            if ch.lower() in _VOWELS
            and (i + 1 == len(decomposed) or not unicodedata.combining(decomposed[i + 1]))
        ]
        spots += [
            i + 1
            for i, ch in enumerate(decomposed)
            if unicodedata.combining(ch) and i > 0 and decomposed[i - 1].lower() in _VOWELS
        ]
        spot = rng.choice(spots)
        changed = decomposed[:spot] + rng.choice(_TONES) + decomposed[spot:]
    words[at] = unicodedata.normalize("NFC", changed)
    return " ".join(words)


def _order(rng: random.Random, words: list[str]) -> str:
    if len(set(words)) < 2:
        raise ValueError("a name of one repeated word has no other order")
    roll = rng.random()
    if roll < 0.5:
        reordered = [*words[1:], words[0]]  # the family name last, as Western forms ask
    elif roll < 0.75:
        reordered = [words[-1], *words[:-1]]  # the given name first
    else:
        reordered = words[::-1]
    if reordered == words:
        reordered = [*words[1:], words[0]]
    return " ".join(reordered)


def _other(rng: random.Random, words: list[str], gender: Gender, picker: NamePicker) -> str:
    own_given = fold_diacritics(words[-1])
    for _ in range(100):
        drawn = picker.full_name(rng, gender).split()
        if rng.random() < 0.5:
            drawn[0] = words[0]  # a relative: the same family name
        if fold_diacritics(drawn[-1]) != own_given:
            return " ".join(drawn)
    raise ValueError("no other given name found")  # not reached with the name tables' dozens of names
