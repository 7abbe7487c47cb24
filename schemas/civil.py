"""The civil-status rules: what a birth, death or marriage registration does to the NPD. Pure, no I/O.

Civil-status records change the National Population Database instead of only checking it. One record
is decided by `decide_civil(record, people, registered, id_taken)`; the first rule that applies wins:

1. C1 `rejected`: as CONTRACT rule 1 (decided earlier, by `schemas.records.parse_line`/`parse_object`).
2. C2 `unsynced/missing_fields`: a required field is absent, blank or unreadable. Every event requires
   full_name, date_of_birth, gender, event, event_date, registration_no; death and marriage also
   personal_id; marriage also spouse_id. An unreadable event word is a missing `event` (personal_id and
   spouse_id are then not required). `fields` lists every such field, in the order personal_id,
   full_name, date_of_birth, gender, event, event_date, registration_no, spouse_id.
3. C3 the NPD already holds a registration with the same (province, registration_no): made by the same
   record_id, this is a replay and gets the stored decision unchanged (`replayed`, no change); made by
   another record_id, `unsynced/duplicate`.

Birth (the child has no ID yet):

4. B4 each parent ID given (`father_id`, `mother_id`; absent or blank: not given), step by step for
   both parents, `fields` naming every parent field that fails the step:
   a. not a 12-digit ID with a known province code (a legacy 9-digit ID is not accepted) →
      `unsynced/malformed_id`;
   b. no such citizen → `unsynced/not_found`;
   c. the ID contradicts that citizen's own gender or birth year (CONTRACT rule 6) →
      `unsynced/malformed_id`;
   d. the father is not male, the mother not female → `unsynced/mismatch`.
5. B5 date_of_birth after event_date, or outside 1900–2399 (no ID can state it) →
   `unsynced/mismatch` [date_of_birth].
6. B6 `cleaned`: the NPD issues a new 12-digit ID (`issue_personal_id`) and the child becomes a citizen.

Death (the record's personal_id is the deceased):

4. D4–D7: CONTRACT rules 3–6 on personal_id (malformed shape → `unsynced/malformed_id`; a legacy ID
   nobody holds or an ID nobody holds → `unsynced/not_found`; an ID contradicting its citizen →
   `unsynced/malformed_id`); `fields` stay empty, as in CONTRACT.
5. D8 the citizen is already deceased → `unsynced/deceased`.
6. D9 name, birth date or gender differ (CONTRACT rule 10, diacritics folded) → `unsynced/mismatch`
   with the differing fields.
7. D10 event_date (the date of death) before the citizen's birth date → `unsynced/mismatch` [event_date].
8. D11 `corrected` when matched only through a legacy ID or a name without diacritics (CONTRACT rule 11,
   corrections emitted), else `cleaned`: the citizen becomes deceased on event_date.

Marriage (personal_id and spouse_id are the two people):

4. M4–M7: D4–D7 on personal_id (`fields` empty), then the same checks on spouse_id (`fields`
   [spouse_id]); a spouse_id naming the person themself → `unsynced/mismatch` [spouse_id].
5. M8 either is deceased → `unsynced/deceased`: `fields` [] for the person, [spouse_id] for the spouse
   (the person is checked first).
6. M9 the person's name, birth date or gender differ → `unsynced/mismatch` with the differing fields.
7. M10 either is already married (marital_status `married`, or a spouse_id recorded) →
   `unsynced/mismatch`: `fields` [marital_status] for the person, [spouse_id, marital_status] for the
   spouse (the person is checked first).
8. M11 the marriage date (event_date) is after `today`, or not after both births (on or before the
   person's birth date, or the spouse's) → `unsynced/mismatch`: [event_date] for a date in the future,
   [event_date, date_of_birth] before the person's birth, [event_date, spouse_id] before the spouse's
   (in that order of checks).
   The marriage conditions of the Law on Marriage and Family (52/2014/QH13, art. 8), each refusal
   `unsynced/ineligible` with `fields` naming the condition (see MARRIAGE_CONDITIONS):
9. M12 age at the marriage date: a man under full 20 years, a woman under full 18 (art. 8.1.a) →
   [marriage_age] for the person, [spouse_id, marriage_age] for the spouse (the person first).
10. M13 the two are of the same sex (art. 8.2: not recognised) → [same_sex].
11. M14 one descends from the other through the NPD's father_id/mother_id links, any number of
    generations (direct relatives, art. 8.1.d and 5.2.d) → [direct_relatives].
12. M15 `corrected`/`cleaned` as D11 for the person: both become married to each other.

A decision carries the changes to apply as data (`NewCitizen`, `UpdateCitizen`); the storage layer applies
them and stores the registration of every synced decision (`Registration`), which later replays find.
Unsynced decisions change nothing, store nothing, and name no personal ID.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from schemas.citizen import Citizen
from schemas.outcomes import Outcome, Sector
from schemas.personal_id import consistent_with, id_shape, make_personal_id
from schemas.records import Event, Gender, Record, civil_required, parse_date
from schemas.rules import differing_fields, npd_corrections

__all__ = [
    "CIVIL_FIELDS",
    "MARRIAGE_CONDITIONS",
    "CivilDecision",
    "IdSpaceExhaustedError",
    "NewCitizen",
    "NpdChange",
    "Registration",
    "UpdateCitizen",
    "decide_civil",
    "full_years",
    "is_married",
    "issue_personal_id",
    "lookup_ids",
    "marriage_refusal",
    "registration_key",
]

# The order in which `fields` lists a civil-status record's fields.
CIVIL_FIELDS: tuple[str, ...] = civil_required("marriage")
_SERIALS = 1_000_000
_PARENTS: tuple[tuple[str, Gender], ...] = (("father_id", "male"), ("mother_id", "female"))
_PARENT_NAMES = {"father_id": "father_name", "mother_id": "mother_name"}
_NO_CITIZEN = object()  # a parent ID given with a JSON type no ID has (a number, a list …)
# Full years a man / a woman must have reached on the marriage date (52/2014/QH13 art. 8.1.a).
MARRIAGE_AGE: Mapping[Gender, int] = {"male": 20, "female": 18}
# Why a marriage was refused, by the `fields` of its result (M11–M14): what its correction task says.
MARRIAGE_CONDITIONS: Mapping[tuple[str, ...], str] = {
    ("event_date",): "M11: the marriage date is in the future",
    ("event_date", "date_of_birth"): "M11: the marriage date is not after the person's birth date",
    ("event_date", "spouse_id"): "M11: the marriage date is not after the spouse's birth date",
    ("marriage_age",): (
        "M12: the person is under the marriage age on the marriage date (men full 20, women full 18; "
        "Law 52/2014/QH13 art. 8.1.a)"
    ),
    ("spouse_id", "marriage_age"): (
        "M12: the spouse is under the marriage age on the marriage date (men full 20, women full 18; "
        "Law 52/2014/QH13 art. 8.1.a)"
    ),
    ("same_sex",): "M13: the two are of the same sex (Law 52/2014/QH13 art. 8.2)",
    ("direct_relatives",): (
        "M14: one is a direct ancestor of the other in the NPD (Law 52/2014/QH13 art. 8.1.d, 5.2.d)"
    ),
}


class IdSpaceExhaustedError(ValueError):
    """Every one of the million IDs of a (province, gender, birth year) is taken: none can be issued."""


@dataclass(frozen=True, slots=True)
class NewCitizen:
    """Add this citizen to the NPD (a birth)."""

    citizen: Citizen


@dataclass(frozen=True, slots=True)
class UpdateCitizen:
    """Set these fields of the citizen `personal_id` (JSON values; dates as `YYYY-MM-DD`)."""

    personal_id: str
    values: Mapping[str, str | None]


NpdChange = NewCitizen | UpdateCitizen


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration the NPD applied and keeps, keyed by (province, registration_no): what a replay
    of it answers."""

    record_id: str
    event: Event
    outcome: Outcome
    fields: tuple[str, ...] = ()
    corrections: Mapping[str, str] = field(default_factory=dict)
    personal_id: str | None = None
    spouse_personal_id: str | None = None


@dataclass(frozen=True, slots=True)
class CivilDecision:
    """One civil-status record's outcome and what it does to the NPD."""

    outcome: Outcome
    # missing_fields: absent/unreadable; mismatch: differing; others as the module docstring says.
    fields: tuple[str, ...] = ()
    # corrected: field → the NPD's authoritative value, the correction to emit.
    corrections: Mapping[str, str] = field(default_factory=dict)
    # Synced only: the 12-digit ID issued (birth) or resolved (death, marriage), and the spouse's.
    personal_id: str | None = None
    spouse_personal_id: str | None = None
    changes: tuple[NpdChange, ...] = ()
    replayed: bool = False  # the stored decision of an earlier delivery of the same record

    def registration(self, record_id: str, event: Event) -> Registration | None:
        """What the NPD stores for this decision: a registration for a synced, new decision, else None."""
        if not self.outcome.synced or self.replayed:
            return None
        return Registration(
            record_id, event, self.outcome, self.fields, dict(self.corrections), self.personal_id,
            self.spouse_personal_id,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The public part, JSON-ready (changes are the storage layer's business)."""
        return {
            "outcome": self.outcome.value,
            "fields": list(self.fields),
            "corrections": dict(self.corrections),
            "personal_id": self.personal_id,
            "spouse_personal_id": self.spouse_personal_id,
            "replayed": self.replayed,
        }


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


def registration_key(record: Record) -> tuple[str, str] | None:
    """(province, trimmed registration_no): the key of C3, or None when the number is missing."""
    number = _text(record.raw.get("registration_no"))
    return (record.province, number) if number is not None else None


def lookup_ids(record: Record) -> list[str]:
    """The trimmed IDs of the NPD citizens `decide_civil` needs in `people` (person, spouse, parents)."""
    names = {"birth": ("father_id", "mother_id"), "death": ("personal_id",)}.get(
        record.event or "", ("personal_id", "spouse_id")
    )
    ids = (_text(record.raw.get(name)) for name in names)
    return list(dict.fromkeys(i for i in ids if i is not None))


def issue_personal_id(
    province: str, gender: Gender, birth_year: int, registration_no: str, id_taken: Callable[[str], bool]
) -> str:
    """A new ID `PPP G YY RRRRRR`: province of registration, gender/century, year, six digits.

    Deterministic: the six digits start from a hash of (province, registration_no), and the next
    candidates (wrapping round) are probed until one is not `id_taken`. So a registration always gets
    the same ID from the same NPD, and two registrations never get the same ID.
    """
    digest = hashlib.sha256(f"{province}|{registration_no}".encode()).digest()
    start = int.from_bytes(digest[:8], "big") % _SERIALS
    for step in range(_SERIALS):
        candidate = make_personal_id(province, gender, birth_year, (start + step) % _SERIALS)
        if not id_taken(candidate):
            return candidate
    raise IdSpaceExhaustedError(
        f"every ID of province {province}, {gender}, born {birth_year} is taken; none can be issued"
    )


def _display_name(name: str) -> str:
    """The name as the NPD keeps it: NFC, ends trimmed, inner spaces collapsed, case as given."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def _resolve(
    given: str, people: Mapping[str, Citizen], field_name: tuple[str, ...]
) -> CivilDecision | tuple[Citizen, Literal["personal", "legacy"]]:
    """CONTRACT rules 3–6 on one ID: a decision naming `field_name`, or the citizen and the ID's shape."""
    shape = id_shape(given)
    if shape == "malformed":
        return CivilDecision(Outcome.MALFORMED_ID, field_name)
    citizen = people.get(given)
    if citizen is None:
        return CivilDecision(Outcome.NOT_FOUND, field_name)
    checked = citizen.personal_id if shape == "legacy" else given
    if not consistent_with(checked, citizen.gender, citizen.date_of_birth.year):
        return CivilDecision(Outcome.MALFORMED_ID, field_name)
    return citizen, shape


def is_married(citizen: Citizen) -> bool:
    """M10's test: marital_status `married` or a spouse_id recorded (the generator keeps to it too)."""
    extra = citizen.model_extra or {}
    return extra.get("marital_status") == "married" or bool(extra.get("spouse_id"))


def _birth(
    record: Record, people: Mapping[str, Citizen], event_date: date, id_taken: Callable[[str], bool]
) -> CivilDecision:
    assert record.full_name is not None and record.date_of_birth is not None and record.gender is not None
    given: dict[str, object] = {}
    for name, _ in _PARENTS:
        value = record.raw.get(name)
        if isinstance(value, str):
            if value.strip():
                given[name] = value.strip()
        elif value is not None:
            given[name] = _NO_CITIZEN
    # B4, one step at a time for both parents.
    bad = tuple(n for n, v in given.items() if not (isinstance(v, str) and id_shape(v) == "personal"))
    if bad:
        return CivilDecision(Outcome.MALFORMED_ID, bad)
    parents = {n: people.get(str(v)) for n, v in given.items()}
    bad = tuple(n for n, c in parents.items() if c is None)
    if bad:
        return CivilDecision(Outcome.NOT_FOUND, bad)
    found = {n: c for n, c in parents.items() if c is not None}
    bad = tuple(
        n for n, c in found.items() if not consistent_with(c.personal_id, c.gender, c.date_of_birth.year)
    )
    if bad:
        return CivilDecision(Outcome.MALFORMED_ID, bad)
    bad = tuple(n for n, sex in _PARENTS if n in found and found[n].gender != sex)
    if bad:
        return CivilDecision(Outcome.MISMATCH, bad)
    # B5.
    born = record.date_of_birth
    if born > event_date or not 1900 <= born.year <= 2399:
        return CivilDecision(Outcome.MISMATCH, ("date_of_birth",))
    # B6.
    registration_no = _text(record.raw.get("registration_no"))
    assert registration_no is not None  # C2 passed
    personal_id = issue_personal_id(record.province, record.gender, born.year, registration_no, id_taken)
    child: dict[str, Any] = {
        "personal_id": personal_id,
        "full_name": _display_name(record.full_name),
        "date_of_birth": born,
        "gender": record.gender,
        "birth_province": record.province,
        "permanent_province": record.province,
        "status": "alive",
        "marital_status": "single",
        "residence_status": "pending",  # a later step registers the permanent residence
    }
    for name, parent in found.items():
        child[name] = parent.personal_id
        child[_PARENT_NAMES[name]] = parent.full_name
    return CivilDecision(
        Outcome.CLEANED, personal_id=personal_id, changes=(NewCitizen(Citizen.model_validate(child)),)
    )


def _death(record: Record, people: Mapping[str, Citizen], event_date: date) -> CivilDecision:
    assert record.personal_id is not None
    resolved = _resolve(record.personal_id, people, ())
    if isinstance(resolved, CivilDecision):
        return resolved
    citizen, shape = resolved
    if citizen.deceased:
        return CivilDecision(Outcome.DECEASED)
    differing = differing_fields(record, citizen)
    if differing:
        return CivilDecision(Outcome.MISMATCH, differing)
    if event_date < citizen.date_of_birth:
        return CivilDecision(Outcome.MISMATCH, ("event_date",))
    corrections = npd_corrections(record, citizen, shape)
    change = UpdateCitizen(
        citizen.personal_id, {"status": "deceased", "date_of_death": event_date.isoformat()}
    )
    return CivilDecision(
        Outcome.CORRECTED if corrections else Outcome.CLEANED,
        corrections=corrections,
        personal_id=citizen.personal_id,
        changes=(change,),
    )


def _marriage(
    record: Record, people: Mapping[str, Citizen], event_date: date, today: date | None
) -> CivilDecision:
    assert record.personal_id is not None
    spouse_id = _text(record.raw.get("spouse_id"))
    assert spouse_id is not None  # C2 passed
    resolved = _resolve(record.personal_id, people, ())
    if isinstance(resolved, CivilDecision):
        return resolved
    person, shape = resolved
    resolved_spouse = _resolve(spouse_id, people, ("spouse_id",))
    if isinstance(resolved_spouse, CivilDecision):
        return resolved_spouse
    spouse, _ = resolved_spouse
    if spouse.personal_id == person.personal_id:
        return CivilDecision(Outcome.MISMATCH, ("spouse_id",))
    if person.deceased:
        return CivilDecision(Outcome.DECEASED)
    if spouse.deceased:
        return CivilDecision(Outcome.DECEASED, ("spouse_id",))
    differing = differing_fields(record, person)
    if differing:
        return CivilDecision(Outcome.MISMATCH, differing)
    if is_married(person):
        return CivilDecision(Outcome.MISMATCH, ("marital_status",))
    if is_married(spouse):
        return CivilDecision(Outcome.MISMATCH, ("spouse_id", "marital_status"))
    refused = marriage_refusal(person, spouse, event_date, people, today)
    if refused is not None:
        return refused
    corrections = npd_corrections(record, person, shape)
    changes = tuple(
        UpdateCitizen(
            a.personal_id,
            {"marital_status": "married", "spouse_id": b.personal_id, "spouse_name": b.full_name},
        )
        for a, b in ((person, spouse), (spouse, person))
    )
    return CivilDecision(
        Outcome.CORRECTED if corrections else Outcome.CLEANED,
        corrections=corrections,
        personal_id=person.personal_id,
        spouse_personal_id=spouse.personal_id,
        changes=changes,
    )


def full_years(born: date, on: date) -> int:
    """Full years of age on `on` (someone born on 29 February turns a year older on 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _ancestors(citizen: Citizen, people: Mapping[str, Citizen]) -> set[str]:
    """Every personal ID reachable upwards from `citizen` through father_id/mother_id in `people`."""
    found: set[str] = set()
    todo = [citizen]
    while todo:
        extra = todo.pop().model_extra or {}
        for name in ("father_id", "mother_id"):
            parent_id = extra.get(name)
            if not isinstance(parent_id, str) or parent_id in found:
                continue
            found.add(parent_id)  # a parent the NPD no longer holds still counts as an ancestor
            parent = people.get(parent_id)
            if parent is not None:
                todo.append(parent)
    return found


def marriage_refusal(
    person: Citizen,
    spouse: Citizen,
    married_on: date,
    people: Mapping[str, Citizen],
    today: date | None = None,
) -> CivilDecision | None:
    """M11–M14 for two resolved, living, unmarried citizens: the refusal, or None when they may marry."""
    # M11.
    if today is not None and married_on > today:
        return CivilDecision(Outcome.MISMATCH, ("event_date",))
    if married_on <= person.date_of_birth:
        return CivilDecision(Outcome.MISMATCH, ("event_date", "date_of_birth"))
    if married_on <= spouse.date_of_birth:
        return CivilDecision(Outcome.MISMATCH, ("event_date", "spouse_id"))
    # M12.
    for who, fields in ((person, ("marriage_age",)), (spouse, ("spouse_id", "marriage_age"))):
        if full_years(who.date_of_birth, married_on) < MARRIAGE_AGE[who.gender]:
            return CivilDecision(Outcome.INELIGIBLE, fields)
    # M13.
    if person.gender == spouse.gender:
        return CivilDecision(Outcome.INELIGIBLE, ("same_sex",))
    # M14.
    if person.personal_id in _ancestors(spouse, people) or spouse.personal_id in _ancestors(person, people):
        return CivilDecision(Outcome.INELIGIBLE, ("direct_relatives",))
    return None


def decide_civil(
    record: Record,
    people: Mapping[str, Citizen],
    registered: Registration | None,
    id_taken: Callable[[str], bool],
    *,
    today: date | None = None,
) -> CivilDecision:
    """Apply the civil-status rules in order (module docstring); the first that applies wins.

    `people`: the NPD's citizens by the IDs `lookup_ids(record)` names (a legacy ID maps to its
    citizen, as `PopulationStore.lookup_many` answers); absent IDs are left out. For a marriage, M14
    also reads the ancestors of both people through `people.get` (their father_id/mother_id): a mapping
    that looks citizens up as they are asked for serves it. `registered`: the NPD's registration under
    `registration_key(record)`, or None. `id_taken`: whether the NPD already holds a personal ID (for
    issuing a birth's). `today`: the NPD's date, for M11's "not in the future" (None: not checked).
    A record of another sector raises ValueError.
    """
    if record.sector != Sector.CIVIL_STATUS:
        raise ValueError(
            f"record {record.record_id!r} is a {record.sector} record; decide_civil judges civil_status "
            "records only (schemas.rules.decide judges the others)"
        )
    # C2.
    missing = _missing(record)
    event_date = parse_date(record.raw.get("event_date"))
    if missing or record.event is None or event_date is None:
        return CivilDecision(Outcome.MISSING_FIELDS, missing or ("event",))
    # C3.
    if registered is not None:
        if registered.record_id != record.record_id:
            return CivilDecision(Outcome.DUPLICATE)
        return CivilDecision(
            registered.outcome,
            registered.fields,
            dict(registered.corrections),
            registered.personal_id,
            registered.spouse_personal_id,
            replayed=True,
        )
    if record.event == "birth":
        return _birth(record, people, event_date, id_taken)
    if record.event == "death":
        return _death(record, people, event_date)
    return _marriage(record, people, event_date, today)


def _missing(record: Record) -> tuple[str, ...]:
    """C2's fields: `record.missing`, plus any field the event requires that a hand-built Record lacks."""
    absent = set(record.missing)
    read = {
        "personal_id": record.personal_id,
        "full_name": record.full_name,
        "date_of_birth": record.date_of_birth,
        "gender": record.gender,
        "event": record.event,
        "event_date": parse_date(record.raw.get("event_date")),
        "registration_no": _text(record.raw.get("registration_no")),
        "spouse_id": _text(record.raw.get("spouse_id")),
    }
    absent.update(f for f in civil_required(record.event) if read[f] is None)
    return tuple(f for f in CIVIL_FIELDS if f in absent)
