"""The scenario file (YAML) that `popsync simulate` runs: population, sources, e-ID, expectations."""

from __future__ import annotations

import re
import reprlib
import types
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.civil_gen import CivilGenerateSpec
from connectors.cleansing import CleansingSpec
from connectors.generate import GenerateSpec
from mocks.ndxp.population_exact import EARLIEST_AS_OF, LATEST_AS_OF, AgeGroups
from popsync.eid_plan import LEVELS, EidTargets
from popsync.exceptions import ScenarioError
from popsync.scenario_yaml import read_yaml
from schemas.outcomes import RECORD_OUTCOMES, UNSYNCED_OUTCOMES, Sector
from schemas.provinces import is_province

__all__ = [
    "CHAIN_FIGURES",
    "EID_EXPECT_KEYS",
    "FLAT_FIGURES",
    "AgeGroupsSpec",
    "ChainExpectation",
    "EidExpectation",
    "EidSpec",
    "Expectation",
    "LevelCounts",
    "PopulationSpec",
    "Scenario",
    "SourceSpec",
    "load_scenario",
]

# `rejected` is not a figure of a source: a rejected line may name no valid sector or province, and the
# summary counts rejected lines only in total, so such an expectation could never be checked.
_OUTCOME_KEYS = {o.value for o in RECORD_OUTCOMES} | {o.kind for o in UNSYNCED_OUTCOMES}
_SUMS = frozenset({"total", "synced", "unsynced"})
# Figures of a source beyond its outcomes (summary totals): records carrying a 9-digit legacy ID and
# those of them the NPD corrected; records fixed by the cleansing loop (moved from unsynced to synced)
# and re-published.
FLAT_FIGURES = frozenset({"legacy_ids", "legacy_corrected", "fixed", "republished"})
EXPECT_KEYS = frozenset({*_SUMS, *_OUTCOME_KEYS, *FLAT_FIGURES})
CHAIN_FIGURES = frozenset({"started", "completed", "stalled", "in_progress", "cards", "cards_synced"})
# e-ID figures an `expect_eid` entry may name: each in total or for one level (`approved_level_1`).
EID_FIGURES = ("applied", "approved", "activated", "locked")
EID_EXPECT_KEYS = frozenset(
    {"eligible", *(f"{f}{s}" for f in EID_FIGURES for s in ("", *(f"_level_{n}" for n in LEVELS)))}
)
DEFAULT_AS_OF = date(2023, 12, 31)  # the last day the synthetic population generator knows


# Messages quote what they were given; a bounded repr keeps a megabyte-long value out of them.
# (Repr takes these as keywords only from Python 3.12.)
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxdict = _repr.maxset = _repr.maxtuple = 4
_repr.maxlevel = 2
_show = _repr.repr
MAX_SCENARIO_BYTES = 1024 * 1024  # a scenario is a short hand-written file
_MAX_PROBLEMS = 5  # listed in one message; the rest are counted
_MAX_PROBLEM_CHARS = 300
# Characters a one-line message must not carry as they are: controls (NUL, newlines), lone surrogates,
# line and paragraph separators.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


def _province(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        # Unquoted, 8 is a number, and YAML reads 010 as octal 8: only a quoted code is the code.
        written: str | None = getattr(value, "written", None)
        if written is not None:
            what, code = f"{written} (YAML reads it as the octal number {int(value)})", written
        elif abs(value) < 1000:
            what, code = str(value), f"{value:03d}"
        else:
            raise ValueError(
                f'{_show(value)} is not one of the 63 province codes; write one quoted, e.g. "008"'
            )
        raise ValueError(f'province {what} must be quoted as a 3-digit code: write "{code}"')
    if not isinstance(value, str) or not is_province(value):
        raise ValueError(f'{_show(value)} is not one of the 63 province codes; write one quoted, e.g. "008"')
    return value


def _as_of(value: Any) -> date:
    """A scenario's `as_of`: a real date written YYYY-MM-DD (quoted or not), nothing else."""
    if isinstance(value, date) and not isinstance(value, datetime):  # YAML reads 2026-01-31 as a date
        return value
    if isinstance(value, str) and re.fullmatch("[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{_show(value)} is not a real date; write one as YYYY-MM-DD") from None
    raise ValueError(f"must be a date written YYYY-MM-DD, e.g. 2026-01-31; got {_show(value)}")


def _whole(value: Any) -> bool:
    """A non-negative whole number (YAML's `true` is an int to Python, not a count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class AgeGroupsSpec(BaseModel):
    """Exact head counts of one province by age on `population.as_of` (see `generate_by_age`)."""

    model_config = ConfigDict(extra="forbid")
    aged_14_plus: int
    under_14: int = 0
    deceased: int = 0

    @field_validator("aged_14_plus", "under_14", "deceased", mode="before")
    @classmethod
    def _count(cls, value: Any, info: ValidationInfo) -> Any:
        if not _whole(value):
            raise ValueError(f"{info.field_name} must be a non-negative whole number, got {_show(value)}")
        return value

    def groups(self) -> AgeGroups:
        return AgeGroups(self.aged_14_plus, self.under_14, self.deceased)


class PopulationSpec(BaseModel):
    """Citizens of the mock NPD: generated by province (a count, or exact counts by age group), and/or
    read from a population file. Ages are counted on `as_of`."""

    model_config = ConfigDict(extra="forbid")
    generate: dict[str, int] = Field(default_factory=dict)
    file: Path | None = None
    generate_by_age: dict[str, AgeGroupsSpec] = Field(default_factory=dict)
    as_of: date = DEFAULT_AS_OF

    @field_validator("generate", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, count in value.items():
                _province(key)
                if isinstance(count, dict):
                    raise ValueError(
                        f"population of {key} is a mapping: exact counts by age go under `generate_by_age`, "
                        f'e.g. generate_by_age: {{"{key}": {{aged_14_plus: 1000, under_14: 200}}}}'
                    )
                if not _whole(count):
                    raise ValueError(
                        f"population of {key} must be a non-negative whole number, got {_show(count)}"
                    )
        return value

    @field_validator("generate_by_age", mode="before")
    @classmethod
    def _age_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                _province(key)
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of_span(cls, value: date) -> date:
        if not EARLIEST_AS_OF <= value <= LATEST_AS_OF:
            raise ValueError(
                f"{value} is outside {EARLIEST_AS_OF}–{LATEST_AS_OF}, the dates the synthetic population "
                "(births 1930–2023) can be aged on"
            )
        return value

    @model_validator(mode="after")
    def _one_form_per_province(self) -> PopulationSpec:
        both = sorted(set(self.generate) & set(self.generate_by_age))
        if both:
            raise ValueError(
                f"province {', '.join(both)} is in both `generate` and `generate_by_age`; keep one of them"
            )
        return self


# A civil_status source's `generate:` block is validated as the `civil` field (its own model, so an error
# names that model's keys); a key path shows it as `generate` again.
_ALIASES = {"civil": "generate"}


class SourceSpec(BaseModel):
    """One source: a (sector, province) LGSP publishing generated records or a records file."""

    model_config = ConfigDict(extra="forbid")
    sector: Sector
    province: str
    generate: GenerateSpec | None = None  # insurance and labour
    civil: CivilGenerateSpec | None = None  # civil_status: the YAML's `generate:` of such a source
    file: Path | None = None
    rate: float | None = Field(default=None, gt=0, description="records per second; unlimited when absent")
    # Sources of one stage run together; a stage starts once every record of the stages before it has
    # its final outcome (fixes and linked procedures included), so records that depend on an earlier
    # source's changes to the NPD (a labour form after a death) are decided the same way every run.
    stage: int = Field(default=1, ge=1, le=100)
    cleansing: CleansingSpec | None = None

    _check_province = field_validator("province", mode="before")(lambda cls, v: _province(v))

    @model_validator(mode="before")
    @classmethod
    def _civil_generate(cls, data: Any) -> Any:
        # The sector decides the form of `generate:`; `civil` is not a key a scenario writes.
        if isinstance(data, dict):
            if "civil" in data:
                raise ValueError(
                    "unknown key 'civil'; a civil_status source writes its events under `generate`"
                )
            if data.get("sector") == Sector.CIVIL_STATUS.value and "generate" in data:
                data = {k: v for k, v in data.items() if k != "generate"} | {"civil": data["generate"]}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        generated = self.generate is not None or self.civil is not None
        if generated == (self.file is not None):
            raise ValueError("a source needs exactly one of `generate` or `file`")
        if self.cleansing is not None and self.sector is Sector.CIVIL_STATUS:
            raise ValueError(
                "cleansing is for insurance and labour sources; a civil-status registration is corrected "
                "by registering it again with the civil-status office"
            )
        return self


class Expectation(BaseModel):
    """Figures one (sector, province) must show at the end; `simulate` exits 1 if one differs."""

    model_config = ConfigDict(extra="allow")
    sector: Sector
    province: str

    _check_province = field_validator("province", mode="before")(lambda cls, v: _province(v))

    @model_validator(mode="after")
    def _known_figures(self) -> Expectation:
        named: dict[str, str] = {}
        for key, value in (self.model_extra or {}).items():
            if key not in EXPECT_KEYS:
                short = sorted(k for k in EXPECT_KEYS if not k.startswith("unsynced/"))
                raise ValueError(
                    f"unknown figure {_show(key)}; use one of {', '.join(short)} (an unsynced kind also "
                    "as unsynced/<kind>, e.g. unsynced/mismatch)"
                )
            if not _whole(value):
                raise ValueError(
                    f"figure {_show(key)} must be a non-negative whole number, got {_show(value)}"
                )
            full = _full_name(key)
            if full in named:  # `mismatch` and `unsynced/mismatch` are one figure; which one is meant?
                raise ValueError(f"figures {named[full]!r} and {key!r} are the same figure; keep one")
            named[full] = key
        return self

    def figures(self) -> dict[str, int]:
        """Expected figures keyed as the summary names them (`mismatch` becomes `unsynced/mismatch`)."""
        return {_full_name(key): int(value) for key, value in (self.model_extra or {}).items()}


class LevelCounts(BaseModel):
    """An e-ID figure by account level."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level_1: int = 0
    level_2: int = 0

    def by_level(self) -> dict[int, int]:
        return {1: self.level_1, 2: self.level_2}


def _figure(value: Any, name: str) -> int | LevelCounts:
    """A figure written as a whole number, or as `{level_1: n, level_2: n}` (either level may be left out)."""
    if _whole(value):
        return int(value)
    if isinstance(value, dict):
        allowed = {f"level_{n}" for n in LEVELS}
        for key, count in value.items():
            if key not in allowed:
                raise ValueError(
                    f"{name} has unknown key {_show(key)}; by level write {{level_1: n, level_2: n}}"
                )
            if not _whole(count):
                raise ValueError(f"{name}.{key} must be a non-negative whole number, got {_show(count)}")
        return LevelCounts(**value)
    raise ValueError(
        f"{name} must be a non-negative whole number or {{level_1: n, level_2: n}}, got {_show(value)}"
    )


class EidSpec(BaseModel):
    """One province's e-ID figures to reproduce: applications, approvals and activations, by level or not.

    A figure written as one number is all at `level`; `applied` as one number is the total, and the
    applications not approved are at `level`. `approved` defaults to `activated` (every approved account
    activated). `upgraded` level-2 accounts started at level 1; `locked` activated accounts end locked
    (they still count as approved and activated: those are milestones reached).
    """

    model_config = ConfigDict(extra="forbid")
    province: str
    applied: int | LevelCounts
    approved: int | LevelCounts | None = None
    activated: int | LevelCounts = 0
    level: Literal[1, 2] = 2
    upgraded: int = 0
    locked: int = 0
    report: Literal["levels", "eligible"] | None = Field(
        default=None,
        description="report line: by level, or as shares of the eligible population "
        "(default: by level when a figure is given by level)",
    )

    _check_province = field_validator("province", mode="before")(lambda cls, v: _province(v))

    @field_validator("applied", "approved", "activated", mode="before")
    @classmethod
    def _figures(cls, value: Any, info: ValidationInfo) -> Any:
        return value if value is None else _figure(value, str(info.field_name))

    @field_validator("upgraded", "locked", mode="before")
    @classmethod
    def _count(cls, value: Any, info: ValidationInfo) -> Any:
        if not _whole(value):
            raise ValueError(f"{info.field_name} must be a non-negative whole number, got {_show(value)}")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> EidSpec:
        self.targets()  # raises ValueError saying which figure cannot be reached
        return self

    def _levels(self, figure: int | LevelCounts) -> dict[int, int]:
        if isinstance(figure, LevelCounts):
            return figure.by_level()
        return {n: figure if n == self.level else 0 for n in LEVELS}

    def targets(self) -> EidTargets:
        """The final figures by level; ValueError when they contradict each other."""
        activated = self._levels(self.activated)
        approved = activated if self.approved is None else self._levels(self.approved)
        if isinstance(self.applied, LevelCounts):
            applied = self.applied.by_level()
        else:
            pending = self.applied - sum(approved.values())
            if pending < 0:
                raise ValueError(
                    f"applied ({self.applied:,}) is less than approved ({sum(approved.values()):,}): "
                    "only an application can be approved"
                )
            applied = {n: approved[n] + (pending if n == self.level else 0) for n in LEVELS}
        return EidTargets(self.province, applied, approved, activated, self.upgraded, self.locked)

    @property
    def report_style(self) -> Literal["levels", "eligible"]:
        if self.report is not None:
            return self.report
        given = (self.applied, self.approved, self.activated)
        return "levels" if any(isinstance(f, LevelCounts) for f in given) else "eligible"


class EidExpectation(BaseModel):
    """e-ID figures one province must show at the end (from the workers' counts); exit 1 if one differs."""

    model_config = ConfigDict(extra="allow")
    province: str

    _check_province = field_validator("province", mode="before")(lambda cls, v: _province(v))

    @model_validator(mode="after")
    def _known_figures(self) -> EidExpectation:
        for key, value in (self.model_extra or {}).items():
            if key not in EID_EXPECT_KEYS:
                raise ValueError(
                    f"unknown e-ID figure {_show(key)}; use one of {', '.join(sorted(EID_EXPECT_KEYS))}"
                )
            if not _whole(value):
                raise ValueError(
                    f"figure {_show(key)} must be a non-negative whole number, got {_show(value)}"
                )
        return self

    def figures(self) -> dict[str, int]:
        return {key: int(value) for key, value in (self.model_extra or {}).items()}


class ChainExpectation(BaseModel):
    """Linked-procedure figures of one province and chain kind (`birth` or `death`)."""

    model_config = ConfigDict(extra="forbid")
    province: str
    kind: Literal["birth", "death"]
    started: int | None = Field(default=None, ge=0)
    completed: int | None = Field(default=None, ge=0)
    stalled: int | None = Field(default=None, ge=0)
    in_progress: int | None = Field(default=None, ge=0)
    cards: int | None = Field(default=None, ge=0)  # birth: children's health-insurance cards issued
    cards_synced: int | None = Field(default=None, ge=0)  # … and reconciled as synced

    _check_province = field_validator("province", mode="before")(lambda cls, v: _province(v))

    def figures(self) -> dict[str, int]:
        return {k: v for k in sorted(CHAIN_FIGURES) if (v := getattr(self, k)) is not None}


def _full_name(key: str) -> str:
    """`mismatch` → `unsynced/mismatch`; sums and full outcome names stay as they are."""
    if key in _SUMS or key in FLAT_FIGURES or key in {o.value for o in RECORD_OUTCOMES}:
        return key
    return f"unsynced/{key}"


class Scenario(BaseModel):
    """A whole run. Paths inside are resolved relative to the scenario file."""

    model_config = ConfigDict(extra="forbid")
    name: str
    seed: int = 0
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    # Before `sources`, so a scenario of e-ID figures alone needs no source (see `_some_sources`).
    eid: list[EidSpec] = Field(default_factory=list)
    sources: list[SourceSpec] = Field(default_factory=list, validate_default=True)
    expect: list[Expectation] = Field(default_factory=list)
    expect_eid: list[EidExpectation] = Field(default_factory=list)
    expect_chains: list[ChainExpectation] = Field(default_factory=list)
    partitions: int = Field(default=6, ge=1, le=256)
    # How names are compared: `exact` (CONTRACT.md's rules 10–12) or `fuzzy` (schemas.fuzzy_rules: scored and
    # explained, slips accepted as corrections); the workers get it as STREAMS_MATCHING.
    matching: Literal["exact", "fuzzy"] = "exact"
    # The day the run is as of: from 2025-07-01 on, labour's `moved` compares residences by the 34 current
    # provinces (schemas.provinces); before it, or absent, by the 63 legacy codes as always.
    as_of: date | None = None

    _check_as_of = field_validator("as_of", mode="before")(lambda cls, v: _as_of(v))

    @field_validator("sources")
    @classmethod
    def _some_sources(cls, value: list[SourceSpec], info: ValidationInfo) -> list[SourceSpec]:
        # `eid` is absent from info.data when it failed validation: its own error says enough then.
        if not value and info.data.get("eid", True) == []:
            raise ValueError("a scenario needs at least 1 source (or an `eid` section)")
        return value

    @model_validator(mode="after")
    def _one_generated_civil_source_per_province(self) -> Scenario:
        seen: set[str] = set()
        for source in self.sources:
            if source.civil is not None:
                if source.province in seen:
                    raise ValueError(
                        f"sources: two generated civil_status sources for {source.province} would issue the "
                        "same registration numbers; merge their counts into one source"
                    )
                seen.add(source.province)
        return self

    @model_validator(mode="after")
    def _eid_consistent(self) -> Scenario:
        seen: set[str] = set()
        for spec in self.eid:
            if spec.province in seen:
                raise ValueError(
                    f"eid: province {spec.province} is listed twice; keep one entry per province"
                )
            seen.add(spec.province)
            exact = self.population.generate_by_age.get(spec.province)
            # Only exact age groups tell the number of eligible citizens before the population is made;
            # otherwise the run checks it (and says what is short) once the population exists.
            if exact is not None and self.population.file is None:
                applied = spec.targets().total_applied
                if applied > exact.aged_14_plus:
                    raise ValueError(
                        f"eid {spec.province}: {applied:,} applications exceed the {exact.aged_14_plus:,} "
                        f"citizens aged 14 and over (population.generate_by_age); raise aged_14_plus or "
                        "lower applied"
                    )
        for expectation in self.expect_eid:
            if expectation.province not in seen:
                raise ValueError(
                    f"expect_eid: province {expectation.province} has no `eid` entry to produce its figures"
                )
        return self


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(_ALIASES.get(str(p), str(p)) for p in loc) or "(top level)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds: `X`, `X | None`, `list[X]`, `dict[str, X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, dict, Union, types.UnionType):
        for arg in get_args(annotation):
            model = _model_in(arg)
            if model is not None:
                return model
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the mapping at `loc` may hold (list indices and the keys of `dict[str, X]` skipped)."""
    model: type[BaseModel] | None = Scenario
    in_dict = False
    for part in loc:
        if isinstance(part, int) or in_dict:
            in_dict = False
            continue
        field = model.model_fields.get(part) if model is not None else None
        model = _model_in(field.annotation) if field is not None else None
        in_dict = field is not None and get_origin(field.annotation) is dict
    # `civil` is how a civil_status source's `generate` is held, not a key a scenario writes.
    return [k for k in model.model_fields if k not in _ALIASES] if model is not None else []


def _problem(error: Any) -> str:
    """One validation error as `key.path: what is wrong and what to do`."""
    loc = tuple(error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        msg = "unknown key" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "; remove it")
    elif error["type"] == "missing":
        msg = "required key is missing; add it"
    return f"{_where(loc)}: {msg}"


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario; every problem is reported with the file and the key path.

    Whatever the file holds, this returns a valid `Scenario` or raises `ScenarioError` with a one-line
    message of bounded length (non-printable characters escaped) that says what is wrong and where.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise _error(f"cannot read scenario {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_SCENARIO_BYTES:
        raise _error(
            f"scenario {path} is larger than {MAX_SCENARIO_BYTES:,} bytes; a scenario is a short file"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(f"scenario {path} is not UTF-8 text (byte {exc.start})") from exc
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _error(
            f"scenario {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        ) from exc
    if not isinstance(data, dict):
        raise _error(f"scenario {path} must be a YAML mapping with name, population, sources")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        problems = [_problem(e)[:_MAX_PROBLEM_CHARS] for e in errors[:_MAX_PROBLEMS]]
        if len(errors) > _MAX_PROBLEMS:
            problems.append(f"and {len(errors) - _MAX_PROBLEMS} more")
        raise _error(f"scenario {path} is invalid: {'; '.join(problems)}") from exc
    base = path.parent
    if scenario.population.file is not None:
        scenario.population.file = _existing(base / scenario.population.file, path, "population.file")
    for i, source in enumerate(scenario.sources):
        if source.file is not None:
            source.file = _existing(base / source.file, path, f"sources.{i}.file")
    return scenario


def _error(message: str) -> ScenarioError:
    """A ScenarioError whose message prints on one line: line breaks (PyYAML's messages have some) become
    spaces, other control characters and lone surrogates are escaped."""
    flat = re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", message)
    return ScenarioError(_UNPRINTABLE.sub(lambda m: _escaped(m.group()), flat))


def _escaped(char: str) -> str:
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def _existing(candidate: Path, scenario: Path, key: str) -> Path:
    try:
        found = candidate.is_file()
    except OSError:  # a name too long for the file system
        found = False
    if not found:
        raise _error(f"scenario {scenario}: {key} {candidate} does not exist or is not a file")
    return candidate
