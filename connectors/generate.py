"""Generated sector records with exact counts of each defect (a scenario source's `generate:` block).

Applied in publish order, the outcome rules of CONTRACT.md turn the records of
`generate_records(spec, ...)` into exactly `spec.unsynced.<kind>` records of each `unsynced/<kind>`,
`no_diacritics + legacy_id` records `corrected` and the rest `cleaned`. Each defect is built to hit its
own rule and no earlier one (`connectors.defects`); every record that gets past rule 6 names a citizen
no other record of the source names, so only the planned duplicates are duplicates.

Errors: `GenerateError` (a `ConnectorError`) when the population cannot supply what a spec asks.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.defects import RecordMaker, consistent
from connectors.exceptions import ConnectorError
from connectors.name_defects import NAME_KINDS
from connectors.names_vi import strip_diacritics
from schemas.citizen import Citizen
from schemas.names import fold_diacritics
from schemas.provinces import ProvinceMap, is_province, same_province

__all__ = ["CorrectedCounts", "GenerateError", "GenerateSpec", "UnsyncedCounts", "generate_records"]
__all__ += ["NAME_PREFIX", "NameDefectCounts", "planted_names", "write_records"]

Count = Annotated[int, Field(ge=0, strict=True)]
_SECTORS = ("insurance", "labour")
# A planted name defect's kind in `kinds_out`: `name_typo`, `name_different_person`, …
NAME_PREFIX = "name_"
_VOWELS = frozenset("aeiouy")


class GenerateError(ConnectorError):
    """The population cannot supply the records a `generate:` block asks for, or the block is unusable."""


class _Block(BaseModel):
    """A mapping of known keys only: an unknown key is named together with the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                allowed = ", ".join(cls.model_fields)
                raise ValueError(f"unknown key {unknown[0]!r} in {cls._where}; allowed keys: {allowed}")
        return data

    _where: ClassVar[str] = "generate"


class UnsyncedCounts(_Block):
    """How many records of each `unsynced/<kind>` outcome to generate."""

    _where: ClassVar[str] = "generate.unsynced"
    mismatch: Count = 0
    not_found: Count = 0
    malformed_id: Count = 0
    missing_fields: Count = 0
    deceased: Count = 0
    duplicate: Count = 0
    moved: Count = 0


class CorrectedCounts(_Block):
    """How many `corrected` records of each correction to generate."""

    _where: ClassVar[str] = "generate.corrected"
    no_diacritics: Count = 0
    legacy_id: Count = 0


class NameDefectCounts(_Block):
    """How many records of each planted name defect to generate (`connectors.name_defects`)."""

    _where: ClassVar[str] = "generate.names"
    typo: Count = 0
    tone_mark: Count = 0
    order: Count = 0
    dropped_middle: Count = 0
    different_person: Count = 0


class GenerateSpec(_Block):
    """A scenario source's `generate:` block: total records and the count of each defect."""

    records: Count
    unsynced: UnsyncedCounts = UnsyncedCounts()
    corrected: CorrectedCounts = CorrectedCounts()
    # Planted name defects: the matcher's ground truth (their outcome depends on the scenario's matching).
    names: NameDefectCounts = NameDefectCounts()

    @model_validator(mode="after")
    def _defects_fit(self) -> GenerateSpec:
        if self.defects > self.records:
            raise ValueError(
                f"unsynced and corrected counts add up to {self.defects}, more than records "
                f"({self.records}); raise records or lower the counts"
            )
        return self

    @property
    def defects(self) -> int:
        """Every record that is not to end `cleaned`."""
        counts: dict[str, int] = {**self.unsynced.model_dump(), **self.corrected.model_dump()}
        names: dict[str, int] = self.names.model_dump()
        return sum(counts.values()) + sum(names.values())

    @property
    def clean(self) -> int:
        """Records that are to end `cleaned`."""
        return self.records - self.defects


def _short(what: str, have: int, need: int, advice: str) -> str:
    return f"{what}: needs {need:,}, the population has {have:,} (short by {need - have:,}); {advice}"


class _Draw:
    """The citizens one source's records name, drawn without repetition from the seeded stream."""

    def __init__(
        self,
        rng: random.Random,
        spec: GenerateSpec,
        where: str,
        sector: str,
        province: str,
        citizens: Sequence[Citizen],
        other_citizens: Sequence[Citizen],
        provinces: ProvinceMap = ProvinceMap.LEGACY,
    ) -> None:
        u, k = spec.unsynced, spec.corrected
        names_need = sum(spec.names.model_dump().values())
        alive: list[Citizen] = []
        deceased: list[Citizen] = []
        inconsistent: list[Citizen] = []
        for c in citizens:
            if not consistent(c):
                inconsistent.append(c)
            elif c.deceased:
                deceased.append(c)
            elif sector != "labour" or same_province(c.permanent_province, province, provinces):
                alive.append(c)
        more = f"generate more population for {province} or lower the counts of {where}"
        problems: list[str] = []
        rng.shuffle(alive)
        general_need = spec.clean + u.mismatch + u.missing_fields
        # A legacy ID two citizens share cannot be mapped (a population file may hold such a pair).
        legacy_counts = Counter(
            c.legacy_id for c in chain(citizens, other_citizens) if k.legacy_id and c.legacy_id
        )
        self.general: list[Citizen] = []
        self.legacy: list[Citizen] = []
        self.no_diacritics: list[Citizen] = []
        self.named: list[Citizen] = []  # planted name defects: names of three words or more
        # Scarce kinds first: a citizen with a legacy ID or a name with diacritics serves those, until
        # they are served; the rest of the shuffled list then serves the general need in one slice.
        rest = len(alive)
        for i, c in enumerate(alive):
            if (
                len(self.legacy) >= k.legacy_id
                and len(self.no_diacritics) >= k.no_diacritics
                and len(self.named) >= names_need
            ):
                rest = i
                break
            if len(self.legacy) < k.legacy_id and c.legacy_id and legacy_counts[c.legacy_id] == 1:
                self.legacy.append(c)
            elif len(self.no_diacritics) < k.no_diacritics and strip_diacritics(c.full_name) != c.full_name:
                self.no_diacritics.append(c)
            elif len(self.named) < names_need and _plantable(c.full_name):
                self.named.append(c)
            elif len(self.general) < general_need:
                self.general.append(c)
        self.general.extend(alive[rest : rest + general_need - len(self.general)])
        if len(self.general) < general_need:
            problems.append(
                _short(
                    f"distinct alive citizens of {province} for {spec.clean:,} cleaned, {u.mismatch:,} "
                    f"mismatch and {u.missing_fields:,} missing_fields records",
                    len(self.general),
                    general_need,
                    more,
                )
            )
        if len(self.legacy) < k.legacy_id:
            problems.append(
                _short("alive citizens with a legacy ID (legacy_id)", len(self.legacy), k.legacy_id, more)
            )
        if len(self.no_diacritics) < k.no_diacritics:
            what = "alive citizens with diacritics in their name (no_diacritics)"
            problems.append(_short(what, len(self.no_diacritics), k.no_diacritics, more))
        if len(self.named) < names_need:
            what = "alive citizens with a name of three words or more (names)"
            problems.append(_short(what, len(self.named), names_need, more))
        if len(deceased) < u.deceased:
            problems.append(
                _short(f"deceased citizens of {province} (deceased)", len(deceased), u.deceased, more)
            )
        moved = [
            c
            for c in (other_citizens if u.moved else ())
            if not same_province(c.permanent_province, province, provinces)
            and not c.deceased
            and consistent(c)
        ]
        if len(moved) < u.moved:
            advice = "generate population for another province as well, or lower moved"
            problems.append(_short("alive citizens of other provinces (moved)", len(moved), u.moved, advice))
        if problems:
            raise GenerateError(f"cannot generate the {sector} records of {province}: " + "; ".join(problems))
        self.deceased = rng.sample(deceased, u.deceased)
        self.moved = rng.sample(moved, u.moved)
        # Some malformed IDs are the NPD's own inconsistent ones (rule 6), when the population has them.
        self.inconsistent = rng.sample(inconsistent, min(len(inconsistent), u.malformed_id // 4))


def _plantable(name: str) -> bool:
    """Every name defect can be planted in it: three distinct words or more, with vowels."""
    words = name.split()
    return len(words) >= 3 and len(set(words)) >= 2 and all(set(fold_diacritics(w)) & _VOWELS for w in words)


def _kinds(rng: random.Random, spec: GenerateSpec) -> list[str]:
    """The outcome kind of each position in publish order, shuffled; a clean record precedes any duplicate."""
    counts: dict[str, int] = {**spec.unsynced.model_dump(), **spec.corrected.model_dump()}
    counts.update({f"{NAME_PREFIX}{kind}": n for kind, n in spec.names.model_dump().items()})
    defects = [kind for kind, n in counts.items() for _ in range(n)]
    rng.shuffle(defects)
    # Scatter the few defects over the stream instead of shuffling every position (a million of them).
    kinds = ["clean"] * spec.records
    for at, kind in zip(sorted(rng.sample(range(spec.records), len(defects))), defects, strict=True):
        kinds[at] = kind
    if spec.unsynced.duplicate:
        first_dup, first_clean = kinds.index("duplicate"), kinds.index("clean")
        if first_clean > first_dup:
            kinds[first_dup], kinds[first_clean] = "clean", "duplicate"
    return kinds


def generate_records(
    spec: GenerateSpec,
    *,
    sector: str,
    province: str,
    citizens: Sequence[Citizen],
    seed: int,
    other_citizens: Sequence[Citizen] = (),
    kinds_out: list[str] | None = None,
    truth_out: list[Citizen | None] | None = None,
    provinces: ProvinceMap = ProvinceMap.LEGACY,  # by which a labour form's citizen resides in `province`
) -> list[dict[str, Any]]:
    """The records of one source in publish order: same arguments, same records.

    `citizens` are the residents of `province`; `other_citizens` those of other provinces (needed only
    for `moved`, a labour outcome). Raises `GenerateError` when the population is short of what is asked.
    `kinds_out`, when given, receives each record's planned kind (`clean`, an unsynced kind or a
    correction); `truth_out` the citizen a record was made from (None for a made-up person): what the
    province would find by asking the citizen, for the cleansing loop.
    """
    where = f"the {sector} source of {province}"
    if sector not in _SECTORS:
        raise GenerateError(
            f"cannot generate {sector!r} records; generated sources are {', '.join(_SECTORS)}"
        )
    if not is_province(province):
        raise GenerateError(f"unknown province code {province!r} for a generated source")
    if spec.unsynced.duplicate and not spec.clean:
        raise GenerateError(
            f"{where}: duplicates repeat a cleaned record, but no record is left to be cleaned"
        )
    if spec.unsynced.moved and sector != "labour":
        raise GenerateError(f"{where}: moved is a labour outcome; set it to 0 for {sector}")
    rng = random.Random(f"{seed}:{sector}:{province}:records")
    draw = _Draw(rng, spec, where, sector, province, citizens, other_citizens, provinces)
    made_up = spec.unsynced.not_found + spec.unsynced.malformed_id
    known = frozenset(c.personal_id for c in chain(citizens, other_citizens)) if made_up else frozenset()
    maker = RecordMaker(rng, sector, province, known)
    general, legacy, plain = iter(draw.general), iter(draw.legacy), iter(draw.no_diacritics)
    named = iter(draw.named)
    deceased, moved, inconsistent = iter(draw.deceased), iter(draw.moved), iter(draw.inconsistent)
    # Clean citizens already published and not yet repeated: the originals duplicates are drawn from.
    published: list[Citizen] = []
    records: list[dict[str, Any]] = []
    append = records.append
    kinds = _kinds(rng, spec)
    for n, kind in enumerate(kinds):
        c: Citizen | None
        if kind == "clean":
            c = next(general)
            published.append(c)
            append(maker.varied(n, c))
        elif kind == "duplicate":
            at = rng.randrange(len(published))
            c = published[at]
            if len(published) > 1:  # swap-remove, so each original is repeated once while any are left
                published[at] = published[-1]
                published.pop()
            append(maker.varied(n, c))
        elif kind == "mismatch":
            c = next(general)
            append(maker.mismatch(n, c))
        elif kind == "missing_fields":
            c = next(general)
            append(maker.missing(n, c))
        elif kind == "not_found":
            c = None
            append(maker.not_found(n))
        elif kind == "malformed_id":
            c = next(inconsistent, None)
            append(maker.exact(n, c) if c is not None else maker.malformed(n))
        elif kind == "deceased":
            c = next(deceased)
            append(maker.varied(n, c))
        elif kind == "moved":
            c = next(moved)
            append(maker.varied(n, c))
        elif kind.startswith(NAME_PREFIX):
            c = next(named)
            append(maker.name_defect(n, c, kind.removeprefix(NAME_PREFIX)))
        elif kind == "no_diacritics":
            c = next(plain)
            append(maker.no_diacritics(n, c))
        else:  # legacy_id
            c = next(legacy)
            append(maker.exact(n, c, personal_id=c.legacy_id))
        if truth_out is not None:
            truth_out.append(c)
    if kinds_out is not None:
        kinds_out.extend(kinds)
    return records


def planted_names(records: Sequence[dict[str, Any]], kinds: Sequence[str]) -> dict[str, str]:
    """record_id → name defect kind (`typo`, …) of the records `generate_records` planted one in."""
    assert NAME_KINDS  # the kinds of `connectors.name_defects`, in `kinds` with NAME_PREFIX
    return {
        rec["record_id"]: kind.removeprefix(NAME_PREFIX)
        for rec, kind in zip(records, kinds, strict=True)
        if kind.startswith(NAME_PREFIX)
    }


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records as UTF-8 JSON lines (ensure_ascii off); returns how many were written."""
    written = 0
    encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per `json.dumps` call
    with Path(path).open("w", encoding="utf-8") as out:
        for rec in records:
            out.write(encode(rec))
            out.write("\n")
            written += 1
    return written
