"""Explainable fuzzy matching of Vietnamese names: per-word levels, term-frequency weights, one score. Pure.

The caller (`schemas.fuzzy_rules`, under `matching: fuzzy`):

    match = match_names(record_name, npd_name)
    match.score           # 0..1; 1.0 exactly when the names are equal after the harmless normalisation
    match.accepted        # score >= THRESHOLD: the same person's name, written with a slip
    match.explanation()   # JSON-ready, no name text: order, and per NPD word its role, level, weight
    match.reading         # the record's own words in the order the NPD writes the name (for the task)

How a score is made (in the spirit of Splink's comparison levels and term-frequency adjustments):

- Both names are normalised (`schemas.names.normalize_name`) and split into words; a word's role is its
  place in its own name: the first is the family name, the last the given name, those between middle.
- Each pair of words gets a level: `exact`; `unaccented` (one side typed without diacritics); `tone`
  (only tone marks differ: Hùng/Hủng); `letter_marks` (the letters' own marks differ: ư/u, ô/o, Đ/D);
  `typo` (one Damerau-Levenshtein edit on the letters, unless each word is a known name in the other's
  role: Thành/Thắng are two given names, not a typo); `typo2` (two edits, words of six letters or
  more); `different`.
- Each word weighs what it tells apart: -log2 of its share in its role (`schemas.name_frequencies`), so
  Nguyễn (38%) weighs 1.4 bits and a given name about 6; a middle name counts half (it is the part most
  often dropped or varied). A pair weighs the lighter of its two words (the commoner reading).
- The words are paired to maximise the score (every pairing for names of up to 6 words), so another word
  order costs only a small factor: `rotated` (the family name moved to the end or the given name to the
  front) or `reversed` 0.97; `shuffled` 0.7, below the threshold (Minh Đức and Đức Minh are two names).
- score = (sum(pair weight x similarity) + credits) / (sum(pair weights) + unpaired words' weights).
  Term frequencies weigh agreement only (as in Splink): an unpaired word weighs its role's fixed
  disagreement weight (family 5, middle 1.5, given 6), so a missing Nguyễn costs as much as a missing
  Khổng. An unpaired middle word earns half its weight back when the other name has no unpaired word
  (a dropped or added middle name, not a replaced one).

The score is symmetric, `match_names(a, b).score == match_names(b, a).score`, for names of up to six words
(every pairing is tried and sums are `math.fsum`, so their order does not matter); longer names, which
no Vietnamese name is, are paired greedily and may differ in a tie. The explanation reads from the second
name's (the NPD's) side.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import permutations
from typing import Any

from schemas.name_frequencies import FAMILY_NAMES, GIVEN_NAMES, MIDDLE_NAMES
from schemas.names import fold_diacritics, normalize_name

__all__ = ["LEVELS", "THRESHOLD", "NameMatch", "damerau_levenshtein", "match_names"]

# Measured on 30,000 planted names of each kind (connectors.name_defects): every tone-mark, order and
# dropped-middle slip scores 0.91 or more, 98% of typos 0.75 or more (the rest are typos in words of two
# letters or typos that land on another real name); no other person's name reached it (their highest
# was 0.74, a typo-like pairing in reversed order; 99.9% are below 0.59).
THRESHOLD = 0.75
# Similarity of each level.
LEVELS: dict[str, float] = {
    "exact": 1.0,
    "unaccented": 0.95,
    "tone": 0.9,
    "letter_marks": 0.85,
    "typo": 0.7,
    "typo_short": 0.5,  # one edit in a word of one or two letters: weak evidence
    "typo2": 0.4,
    "different": 0.0,
}
_ORDER_FACTOR = {"same": 1.0, "rotated": 0.97, "reversed": 0.97, "shuffled": 0.7}
_MIDDLE_CREDIT = 0.5
_MIDDLE_SCALE = 0.5
# Shares assumed for a word the tables do not hold: a rare family name, an uncommon middle or given name.
_UNKNOWN_SHARE = {"family": 0.001, "middle": 0.01, "given": 0.005}
_WEIGHT_SPAN = {"family": (1.0, 10.0), "middle": (0.5, 5.0), "given": (1.0, 10.0)}
# What a word left unpaired weighs, by role. Term frequencies weigh agreement only (as in Splink): a
# missing Nguyễn is as much a disagreement as a missing Khổng.
_DISAGREEMENT = {"family": 5.0, "middle": 1.5, "given": 6.0}
_MAX_EXHAUSTIVE = 6  # words; longer names are paired greedily
# The five tone marks; circumflex, breve and horn are part of the letter (â, ă, ơ, ư) and stay.
_TONES = re.compile("[\u0300\u0301\u0303\u0309\u0323]")


def _shares() -> dict[str, dict[str, float]]:
    family = {normalize_name(w): s / 100 for w, s in FAMILY_NAMES.items()}
    middle: dict[str, float] = {}
    for table in MIDDLE_NAMES.values():
        total = sum(table.values())
        for w, s in table.items():
            key = normalize_name(w)
            middle[key] = middle.get(key, 0.0) + s / total / len(MIDDLE_NAMES)
    given: dict[str, float] = {}
    for words in GIVEN_NAMES.values():
        for w in words:
            key = normalize_name(w)
            given[key] = given.get(key, 0.0) + 1 / len(words) / len(GIVEN_NAMES)
    return {"family": family, "middle": middle, "given": given}


_SHARES = _shares()


def _bits(share: float, role: str) -> float:
    low, high = _WEIGHT_SPAN[role]
    bits = min(high, max(low, -math.log2(share)))
    return bits * _MIDDLE_SCALE if role == "middle" else bits


# Every known word's weight in each role, and the weight of a word the tables do not hold: computed once,
# as the exact path weighs every word of every record's name.
_WEIGHTS = {role: {w: _bits(share, role) for w, share in table.items()} for role, table in _SHARES.items()}
_UNKNOWN_WEIGHT = {role: _bits(share, role) for role, share in _UNKNOWN_SHARE.items()}


def _weight(word: str, role: str) -> float:
    return _WEIGHTS[role].get(word) or _UNKNOWN_WEIGHT[role]


def _role(index: int, count: int) -> str:
    return _roles(count)[index]


# Compared by identity (eq=False): a word is a cache key of `_level`, and hashing six fields per look-up
# cost more than the level itself.
@dataclass(frozen=True, slots=True, eq=False)
class _Word:
    text: str  # normalised (NFC, case folded)
    folded: str  # without any diacritics
    toneless: str  # without tone marks, letters' own marks kept
    marked: bool  # carries any diacritic
    role: str
    weight: float


@lru_cache(maxsize=65536)
def _words(name: str) -> tuple[_Word, ...]:
    texts = normalize_name(name).split()
    out = []
    for i, text in enumerate(texts):
        folded = fold_diacritics(text)
        toneless = unicodedata.normalize("NFC", _TONES.sub("", unicodedata.normalize("NFD", text)))
        role = _role(i, len(texts))
        out.append(_Word(text, folded, toneless, folded != text, role, _weight(text, role)))
    return tuple(out)


def damerau_levenshtein(a: str, b: str, limit: int = 2) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`, at most `limit + 1`.

    The optimal-string-alignment form: no substring is edited twice.
    """
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


@lru_cache(maxsize=262144)
def _level(a: _Word, b: _Word) -> str:
    if a.text == b.text:
        return "exact"
    if a.folded == b.folded:
        if not a.marked or not b.marked:
            return "unaccented"
        return "tone" if a.toneless == b.toneless else "letter_marks"
    if a.text in _SHARES[b.role] and b.text in _SHARES[a.role]:
        return "different"  # two names people are given (Thành, Thắng), not one mistyped
    x, y = a.folded, b.folded
    if _one_edit(x, y):
        return "typo" if max(len(x), len(y)) >= 3 else "typo_short"
    if min(len(x), len(y)) >= 6 and damerau_levenshtein(x, y) == 2:
        return "typo2"
    return "different"


def _one_edit(a: str, b: str) -> bool:
    """`damerau_levenshtein(a, b) == 1` for different words, in one pass (most pairs are far apart)."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1:
        return False
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        if a[i + 1 :] == b[i + 1 :]:
            return True  # one letter replaced
        return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    return a[i:] == b[i + 1 :]  # one letter inserted


def _order(pairs: list[tuple[int, int]]) -> str:
    """How the paired words' order differs: the second name's positions read in the first's order."""
    if len(pairs) < 2:
        return "same"
    seq = [j for _, j in sorted(pairs)]
    ranks = {v: r for r, v in enumerate(sorted(seq))}
    seq = [ranks[v] for v in seq]
    n = len(seq)
    if seq == list(range(n)):
        return "same"
    if seq == list(range(n - 1, -1, -1)) and n > 2:
        return "reversed"
    start = seq[0]
    if seq == [(start + k) % n for k in range(n)]:
        return "rotated"
    return "shuffled"


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and a match is made for every
# record whose name is compared. Treat it as read-only.
@dataclass(slots=True, eq=False)
class NameMatch:
    """The score of a record's name against the NPD's, and how it was reached."""

    score: float
    order: str
    # Per NPD word: (role, level, similarity or credit, weight); then per unpaired record word
    # ("extra", "extra", credit, weight).
    tokens: tuple[tuple[str, str, float, float], ...]
    reading: str
    # `explanation()`'s value, made once with the match (a match of an equal name is cached per name).
    explained: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.explained = _explain(self.score, self.order, self.tokens)

    @property
    def accepted(self) -> bool:
        """The same person's name, written with a slip the matcher recognises."""
        return self.score >= THRESHOLD

    def explanation(self) -> dict[str, Any]:
        """JSON-ready and free of name text: safe in results and metrics-like outputs.

        Shared between equal matches (cached): read it, copy it before changing it.
        """
        return self.explained


# Most names are equal to the NPD's, and names of equal shape (roles and weights) explain alike.
@lru_cache(maxsize=16384)
def _explain(score: float, order: str, tokens: tuple[tuple[str, str, float, float], ...]) -> dict[str, Any]:
    return {
        "score": score,
        "threshold": THRESHOLD,
        "accepted": score >= THRESHOLD,
        "order": order,
        "tokens": [
            {"role": role, "level": level, "similarity": sim, "weight": weight}
            for role, level, sim, weight in tokens
        ],
    }


# role → word → its token in an exact match's explanation: plain dicts (an lru_cache of two arguments costs
# more than the look-up); bounded, as a population's words are few (names repeat their words).
_EXACT_TOKENS: dict[str, dict[str, tuple[str, str, float, float]]] = {"family": {}, "middle": {}, "given": {}}
_EXACT_TOKENS_MAX = 50_000


def _exact_token(text: str, role: str) -> tuple[str, str, float, float]:
    tokens = _EXACT_TOKENS[role]
    token = tokens.get(text)
    if token is None:
        token = (role, "exact", 1.0, round(_weight(text, role), 2))
        if len(tokens) < _EXACT_TOKENS_MAX:
            tokens[text] = token
    return token


@lru_cache(maxsize=64)
def _roles(count: int) -> tuple[str, ...]:
    """The roles of a name's words by place: family, middle…, given (a single word is a given name)."""
    if count < 2:
        return ("given",) * count
    return ("family", *("middle",) * (count - 2), "given")


@lru_cache(maxsize=65536)
def _exact(npd_name: str) -> NameMatch:
    # Called for nearly every record, mostly for names not seen before: word look-ups only.
    texts = normalize_name(npd_name).split()
    tokens = tuple(map(_exact_token, texts, _roles(len(texts))))
    return NameMatch(1.0, "same", tokens, npd_name)  # the reading of an equal name: the NPD's own


def match_names(record_name: str, npd_name: str) -> NameMatch:
    """Score `record_name` against `npd_name` (symmetric in the score); never raises on any strings."""
    if record_name == npd_name or normalize_name(record_name) == normalize_name(npd_name):
        return _exact(npd_name)
    rec, npd = _words(record_name), _words(npd_name)
    if not rec or not npd:
        tokens = tuple((w.role, "missing", 0.0, _DISAGREEMENT[w.role]) for w in npd)
        tokens += tuple(("extra", "extra", 0.0, _DISAGREEMENT[w.role]) for w in rec)
        return NameMatch(0.0, "same", tokens, "")
    pairs, order, score = _best_pairing(rec, npd)
    return _build(record_name, rec, npd, pairs, order, score)


def _pair_terms(
    rec: tuple[_Word, ...], npd: tuple[_Word, ...], pairs: list[tuple[int, int]]
) -> tuple[list[float], list[float]]:
    """Numerator and denominator terms of a pairing (pairs of positive similarity only)."""
    num: list[float] = []
    den: list[float] = []
    paired_r = {i for i, _ in pairs}
    paired_n = {j for _, j in pairs}
    for i, j in pairs:
        weight = min(rec[i].weight, npd[j].weight)
        num.append(weight * LEVELS[_level(rec[i], npd[j])])
        den.append(weight)
    loose_r = [w for i, w in enumerate(rec) if i not in paired_r]
    loose_n = [w for j, w in enumerate(npd) if j not in paired_n]
    for mine, theirs in ((loose_r, loose_n), (loose_n, loose_r)):
        for w in mine:
            weight = _DISAGREEMENT[w.role]
            den.append(weight)
            if w.role == "middle" and not theirs:
                num.append(weight * _MIDDLE_CREDIT)
    return num, den


def _score(rec: tuple[_Word, ...], npd: tuple[_Word, ...], pairs: list[tuple[int, int]]) -> tuple[float, str]:
    num, den = _pair_terms(rec, npd, pairs)
    order = _order(pairs)
    total = math.fsum(den)
    return (math.fsum(num) / total * _ORDER_FACTOR[order] if total > 0 else 0.0), order


def _best_pairing(rec: tuple[_Word, ...], npd: tuple[_Word, ...]) -> tuple[list[tuple[int, int]], str, float]:
    sims = [[LEVELS[_level(r, n)] for n in npd] for r in rec]
    best: tuple[float, list[tuple[int, int]], str] = (-1.0, [], "same")
    if len(rec) == len(npd) and not any(
        sims[i][j] for i in range(len(rec)) for j in range(len(npd)) if i != j
    ):
        # Word for word (a slip of marks or letters, another given name): the diagonal is the best pairing,
        # as adding a pair in the same order never lowers a score (its weight is at most what its two
        # unpaired words weigh).
        diagonal = [(i, i) for i in range(len(rec)) if sims[i][i] > 0]
        score, order = _score(rec, npd, diagonal)
        return diagonal, order, score
    if max(len(rec), len(npd)) <= _MAX_EXHAUSTIVE:
        # Rank every pairing by plain sums (fast); the winner's score is then made with `_score` (fsum).
        weights = [[min(r.weight, n.weight) for n in npd] for r in rec]
        loose_r = [(_DISAGREEMENT[w.role], w.role == "middle") for w in rec]
        loose_n = [(_DISAGREEMENT[w.role], w.role == "middle") for w in npd]
        if len(rec) <= len(npd):
            perms = (list(enumerate(p)) for p in permutations(range(len(npd)), len(rec)))
        else:
            perms = ([(i, j) for j, i in enumerate(p)] for p in permutations(range(len(rec)), len(npd)))
        seen: set[tuple[tuple[int, int], ...]] = set()
        for perm in perms:
            pairs = tuple(sorted((i, j) for i, j in perm if sims[i][j] > 0))
            if pairs in seen:  # the same pairs of positive similarity: the same score
                continue
            seen.add(pairs)
            num = den = 0.0
            for i, j in pairs:
                den += weights[i][j]
                num += weights[i][j] * sims[i][j]
            paired_r = {i for i, _ in pairs}
            paired_n = {j for _, j in pairs}
            open_r = [loose_r[i] for i in range(len(rec)) if i not in paired_r]
            open_n = [loose_n[j] for j in range(len(npd)) if j not in paired_n]
            for mine, theirs in ((open_r, open_n), (open_n, open_r)):
                for weight, middle in mine:
                    den += weight
                    if middle and not theirs:
                        num += weight * _MIDDLE_CREDIT
            order = _order(list(pairs))
            score = num / den * _ORDER_FACTOR[order] if den > 0 else 0.0
            # Ties go to the earlier pairing (the identity comes first): deterministic either way round.
            if score > best[0] + 1e-9:
                best = (score, list(pairs), order)
        score, order = _score(rec, npd, best[1])
        return best[1], order, score
    else:
        ranked = sorted(
            (
                (min(r.weight, n.weight) * sims[i][j], i, j)
                for i, r in enumerate(rec)
                for j, n in enumerate(npd)
            ),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        used_r: set[int] = set()
        used_n: set[int] = set()
        greedy: list[tuple[int, int]] = []
        for value, i, j in ranked:
            if value > 0 and i not in used_r and j not in used_n:
                greedy.append((i, j))
                used_r.add(i)
                used_n.add(j)
        score, order = _score(rec, npd, greedy)
        best = (score, greedy, order)
    return best[1], best[2], best[0]


def _build(
    record_name: str,
    rec: tuple[_Word, ...],
    npd: tuple[_Word, ...],
    pairs: list[tuple[int, int]],
    order: str,
    score: float,
) -> NameMatch:
    by_npd = {j: i for i, j in pairs}
    loose_r = [i for i in range(len(rec)) if i not in {p[0] for p in pairs}]
    loose_n = [j for j in range(len(npd)) if j not in by_npd]
    written = " ".join(unicodedata.normalize("NFC", record_name).split()).split(" ")
    tokens: list[tuple[str, str, float, float]] = []
    reading: list[str] = []
    # The reading: the record's words where the NPD has theirs; an unpaired one takes the place of an
    # unpaired NPD word of its role (a replaced given name stays last), the others follow.
    unread = list(loose_r)
    for j, n in enumerate(npd):
        if j in by_npd:
            i = by_npd[j]
            level = _level(rec[i], n)
            tokens.append((n.role, level, LEVELS[level], round(min(rec[i].weight, n.weight), 2)))
            reading.append(written[i])
        else:
            credit = _MIDDLE_CREDIT if n.role == "middle" and not loose_r else 0.0
            tokens.append((n.role, "missing", credit, _DISAGREEMENT[n.role]))
            same_role = next((i for i in unread if rec[i].role == n.role), None)
            if same_role is not None:
                unread.remove(same_role)
                reading.append(written[same_role])
    for i in loose_r:
        credit = _MIDDLE_CREDIT if rec[i].role == "middle" and not loose_n else 0.0
        tokens.append(("extra", "extra", credit, _DISAGREEMENT[rec[i].role]))
    reading.extend(written[i] for i in unread)
    # A perfect score is kept for names equal after normalisation (they never get here).
    value = min(round(score, 4), 0.9999)
    return NameMatch(value, order, tuple(tokens), " ".join(reading))
