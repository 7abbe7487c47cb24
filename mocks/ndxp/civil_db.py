"""The NPD's writes: civil-status registrations and permanent-residence changes, on the population's store.

`CivilRegistry.register` decides each record with the pure `schemas.civil.decide_civil` and applies the
changes the decision lists, in request order, in one transaction (all or nothing). A synced registration
is remembered in `civil_registrations`, keyed by (province, registration_no): the same record delivered
again gets the stored answer (`replayed`) and changes nothing. An unsynced answer changes nothing and is
remembered in `civil_refusals` by (province, record_id, a digest of the record's content): the same record
delivered again (Kafka delivers at least once) gets the same answer even if later records changed what
it would see now, while a corrected re-publication (other content) is decided afresh. Residence changes
are idempotent by the caller's reference.

Every method blocks (SQLite or PostgreSQL): the API calls them in the thread pool. The SQL is SQLite's; the
PostgreSQL store translates it (`mocks.ndxp.db_postgres.postgres_dialect`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

from mocks.ndxp.db import NpdTransaction, PopulationStore
from mocks.ndxp.exceptions import NdxpError
from schemas.citizen import Citizen, mask_id
from schemas.civil import (
    CivilDecision,
    NewCitizen,
    NpdChange,
    Registration,
    UpdateCitizen,
    decide_civil,
    lookup_ids,
    registration_key,
)
from schemas.outcomes import Outcome, Sector
from schemas.records import Rejected, parse_object

__all__ = [
    "CivilRegistry",
    "CivilResult",
    "ResidenceChange",
    "ResidenceConflictError",
    "UnknownCitizenError",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS civil_registrations (
    province TEXT NOT NULL,
    registration_no TEXT NOT NULL,  -- ends trimmed
    record_id TEXT NOT NULL,        -- the record that made it: the same one again is a replay
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,          -- cleaned or corrected: only registrations that changed the NPD
    fields TEXT NOT NULL,           -- JSON array
    corrections TEXT NOT NULL,      -- JSON object, so a replay answers the corrections too
    personal_id TEXT,
    spouse_personal_id TEXT,
    registered_at TEXT NOT NULL,    -- UTC, ISO 8601
    PRIMARY KEY (province, registration_no)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS civil_refusals (
    province TEXT NOT NULL,
    record_id TEXT NOT NULL,
    digest TEXT NOT NULL,           -- sha256 of the record's canonical JSON: a changed record is new
    outcome TEXT NOT NULL,          -- unsynced/…
    fields TEXT NOT NULL,           -- JSON array
    decided_at TEXT NOT NULL,
    PRIMARY KEY (province, record_id, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS residence_changes (
    agency TEXT NOT NULL,
    reference TEXT NOT NULL,        -- the caller's idempotency key, unique per agency
    action TEXT NOT NULL,           -- register or deregister
    personal_id TEXT NOT NULL,
    province TEXT,                  -- register only
    on_date TEXT NOT NULL,          -- since (register) or on (deregister)
    changed_at TEXT NOT NULL,
    PRIMARY KEY (agency, reference)
) WITHOUT ROWID;
"""
_REGISTERED = (
    "SELECT record_id, event, outcome, fields, corrections, personal_id, spouse_personal_id "
    "FROM civil_registrations WHERE province = ? AND registration_no = ?"
)
_REGISTER = "INSERT INTO civil_registrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_REFUSED = "SELECT outcome, fields FROM civil_refusals WHERE province = ? AND record_id = ? AND digest = ?"
_REFUSE = "INSERT OR IGNORE INTO civil_refusals VALUES (?, ?, ?, ?, ?, ?)"
# The NPD's "today" for M11 (a marriage date in the future): Vietnam's date (UTC+7, no daylight saving).
VIETNAM = timezone(timedelta(hours=7), "ICT")
_BASIC = frozenset(Citizen.model_fields)

Action = Literal["register", "deregister"]
_Change = tuple[Action, str, str | None, date]  # a residence change: action, personal_id, province, date


class UnknownCitizenError(NdxpError):
    """No citizen with this personal ID in the NPD (404)."""


class ResidenceConflictError(NdxpError):
    """The residence change is not allowed (409); `disclosed`: the citizen's fields the refusal reveals."""

    def __init__(self, message: str, personal_id: str | None = None, disclosed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.personal_id = personal_id
        self.disclosed = tuple(disclosed)


@dataclass(frozen=True, slots=True)
class CivilResult:
    """One registration's answer, and what the audit must record about it."""

    record_id: str | None
    outcome: str
    fields: tuple[str, ...] = ()
    corrections: Mapping[str, str] = field(default_factory=dict)
    personal_id: str | None = None
    spouse_personal_id: str | None = None
    replayed: bool = False
    detail: str | None = None
    # (personal_id, fields written or disclosed) per citizen concerned: the audit entries' content.
    touched: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def public(self) -> dict[str, Any]:
        """The JSON answer (`CivilResultPublic`)."""
        return {
            "record_id": self.record_id,
            "outcome": self.outcome,
            "fields": list(self.fields),
            "corrections": dict(self.corrections),
            "personal_id": self.personal_id,
            "spouse_personal_id": self.spouse_personal_id,
            "replayed": self.replayed,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ResidenceChange:
    """A residence change applied, or (`replayed`) applied before under the same reference."""

    personal_id: str
    residence_status: Literal["registered", "ended"]
    reference: str
    replayed: bool
    # The citizen's fields written (for the audit); only personal_id for a replay.
    touched: tuple[str, ...]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class CivilRegistry:
    """Civil-status registrations and residence changes against one `PopulationStore`."""

    def __init__(self, db: PopulationStore, today: Callable[[], date] | None = None) -> None:
        """`today`: the NPD's date for M11 (default: the date in Vietnam now)."""
        self.db = db
        self.today = today or (lambda: datetime.now(VIETNAM).date())
        self._lock = threading.Lock()
        self._ready = False

    @contextmanager
    def _transaction(self) -> Iterator[NpdTransaction]:
        if not self._ready:  # the tables, once per registry (created lazily: this runs in a worker thread)
            with self._lock:
                if not self._ready:
                    self.db.ensure_schema(_SCHEMA)
                    self._ready = True
        with self.db.transaction() as conn:  # the write lock now: decisions read what they then change
            yield conn

    # ------------------------------------------------------------ civil-status registrations

    def register(self, objects: Sequence[object]) -> list[CivilResult]:
        """Decide and apply each record in order, all in one transaction; one result per object."""
        with self._transaction() as conn:
            return [self._register_one(conn, obj) for obj in objects]

    def _register_one(self, conn: NpdTransaction, obj: object) -> CivilResult:
        record = parse_object(obj)
        if isinstance(record, Rejected):
            return CivilResult(record.record_id, Outcome.REJECTED.value, detail=record.reason)
        if record.sector != Sector.CIVIL_STATUS:
            detail = f"sector {record.sector!r}: this endpoint registers civil_status records only"
            return CivilResult(record.record_id, Outcome.REJECTED.value, detail=detail)
        digest = _digest(obj)
        row = conn.execute(_REFUSED, (record.province, record.record_id, digest)).fetchone()
        if row is not None:  # this very record was refused before: the same answer, nothing written
            fields = tuple(json.loads(row[1]))
            return CivilResult(record.record_id, row[0], fields, replayed=True)
        key = registration_key(record)
        registered = self._registered(conn, key) if key else None
        people = _People(conn, conn.lookup_many(lookup_ids(record)))
        decision = decide_civil(record, people, registered, self._id_taken(conn), today=self.today())
        if decision.outcome.unsynced:
            conn.execute(
                _REFUSE,
                (record.province, record.record_id, digest, decision.outcome.value,
                 json.dumps(list(decision.fields)), _now()),
            )  # fmt: skip
        touched = self._apply(conn, decision.changes)
        stored = decision.registration(record.record_id, record.event) if record.event else None
        if stored is not None and key is not None:
            self._store(conn, key, stored)
        if decision.replayed:  # nothing written; the IDs are disclosed again
            touched = {pid: ("personal_id",) for pid in _ids(decision)}
        return CivilResult(
            record.record_id,
            decision.outcome.value,
            decision.fields,
            decision.corrections,
            decision.personal_id,
            decision.spouse_personal_id,
            decision.replayed,
            touched=tuple(touched.items()),
        )

    @staticmethod
    def _store(conn: NpdTransaction, key: tuple[str, str], stored: Registration) -> None:
        conn.execute(
            _REGISTER,
            (
                *key, stored.record_id, stored.event, stored.outcome.value, json.dumps(list(stored.fields)),
                json.dumps(dict(stored.corrections)), stored.personal_id, stored.spouse_personal_id, _now(),
            ),
        )  # fmt: skip

    @staticmethod
    def _registered(conn: NpdTransaction, key: tuple[str, str]) -> Registration | None:
        row = conn.execute(_REGISTERED, key).fetchone()
        if row is None:
            return None
        record_id, event, outcome, fields, corrections, personal_id, spouse_personal_id = row
        return Registration(
            record_id, event, Outcome(outcome), tuple(json.loads(fields)), json.loads(corrections),
            personal_id, spouse_personal_id,
        )  # fmt: skip

    @staticmethod
    def _id_taken(conn: NpdTransaction) -> Callable[[str], bool]:
        def taken(personal_id: str) -> bool:
            row = conn.execute("SELECT 1 FROM citizens WHERE personal_id = ?", (personal_id,)).fetchone()
            return row is not None

        return taken

    def _apply(self, conn: NpdTransaction, changes: Sequence[NpdChange]) -> dict[str, tuple[str, ...]]:
        """Write the changes; personal_id → the fields written (with personal_id, which the answer shows)."""
        touched: dict[str, tuple[str, ...]] = {}
        for change in changes:
            if isinstance(change, NewCitizen):
                citizen = change.citizen
                written = tuple(citizen.model_dump(exclude_none=True))
            else:
                citizen = self._updated(conn, change)
                written = ("personal_id", *change.values)
            conn.save([citizen])
            touched[citizen.personal_id] = written
        return touched

    @staticmethod
    def _updated(conn: NpdTransaction, change: UpdateCitizen) -> Citizen:
        current = conn.lookup_many([change.personal_id]).get(change.personal_id)
        if current is None:  # decide_civil resolved this citizen from the same transaction's view
            raise UnknownCitizenError(f"citizen {mask_id(change.personal_id)} vanished mid-transaction")
        return _with_values(current, change.values)

    # ------------------------------------------------------------ permanent residence

    def register_residence(
        self, agency: str, personal_id: str, province: str, since: date, reference: str
    ) -> ResidenceChange:
        """Register the citizen's permanent residence in `province` from `since` (idempotent by reference).

        Raises `UnknownCitizenError` (no such citizen) or `ResidenceConflictError` (deceased, `since`
        before the birth, or the reference already used for a different change).
        """
        with self._transaction() as conn:
            change: _Change = ("register", personal_id, province, since)
            if self._replay(conn, agency, reference, change):
                return ResidenceChange(personal_id, "registered", reference, True, ("personal_id",))
            citizen = self._citizen(conn, personal_id)
            if citizen.deceased:
                raise ResidenceConflictError(
                    f"citizen {mask_id(personal_id)} is recorded as deceased: no permanent residence can "
                    "be registered for them",
                    personal_id,
                    ("status",),
                )
            if since < citizen.date_of_birth:
                raise ResidenceConflictError(
                    f"since {since} is before the citizen's birth date; send the date the residence began",
                    personal_id,
                    ("date_of_birth",),
                )
            values: dict[str, str | None] = {
                "residence_status": "registered",
                "permanent_province": province,
                "residence_since": since.isoformat(),
                "residence_ended_on": None,
            }
            conn.save([_with_values(citizen, values)])
            self._remember(conn, agency, reference, change)
            return ResidenceChange(personal_id, "registered", reference, False, ("personal_id", *values))

    def end_residence(self, agency: str, personal_id: str, on: date, reference: str) -> ResidenceChange:
        """End the citizen's permanent residence on `on` (idempotent by reference).

        Raises `UnknownCitizenError`, or `ResidenceConflictError` when the residence has already ended,
        `on` is before the birth, or the reference was used for a different change. A living citizen may
        deregister (moving abroad); the usual caller is the death procedure.
        """
        with self._transaction() as conn:
            change: _Change = ("deregister", personal_id, None, on)
            if self._replay(conn, agency, reference, change):
                return ResidenceChange(personal_id, "ended", reference, True, ("personal_id",))
            citizen = self._citizen(conn, personal_id)
            extra = citizen.model_extra or {}
            if extra.get("residence_status") == "ended":
                raise ResidenceConflictError(
                    f"the permanent residence of citizen {mask_id(personal_id)} already ended on "
                    f"{extra.get('residence_ended_on')}; register a new one before ending it again",
                    personal_id,
                    ("residence_status", "residence_ended_on"),
                )
            if on < citizen.date_of_birth:
                raise ResidenceConflictError(
                    f"on {on} is before the citizen's birth date; send the date the residence ended",
                    personal_id,
                    ("date_of_birth",),
                )
            values: dict[str, str | None] = {
                "residence_status": "ended",
                "residence_ended_on": on.isoformat(),
            }
            conn.save([_with_values(citizen, values)])
            self._remember(conn, agency, reference, change)
            return ResidenceChange(personal_id, "ended", reference, False, ("personal_id", *values))

    @staticmethod
    def _citizen(conn: NpdTransaction, personal_id: str) -> Citizen:
        citizen = conn.lookup_many([personal_id]).get(personal_id)
        if citizen is None:
            raise UnknownCitizenError(f"no citizen with personal ID {mask_id(personal_id)} in the NPD")
        return citizen

    @staticmethod
    def _replay(
        conn: NpdTransaction,
        agency: str,
        reference: str,
        change: _Change,
    ) -> bool:
        """True when this agency made exactly this change under `reference` before; a different change
        under it is a conflict."""
        row = conn.execute(
            "SELECT action, personal_id, province, on_date FROM residence_changes "
            "WHERE agency = ? AND reference = ?",
            (agency, reference),
        ).fetchone()
        if row is None:
            return False
        action, personal_id, province, on = change
        if tuple(row) != (action, personal_id, province, on.isoformat()):
            raise ResidenceConflictError(
                f"reference {reference!r} was already used for a different residence change ({row[0]}); "
                "use a new reference for a new change"
            )
        return True

    @staticmethod
    def _remember(conn: NpdTransaction, agency: str, reference: str, change: _Change) -> None:
        action, personal_id, province, on = change
        conn.execute(
            "INSERT INTO residence_changes VALUES (?, ?, ?, ?, ?, ?, ?)",
            (agency, reference, action, personal_id, province, on.isoformat(), _now()),
        )


def _with_values(current: Citizen, changes: Mapping[str, str | None]) -> Citizen:
    """`current` with `changes` set; an extra field set to None is removed, not kept as null."""
    values = current.model_dump()
    for name, value in changes.items():
        if value is None and name not in _BASIC:
            values.pop(name, None)
        else:
            values[name] = value
    return Citizen.model_validate(values)


def _digest(obj: object) -> str:
    """The record's content as one hash: keys sorted, so the same record always gives the same digest."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class _People(Mapping[str, Citizen]):
    """The citizens `lookup_ids` named, and any other the rules ask for (M14's ancestors), looked up
    in the same transaction when first asked for."""

    def __init__(self, conn: NpdTransaction, known: dict[str, Citizen]) -> None:
        self.conn = conn
        self.known: dict[str, Citizen | None] = dict(known)

    def __getitem__(self, personal_id: str) -> Citizen:
        if personal_id not in self.known:
            self.known[personal_id] = self.conn.lookup_many([personal_id]).get(personal_id)
        citizen = self.known[personal_id]
        if citizen is None:
            raise KeyError(personal_id)
        return citizen

    def __iter__(self) -> Iterator[str]:
        return (k for k, v in self.known.items() if v is not None)

    def __len__(self) -> int:
        return sum(1 for v in self.known.values() if v is not None)


def _ids(decision: CivilDecision) -> list[str]:
    return [i for i in (decision.personal_id, decision.spouse_personal_id) if i is not None]
