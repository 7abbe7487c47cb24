"""Generated civil-status records (births, deaths, marriages) with exact counts of each outcome.

Applied in publish order to the initial NPD, the civil-status rules turn the records of
`build_civil(spec, ...)` into exactly the outcomes the spec asks for, whatever order records of different
registrations are processed in (e.g. one Kafka partition after another). That holds because:

- every citizen a record registers (the deceased, either spouse) or names in a defect appears in no other
  record, except its own duplicate; a citizen's NPD spouse is kept out of every other record too;
- parents named by births are alive residents that no death or marriage names (they may be shared);
- a duplicate repeats an earlier `cleaned` record's registration_no, event, personal_id and spouse_id, and
  comes after its original;
- every other record has its own registration_no, and made-up IDs come from serials the population
  generator never issues (995000 up).

The one exception is a marriage refused for direct relatives (`refused_marriages.direct_relatives`): it
marries a parent to the child that a late birth registration of the same source made just before it
(the NPD's father_id/mother_id link the two), so it depends on that birth being decided first. It is:
every civil-status record travels with one key, in publish order (connectors.lgsp.partition_key).

Errors: `GenerateError` when the population cannot supply the citizens a spec needs.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.defects import consistent, dmy, g_yy, vary_identity
from connectors.generate import CorrectedCounts, GenerateError
from connectors.names_vi import Gender, NamePicker, strip_diacritics
from schemas.citizen import Citizen
from schemas.civil import MARRIAGE_AGE, full_years, is_married, issue_personal_id
from schemas.names import fold_diacritics
from schemas.provinces import PROVINCES, is_province

__all__ = ["CivilBatch", "CivilGenerateSpec", "CivilUnsyncedCounts", "MarriageRefusalCounts", "Period"]
__all__ += ["build_civil"]
__all__ += ["default_period", "generate_civil"]

Count = Annotated[int, Field(ge=0, strict=True)]
SECTOR = "civil_status"
RECORD_PREFIX = "CIV"  # `connectors.defects` names records `<sector[:3].upper()>-<province>-<n>`
REGISTRATION_PREFIX = {"birth": "KS", "death": "KT", "marriage": "KH"}  # khai sinh, khai tử, kết hôn
_NEVER_ISSUED_FROM = 995_000  # `mocks.ndxp.population.NEVER_ISSUED_FROM`: serials no generated citizen holds
_UNKNOWN_PROVINCES = (*(f"{n:03d}" for n in range(100) if f"{n:03d}" not in PROVINCES), "999")
_OTHER: dict[Gender, Gender] = {"male": "female", "female": "male"}
_WHO: tuple[tuple[Gender, str], ...] = (("male", "men"), ("female", "women"))
# Which events a defect is spread over (a birth has nobody who could be deceased).
_EVENTS_FOR = {
    "missing_fields": ("birth", "death", "marriage"),
    "not_found": ("birth", "death", "marriage"),
    "malformed_id": ("birth", "death", "marriage"),
    "mismatch": ("birth", "death", "marriage"),
    "deceased": ("death", "marriage"),
}
_REQUIRED = ("full_name", "date_of_birth", "gender", "event", "event_date", "registration_no")
_CLEAN_KINDS = frozenset({"clean", "late"})
_PROBE_RUN = 64  # serials after a birth's first-choice ID kept clear of made-up IDs


def _nobody(_: str) -> bool:
    return False


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CivilUnsyncedCounts(_Block):
    """How many civil-status records of each `unsynced/<kind>` outcome to generate."""

    missing_fields: Count = 0
    duplicate: Count = 0
    not_found: Count = 0
    malformed_id: Count = 0
    mismatch: Count = 0
    deceased: Count = 0


class MarriageRefusalCounts(_Block):
    """Marriages the rules refuse (docs/civil-status.md M11–M14), by the condition that fails."""

    before_birth: Count = 0  # M11: dated on or before a partner's birth → unsynced/mismatch
    in_future: Count = 0  # M11: dated a century after as_of → unsynced/mismatch
    under_age: Count = 0  # M12: a man under 20 or a woman under 18 → unsynced/ineligible
    same_sex: Count = 0  # M13 → unsynced/ineligible
    # M14 → unsynced/ineligible: a parent and their adult child, each with the late birth registration
    # (cleaned, a birth chain of its own) that links the child to the parent in the NPD.
    direct_relatives: Count = 0

    @property
    def total(self) -> int:
        return sum(self.model_dump().values())


# What each refused marriage ends as.
REFUSAL_OUTCOMES = {
    "before_birth": "unsynced/mismatch",
    "in_future": "unsynced/mismatch",
    "under_age": "unsynced/ineligible",
    "same_sex": "unsynced/ineligible",
    "direct_relatives": "unsynced/ineligible",
}


class Period(_Block):
    """The days the generated events fall on, both ends included."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.start > self.end:
            raise ValueError(f"period starts {self.start} after it ends {self.end}")
        return self


def default_period(as_of: date) -> Period:
    """The calendar month before the month of `as_of`."""
    end = as_of.replace(day=1) - timedelta(days=1)
    return Period(start=end.replace(day=1), end=end)


class CivilGenerateSpec(_Block):
    """A civil-status source's `generate:` block: clean events of each kind and the count of each defect."""

    births: Count = 0  # clean births of children under 6 at registration, mostly newborns
    late_births: Count = 0  # clean late registrations of people aged 6 or more
    deaths: Count = 0  # clean deaths
    marriages: Count = 0  # clean marriages
    corrected: CorrectedCounts = CorrectedCounts()  # deaths that end `corrected`
    unsynced: CivilUnsyncedCounts = CivilUnsyncedCounts()
    refused_marriages: MarriageRefusalCounts = MarriageRefusalCounts()
    period: Period | None = None  # default: `default_period(as_of)`

    @property
    def clean(self) -> int:
        """Records that are to end `cleaned`."""
        return self.births + self.late_births + self.deaths + self.marriages

    @property
    def records(self) -> int:
        """Every record the spec asks for."""
        counts: dict[str, int] = {**self.unsynced.model_dump(), **self.corrected.model_dump()}
        refused = self.refused_marriages
        return self.clean + sum(counts.values()) + refused.total + refused.direct_relatives


@dataclass(frozen=True, slots=True)
class CivilBatch:
    """Generated records in publish order and what the rules must make of them."""

    records: list[dict[str, Any]]
    outcomes: dict[str, str]  # record_id → expected outcome
    events: dict[str, str]  # record_id → the event the record was made as (even if its `event` is spoilt)
    birth_chains: int  # births that create a citizen (birth → residence → health-insurance card)
    death_chains: int  # deaths the NPD records (death → residence deregistration → funeral allowance)

    def counts(self) -> Counter[tuple[str, str]]:
        """Expected records per (event, outcome)."""
        return Counter((self.events[rid], outcome) for rid, outcome in self.outcomes.items())


@dataclass(slots=True)
class _Item:
    """One record to be: its event, what it is to end as, and the citizens it names."""

    event: str
    kind: str  # clean, late, no_diacritics, legacy_id, or an unsynced kind
    variant: str = ""
    side: str = ""  # which ID a defect spoils: person/spouse, father/mother
    gender: Gender = "male"  # a marriage record's person
    person: Citizen | None = None
    spouse: Citizen | None = None
    # A marriage refused for direct relatives: the late birth that makes `person`'s child, published
    # just before it (kind "link"), and the ID the NPD will issue that child; the birth's `pair` is the
    # marriage it is made for.
    pair: _Item | None = None
    child_id: str | None = None


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _apportion(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder), evenly when all weights are 0."""
    if not any(weights):
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % whole))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _plan(rng: random.Random, spec: CivilGenerateSpec) -> list[_Item]:
    """The records to be, shuffled into publish order, a cleaned record before any duplicate."""
    plan = [("birth", "clean", spec.births), ("birth", "late", spec.late_births)]
    plan += [("death", "clean", spec.deaths), ("marriage", "clean", spec.marriages)]
    plan += [("death", kind, n) for kind, n in spec.corrected.model_dump().items()]
    weights = {"birth": spec.births + spec.late_births, "death": spec.deaths, "marriage": spec.marriages}
    for kind, events in _EVENTS_FOR.items():
        shares = _apportion(getattr(spec.unsynced, kind), [weights[e] for e in events])
        plan += [(event, kind, n) for event, n in zip(events, shares, strict=True)]
    plan.append(("", "duplicate", spec.unsynced.duplicate))
    items = [_Item(event, kind) for event, kind, n in plan for _ in range(n)]
    refused = [
        _Item("marriage", "refused", variant)
        for variant, n in spec.refused_marriages.model_dump().items()
        for _ in range(n)
    ]
    if refused:  # drawn only when asked for, so that scenarios without them keep their records
        items += refused
        rng.shuffle(items)
        for at in [i for i, it in enumerate(items) if it.variant == "direct_relatives"][::-1]:
            birth = items[at].pair = _Item("birth", "link", pair=items[at])
            items.insert(at, birth)  # the child's registration right before the marriage
    else:
        rng.shuffle(items)
    if spec.unsynced.duplicate:
        kinds = [it.kind for it in items]
        first_dup = kinds.index("duplicate")
        first_clean = min(kinds.index(k) for k in _CLEAN_KINDS if k in kinds)
        if first_clean > first_dup:
            items[first_dup], items[first_clean] = items[first_clean], items[first_dup]
    malformed = 0
    for it in items:
        it.gender = "male" if rng.random() < 0.5 else "female"
        if it.kind in ("refused", "link"):
            it.side = rng.choice(("person", "spouse"))
            continue
        it.side = rng.choice(("father", "mother") if it.event == "birth" else ("person", "spouse"))
        if it.kind == "malformed_id" and it.event != "birth":
            malformed += 1  # every fourth one names a citizen whose ID the NPD itself got wrong (rule 6)
            it.variant = "inconsistent" if malformed % 4 == 0 else "shape"
        elif it.kind == "not_found" and it.event == "death":
            it.variant = "legacy" if rng.random() < 0.25 else "personal"
        elif it.kind == "mismatch":
            variants = {
                "birth": ("father_gender", "mother_gender", "born_after"),
                "death": ("identity",),
                "marriage": ("identity", "married_person", "married_spouse"),
            }[it.event]
            it.variant = rng.choice(variants)
    return items


class _Pool:
    """Citizens of one kind in seeded order, handed out once each (a shared `used` set spans pools)."""

    def __init__(
        self, label: str, citizens: list[Citizen], keep: Callable[[Citizen], bool] | None = None
    ) -> None:
        self.label = label
        self.citizens = citizens
        self.keep = keep  # checked as citizens are handed out: cheaper than filtering a whole population
        self.at = 0

    def take(self, used: set[str]) -> Citizen | None:
        while self.at < len(self.citizens):
            c = self.citizens[self.at]
            self.at += 1
            if c.personal_id not in used and (self.keep is None or self.keep(c)):
                return c
        return None


def _has_diacritics(c: Citizen) -> bool:
    return strip_diacritics(c.full_name) != c.full_name


class _Cast:
    """Assigns distinct citizens to the records that name them; collects what the population lacks."""

    def __init__(
        self, rng: random.Random, province: str, citizens: Sequence[Citizen], start: date, end: date
    ) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.asked: Counter[str] = Counter()
        self.short: Counter[str] = Counter()
        # Spouse links both ways: a record about one spouse may change the other's marital status.
        self.partners: dict[str, list[str]] = {}
        legacy_count: Counter[str] = Counter()
        alive: list[Citizen] = []
        dead: list[list[Citizen]] = [[], []]  # residents first, then the rest
        wrong: list[list[Citizen]] = [[], []]
        for c in citizens:
            if c.legacy_id:
                legacy_count[c.legacy_id] += 1
            extra = c.model_extra
            if extra and isinstance(spouse := extra.get("spouse_id"), str):
                self.partners.setdefault(c.personal_id, []).append(spouse)
                self.partners.setdefault(spouse, []).append(c.personal_id)
            home = 0 if c.permanent_province == province else 1
            if not consistent(c):
                wrong[home].append(c)
            elif c.deceased:
                dead[home].append(c)
            elif home == 0 and c.date_of_birth < start:
                alive.append(c)
        for group in (alive, *dead, *wrong):
            rng.shuffle(group)
        self.alive = alive
        old = _years_before(start, 60)
        adult = {"male": _years_before(start, 20), "female": _years_before(start, 18)}
        olds: list[Citizen] = []
        single: dict[str, list[Citizen]] = {"male": [], "female": []}
        married: dict[str, list[Citizen]] = {"male": [], "female": []}
        for c in alive:
            born = c.date_of_birth
            if born <= old:
                olds.append(c)
            if born <= adult[c.gender]:
                (married if is_married(c) else single)[c.gender].append(c)
        self.old, self.any = _Pool("", olds), _Pool("", alive)
        self.old_diac, self.any_diac = _Pool("", olds, _has_diacritics), _Pool("", alive, _has_diacritics)
        self.legacy = _Pool(
            "alive residents with a legacy ID held by nobody else (corrected.legacy_id)",
            alive,
            lambda c: c.legacy_id is not None and legacy_count[c.legacy_id] == 1,
        )
        self.dead = _Pool("deceased citizens (unsynced.deceased)", dead[0] + dead[1])
        self.wrong = _Pool("", wrong[0] + wrong[1])
        self.single = {
            "male": _Pool("unmarried men aged 20+ (marriages)", single["male"]),
            "female": _Pool("unmarried women aged 18+ (marriages)", single["female"]),
        }
        self.married = {g: _Pool("", people) for g, people in married.items()}
        # Refused marriages: unmarried residents under the marriage age all through the period, and
        # unmarried parents old enough to have a child of 22 or more.
        minors: dict[Gender, list[Citizen]] = {"male": [], "female": []}
        for c in alive:
            if not is_married(c) and full_years(c.date_of_birth, end) < MARRIAGE_AGE[c.gender]:
                minors[c.gender].append(c)
        self.minor = {
            g: _Pool(f"unmarried {who} under {MARRIAGE_AGE[g]} (refused_marriages.under_age)", minors[g])
            for g, who in _WHO
        }
        self.old_single = {
            g: _Pool(
                f"unmarried {who} aged 45+ (refused_marriages.direct_relatives)",
                single[g],
                lambda c: full_years(c.date_of_birth, start) >= 45,
            )
            for g, who in _WHO
        }

    def use(self, c: Citizen) -> Citizen:
        self.used.add(c.personal_id)
        self.used.update(self.partners.get(c.personal_id, ()))
        return c

    def take(self, *pools: _Pool, label: str = "") -> Citizen | None:
        """The next unused citizen of the first pool that has one; counted under `label` or pool 1's."""
        name = label or pools[0].label
        self.asked[name] += 1
        for pool in pools:
            c = pool.take(self.used)
            if c is not None:
                return self.use(c)
        self.short[name] += 1
        return None

    def optional(self, pool: _Pool) -> Citizen | None:
        """The next unused citizen of a pool whose citizens are welcome but not required."""
        c = pool.take(self.used)
        return None if c is None else self.use(c)

    def death_subject(self, diacritics: bool) -> Citizen | None:
        older, anyone = (self.old_diac, self.any_diac) if diacritics else (self.old, self.any)
        pools = (older, anyone) if self.rng.random() < 0.8 else (anyone, older)  # deaths: mostly the old
        what = "with diacritics in their name (corrected.no_diacritics)" if diacritics else "(deaths)"
        return self.take(*pools, label=f"alive residents born before the period {what}")

    def refused(self, it: _Item) -> None:
        """The two people of a marriage the rules are to refuse for `it.variant`."""
        other = it.gender if it.variant == "same_sex" else _OTHER[it.gender]
        if it.variant == "under_age":
            if it.side == "person":
                it.person = self.take(self.minor[it.gender])
            else:
                it.spouse = self.take(self.minor[other])
        elif it.variant == "direct_relatives":
            it.person = self.take(self.old_single[it.gender])
            return  # the spouse is the person's child, whom the linked birth registers
        if it.person is None:
            it.person = self.take(self.single[it.gender])
        if it.spouse is None:
            it.spouse = self.take(self.single[other])

    def cast(self, items: list[_Item]) -> None:
        """Name the citizens of every item; scarce kinds first, so ordinary records leave them alone."""
        for it in items:
            c: Citizen | None = None
            if it.kind == "refused":
                self.refused(it)
                continue
            if it.kind == "legacy_id":
                it.person = self.take(self.legacy)
            elif it.kind == "no_diacritics":
                it.person = self.death_subject(diacritics=True)
            elif it.kind == "deceased":
                c = self.take(self.dead)
            elif it.variant == "inconsistent":
                c = self.optional(self.wrong)
                it.variant = "inconsistent" if c else "shape"
            elif it.variant in ("married_person", "married_spouse"):
                on_spouse = it.variant == "married_spouse"
                c = self.optional(self.married[_OTHER[it.gender] if on_spouse else it.gender])
                it.side = "spouse" if on_spouse else "person"
                it.variant = it.variant if c else "identity"
            if c is not None:
                if it.event == "marriage" and it.side == "spouse":
                    it.spouse, it.gender = c, _OTHER[c.gender]
                else:
                    it.person, it.gender = c, c.gender
        for it in items:
            if it.event == "death" and it.kind in ("clean", "missing_fields", "mismatch"):
                it.person = self.death_subject(diacritics=False)
            elif it.event == "marriage" and it.kind != "refused":
                made_up = it.kind == "not_found" or it.variant == "shape"
                if it.person is None and not (made_up and it.side == "person"):
                    it.person = self.take(self.single[it.gender])
                if it.spouse is None and not (made_up and it.side == "spouse"):
                    it.spouse = self.take(self.single[_OTHER[it.gender]])

    def problems(self) -> list[str]:
        return [
            f"{label}: needed {self.asked[label]:,}, found {self.asked[label] - short:,}"
            for label, short in self.short.items()
        ]


_SPOILT_TEXT: tuple[object, ...] = ("", "   ", None)


class _Writer:
    """Writes the records of one source from the cast items, with harmless variety in a share of fields."""

    def __init__(
        self, rng: random.Random, province: str, citizens: Sequence[Citizen], parents: list[Citizen]
    ) -> None:
        self.rng = rng
        self.province = province
        self.names = NamePicker()
        # Known IDs, so that a made-up ID is never someone's; grown with every ID made up here.
        self.taken = {c.personal_id for c in citizens}
        self.taken_legacy = {c.legacy_id for c in citizens if c.legacy_id}
        self.serials: Counter[tuple[str, int]] = Counter()
        self.not_found: list[tuple[dict[str, Any], str]] = []  # where made-up IDs nobody may hold sit
        self.parents: dict[str, tuple[list[int], list[Citizen]]] = {}
        for g in ("male", "female"):
            people = sorted((c for c in parents if c.gender == g), key=lambda c: c.date_of_birth)
            self.parents[g] = ([c.date_of_birth.toordinal() for c in people], people)

    # -- parts ----------------------------------------------------------------------------------------

    def base(self, n: int, event: str, day: date) -> dict[str, Any]:
        prefix = REGISTRATION_PREFIX[event]
        self.serials[prefix, day.year] += 1
        return {
            "record_id": f"{RECORD_PREFIX}-{self.province}-{n + 1:07d}",
            "sector": SECTOR,
            "province": self.province,
            "event": event,
            "event_date": dmy(day) if self.rng.random() < 0.1 else day.isoformat(),
            "registration_no": f"{prefix}-{day.year}-{self.serials[prefix, day.year]:06d}",
        }

    def identity(self, rec: dict[str, Any], name: str, born: date, gender: str) -> None:
        """Name, birth date and gender as the NPD would hold them, written with harmless variety."""
        name, when, gender = vary_identity(self.rng, name, born, gender)
        rec["full_name"] = name
        rec["date_of_birth"] = when if isinstance(when, str) else when.isoformat()
        rec["gender"] = gender

    def pid(self, value: str) -> str:
        return f" {value} " if self.rng.random() < 0.003 else value  # ends are trimmed before any rule

    def made_up(self, gender: Gender, first_year: int, last_year: int) -> tuple[str, str, date]:
        """A well-formed, consistent personal ID nobody holds, with a name and birth date to go with it."""
        rng = self.rng
        first = date(max(first_year, 1900), 1, 1).toordinal()
        born = date.fromordinal(rng.randint(first, date(last_year, 12, 31).toordinal()))
        prefix = f"{self.province}{g_yy(gender, born.year)}"
        pid = f"{prefix}{rng.randrange(_NEVER_ISSUED_FROM, 1_000_000):06d}"
        while pid in self.taken:
            pid = f"{prefix}{rng.randrange(1_000_000):06d}"
        self.taken.add(pid)
        return pid, self.names.full_name(rng, gender), born

    def made_up_legacy(self) -> str:
        legacy = f"{self.rng.randrange(10**9):09d}"
        while legacy in self.taken_legacy:
            legacy = f"{self.rng.randrange(10**9):09d}"
        self.taken_legacy.add(legacy)
        return legacy

    def malformed(self, pid: str) -> str:
        """The ID of the wrong length (never 9), with a non-digit, or with an unknown province code."""
        rng = self.rng
        variant = rng.randrange(6)
        if variant == 0:
            return pid[:-1]
        if variant == 1:
            return pid + str(rng.randrange(10))
        if variant == 2:
            at = rng.randrange(3, 12)
            return pid[:at] + rng.choice("OlIS") + pid[at + 1 :]
        if variant == 3:
            return f"{pid[:3]} {pid[3:6]} {pid[6:]}"
        if variant == 4:
            return f"{pid[:3]}-{pid[3:]}"
        return rng.choice(_UNKNOWN_PROVINCES) + pid[3:]

    def parent(self, gender: Gender, child_born: date, anyone: bool = False) -> Citizen | None:
        """An alive resident of `gender` aged 18 to 55 (mothers 45) at the child's birth; None if nobody."""
        ordinals, people = self.parents[gender]
        oldest = _years_before(child_born, 55 if gender == "male" else 45).toordinal()
        lo = bisect_left(ordinals, oldest)
        hi = bisect_right(ordinals, _years_before(child_born, 18).toordinal())
        if lo >= hi and anyone:
            lo, hi = 0, len(people)
        return people[self.rng.randrange(lo, hi)] if lo < hi else None

    def spoil(self, rec: dict[str, Any], fields: Sequence[str], born: date) -> None:
        """Make one required field absent, empty, null, of the wrong JSON type, or unreadable."""
        name = self.rng.choice(fields)
        value = rec.get(name)
        year = born.year
        spoilt: dict[str, tuple[object, ...]] = {
            "full_name": (*_SPOILT_TEXT, str(value).split()),
            "date_of_birth": (f"30/02/{year}", f"{year}-13-01", f"{born.day}/2/{year}", "", 19900101),
            "gender": ("", "X", "không rõ", None, 1),
            "event": ("", "khai sinh", None, 2),
            "event_date": (f"31/04/{year}", f"{year}-00-10", "", None, 20231201),
            "registration_no": (*_SPOILT_TEXT, 123456),
            "personal_id": (*_SPOILT_TEXT, int(str(value)) if str(value).strip().isdigit() else 0),
            "spouse_id": (*_SPOILT_TEXT, 0),
        }
        choices = spoilt[name]
        pick = self.rng.randrange(len(choices) + 1)
        if pick == len(choices):
            del rec[name]
        else:
            rec[name] = choices[pick]

    def mismatch(self, rec: dict[str, Any], c: Citizen) -> None:
        """A name that differs even without diacritics, another birth date, or the other gender."""
        roll = self.rng.random()
        if roll < 0.5:
            words = c.full_name.split()
            while fold_diacritics(" ".join(words)) == fold_diacritics(c.full_name):
                words[-1] = self.names.given_name(self.rng, c.gender)
            rec["full_name"] = " ".join(words)
        elif roll < 0.8:
            shift = self.rng.choice((-1, 1)) * self.rng.randrange(1, 400)
            rec["date_of_birth"] = dmy(c.date_of_birth + timedelta(days=shift))
        else:
            rec["gender"] = _OTHER[c.gender]

    def keep_clear_of(self, births: list[tuple[dict[str, Any], date, Gender]]) -> None:
        """Move made-up IDs away from the IDs the NPD may issue to this batch's cleaned births.

        `issue_personal_id` starts from a hash of the registration and probes the next serials past
        taken ones, so a made-up ID within a short run after a birth's start could be issued first.
        """
        starts: dict[str, list[int]] = {}  # "PPPGYY" → first-choice serials of the births of that group
        for rec, born, gender in births:
            start = issue_personal_id(self.province, gender, born.year, rec["registration_no"], _nobody)
            starts.setdefault(start[:6], []).append(int(start[6:]))
        for serials in starts.values():
            serials.sort()

        def near(pid: str) -> bool:
            # Made-up serials are (almost always) 995000 and up; a run wrapping past 999999 is ignored.
            serials, serial = starts.get(pid[:6], []), int(pid[6:])
            at = bisect_right(serials, serial)
            return at > 0 and serial - serials[at - 1] < _PROBE_RUN

        for rec, field in self.not_found:
            pid = rec[field].strip()
            new = pid
            while near(new) or (new != pid and new in self.taken):
                new = f"{pid[:6]}{self.rng.randrange(_NEVER_ISSUED_FROM, 1_000_000):06d}"
            if new != pid:
                self.taken.add(new)
                rec[field] = rec[field].replace(pid, new)

    # -- one writer per event -------------------------------------------------------------------------

    def birth(self, rec: dict[str, Any], it: _Item, day: date) -> tuple[str, date, Gender]:
        rng = self.rng
        gender: Gender = "male" if rng.random() < 0.51 else "female"
        if it.kind == "late":
            age = rng.randint(6, 17) if rng.random() < 0.6 else rng.randint(18, 70)
            first, last = _years_before(day, age + 1) + timedelta(days=1), _years_before(day, age)
        elif it.variant == "born_after":
            first, last = day + timedelta(days=1), day + timedelta(days=30)
        elif rng.random() < 0.85:  # most births are registered within the 60 days the law allows
            first, last = day - timedelta(days=60), day
        else:
            first, last = _years_before(day, 6) + timedelta(days=1), day - timedelta(days=61)
        born = date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))
        given = (0.5, 0.6) if it.kind == "late" else (0.9, 0.97)
        ids: dict[str, str] = {}
        family = ""
        sides: tuple[tuple[str, Gender, float], ...] = (
            ("father", "male", given[0]),
            ("mother", "female", given[1]),
        )
        for side, parent_gender, share in sides:
            if it.variant == f"{side}_gender":
                wrong = self.parent(_OTHER[parent_gender], born, anyone=True)
                if wrong is None:
                    raise GenerateError(f"no alive resident of {self.province} can be named as a parent")
                ids[f"{side}_id"] = wrong.personal_id
            elif it.side == side and it.kind in ("not_found", "malformed_id"):
                year = max(born.year - rng.randint(20, 40), 1900)
                pid = self.made_up(parent_gender, year, year)[0]
                ids[f"{side}_id"] = pid if it.kind == "not_found" else self.malformed(pid)
                if it.kind == "not_found":
                    self.not_found.append((rec, f"{side}_id"))
            elif rng.random() < share and (p := self.parent(parent_gender, born)) is not None:
                ids[f"{side}_id"] = p.personal_id
                family = family or p.full_name.split()[0]
        words = self.names.full_name(rng, gender).split()
        name = " ".join([family or words[0], *words[1:]])
        self.identity(rec, name, born, gender)
        rec.update(ids)
        return name, born, gender

    def link_birth(self, rec: dict[str, Any], day: date, marriage: _Item) -> tuple[str, date, Gender]:
        """The late registration of `marriage.person`'s adult child, of the other sex: aged 22 or more,
        born when the parent was 20 to 40 (`_Cast.old_single` keeps the parent 45 or more)."""
        parent = marriage.person
        assert parent is not None
        gender = _OTHER[parent.gender]
        age = full_years(parent.date_of_birth, day)
        born = _years_before(day, self.rng.randint(22, min(age - 20, 60)))
        born -= timedelta(days=self.rng.randrange(300))
        name = " ".join([parent.full_name.split()[0], *self.names.full_name(self.rng, gender).split()[1:]])
        self.identity(rec, name, born, gender)
        rec["father_id" if parent.gender == "male" else "mother_id"] = parent.personal_id
        return name, born, gender

    def refused_date(self, rec: dict[str, Any], it: _Item, day: date, as_of: date) -> None:
        """The marriage date M11 refuses: on or before the younger one's birth, or a century ahead."""
        if it.variant == "in_future":
            rec["event_date"] = (
                _years_before(as_of, -100) + timedelta(days=self.rng.randrange(365))
            ).isoformat()
        elif it.variant == "before_birth":
            assert it.person is not None and it.spouse is not None
            younger = max(it.person.date_of_birth, it.spouse.date_of_birth)
            when = max(younger - timedelta(days=self.rng.randrange(3650)), date(1900, 1, 1))
            rec["event_date"] = dmy(when) if self.rng.random() < 0.1 else when.isoformat()

    def death(self, rec: dict[str, Any], it: _Item) -> tuple[str, date, Gender]:
        c = it.person
        if c is None:  # not_found or a malformed ID: somebody the NPD does not know
            gender: Gender = "male" if self.rng.random() < 0.5 else "female"
            pid, name, born = self.made_up(gender, 1935, 1995)
            if it.variant == "legacy":
                pid = self.made_up_legacy()
            elif it.kind == "malformed_id":
                pid = self.malformed(pid)
        else:
            gender, name, born = c.gender, c.full_name, c.date_of_birth
            pid = c.legacy_id if it.kind == "legacy_id" and c.legacy_id else c.personal_id
        rec["personal_id"] = self.pid(pid)
        if it.kind == "not_found" and it.variant != "legacy":
            self.not_found.append((rec, "personal_id"))
        self.identity(rec, name, born, gender)
        if it.kind == "no_diacritics":
            rec["full_name"] = strip_diacritics(name)
        elif it.kind == "mismatch" and c is not None:
            self.mismatch(rec, c)
        return name, born, gender

    def marriage(self, rec: dict[str, Any], it: _Item) -> tuple[str, date, Gender]:
        c, wife_or_husband = it.person, it.spouse
        if c is None:
            pid, name, born = self.made_up(it.gender, 1965, 2000)
            gender = it.gender
            if it.kind == "malformed_id":
                pid = self.malformed(pid)
        else:
            pid, name, born, gender = c.personal_id, c.full_name, c.date_of_birth, c.gender
        if it.child_id is not None:  # direct relatives: the ID the NPD issues the linked birth's child
            spouse_id = it.child_id
        elif wife_or_husband is None:
            spouse_id = self.made_up(_OTHER[it.gender], 1965, 2000)[0]
            if it.kind == "malformed_id":
                spouse_id = self.malformed(spouse_id)
        else:
            spouse_id = wife_or_husband.personal_id
        rec["personal_id"] = self.pid(pid)
        rec["spouse_id"] = spouse_id
        if it.kind == "not_found":
            self.not_found.append((rec, "personal_id" if c is None else "spouse_id"))
        self.identity(rec, name, born, gender)
        if it.kind == "mismatch" and it.variant == "identity" and c is not None:
            self.mismatch(rec, c)
        return name, born, gender


def _outcome(it: _Item) -> str:
    if it.kind in _CLEAN_KINDS or it.kind == "link":
        return "cleaned"
    if it.kind == "refused":
        return REFUSAL_OUTCOMES[it.variant]
    return "corrected" if it.kind in ("no_diacritics", "legacy_id") else f"unsynced/{it.kind}"


def build_civil(
    spec: CivilGenerateSpec, *, seed: int, province: str, citizens: Sequence[Citizen], as_of: date
) -> CivilBatch:
    """The records of one civil-status source in publish order, and the outcome each must end in.

    `citizens` is the initial NPD (every province: deceased and wrongly-numbered citizens of any province
    may be named). Same arguments, same batch. Raises `GenerateError` when the population is short of what
    is asked, naming what was needed and how many were found.
    """
    where = f"the civil_status source of {province}"
    if not is_province(province):
        raise GenerateError(f"unknown province code {province!r} for a generated source")
    if spec.unsynced.duplicate and not spec.clean:
        raise GenerateError(f"{where}: duplicates repeat a cleaned record, but no clean event is asked for")
    period = spec.period or default_period(as_of)
    if period.end > as_of:
        raise GenerateError(f"{where}: the period ends {period.end}, after the as-of date {as_of}")
    rng = random.Random(f"{seed}:{SECTOR}:{province}:records")
    items = _plan(rng, spec)
    cast = _Cast(rng, province, citizens, period.start, period.end)
    cast.cast(items)
    if problems := cast.problems():
        raise GenerateError(
            f"cannot generate the civil_status records of {province}: {'; '.join(problems)}; "
            f"generate more population for {province} or lower the counts"
        )
    writer = _Writer(rng, province, citizens, [c for c in cast.alive if c.personal_id not in cast.used])
    days = (period.end - period.start).days + 1
    # Events in date order along the stream, as a registry publishes them; a duplicate keeps its original's.
    offsets = iter(sorted(rng.randrange(days) for it in items if it.kind != "duplicate"))
    records: list[dict[str, Any]] = []
    outcomes: dict[str, str] = {}
    events: dict[str, str] = {}
    originals: list[tuple[dict[str, Any], str, date, Gender]] = []  # cleaned, not yet repeated
    births: list[tuple[dict[str, Any], date, Gender]] = []  # cleaned births: the NPD issues them IDs
    issued: set[str] = {c.personal_id for c in citizens}  # the NPD's IDs, as the births issue theirs
    for n, it in enumerate(items):
        if it.kind == "duplicate":
            at = rng.randrange(len(originals))
            original, name, born, gender = originals[at]
            if len(originals) > 1:  # swap-remove: each original is repeated once while any are left
                originals[at] = originals[-1]
                originals.pop()
            rec = dict(original, record_id=f"{RECORD_PREFIX}-{province}-{n + 1:07d}")
            writer.identity(rec, name, born, gender)
            event = original["event"]
        else:
            day = period.start + timedelta(days=next(offsets))
            event = it.event
            rec = writer.base(n, event, day)
            if it.kind == "link" and it.pair is not None:
                name, born, gender = writer.link_birth(rec, day, it.pair)
            elif event == "birth":
                name, born, gender = writer.birth(rec, it, day)
            elif event == "death":
                name, born, gender = writer.death(rec, it)
            else:
                name, born, gender = writer.marriage(rec, it)
            if it.kind == "missing_fields":
                extra = {"birth": (), "death": ("personal_id",), "marriage": ("personal_id", "spouse_id")}
                writer.spoil(rec, _REQUIRED + extra[event], born)
            elif it.kind == "refused":
                writer.refused_date(rec, it, day, as_of)
            if it.kind in _CLEAN_KINDS:
                originals.append((rec, name, born, gender))
            if it.kind in (*_CLEAN_KINDS, "link") and event == "birth":
                births.append((rec, born, gender))
                if spec.refused_marriages.direct_relatives:  # the ID the NPD will issue, in publish order
                    pid = issue_personal_id(
                        province, gender, born.year, rec["registration_no"], issued.__contains__
                    )
                    issued.add(pid)
                    if it.pair is not None:
                        it.pair.child_id = pid
        records.append(rec)
        outcomes[rec["record_id"]] = _outcome(it)
        events[rec["record_id"]] = event
    writer.keep_clear_of(births)
    return CivilBatch(
        records=records,
        outcomes=outcomes,
        events=events,
        birth_chains=spec.births + spec.late_births + spec.refused_marriages.direct_relatives,
        death_chains=spec.deaths + spec.corrected.no_diacritics + spec.corrected.legacy_id,
    )


def generate_civil(
    spec: CivilGenerateSpec, *, seed: int, province: str, citizens: Sequence[Citizen], as_of: date
) -> list[dict[str, Any]]:
    """`build_civil(...).records`: the records alone, for writing or publishing."""
    return build_civil(spec, seed=seed, province=province, citizens=citizens, as_of=as_of).records
