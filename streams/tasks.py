"""Correction tasks: an unsynced record goes back to its province with what to fix. Pure.

The cleansing loop (README, "The cleansing loop"): for every `unsynced/*` outcome a worker sends the
publishing province a task on `<prefix>.tasks.<sector>`, keyed like the record's result. The task names
the fields to fix and, where the NPD knows them and the workers' scopes disclose them, the NPD's values;
the province fixes the record at source and re-publishes it with the same `record_id` and a higher
version, which supersedes the earlier one.

| outcome | `fields` | `npd` (the NPD's values, when the ID resolved) |
|---|---|---|
| `unsynced/missing_fields` | absent/unreadable fields | those the NPD holds (name, birth date, gender) |
| `unsynced/mismatch` | the differing fields | the NPD's value of each |
| `unsynced/deceased` | | `status`, `date_of_death` |
| `unsynced/moved` | | `permanent_province` |
| other `unsynced/*` | as the result | none: the ID itself is wrong, unknown or repeated |

Under `matching: fuzzy` a task whose record's name was compared also carries `name_match`: the score, the
threshold, the per-word explanation and `reading`, the record's own words read in the NPD's order (the
closest reading of the name the province sent).

A marriage the civil-status rules refused for a condition of the law or of its dates (M11–M14 of
docs/civil-status.md) also carries `condition`: which one failed, in words (`MARRIAGE_CONDITIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from schemas.citizen import Citizen
from schemas.civil import MARRIAGE_CONDITIONS
from schemas.name_match import NameMatch
from schemas.outcomes import Outcome, Sector
from schemas.personal_id import id_shape
from schemas.records import Record
from schemas.rules import Decision

__all__ = ["NPD_FIELDS", "correction_task", "task_lookup_key"]

# The citizen's fields a task can carry: what the workers' scopes (identity, residence, status) disclose.
NPD_FIELDS: tuple[str, ...] = (
    "full_name",
    "date_of_birth",
    "gender",
    "status",
    "date_of_death",
    "permanent_province",
)
_STATUS_FIELDS = {
    Outcome.DECEASED: ("status", "date_of_death"),
    Outcome.MOVED: ("permanent_province",),
}


def task_lookup_key(record: Record) -> str | None:
    """The ID to look up for a record missing other fields, so its task can carry the NPD's values.

    Rules 2–3 decide such a record without a look-up; the task still needs the citizen, when the record
    carries a well-formed ID.
    """
    pid = record.personal_id
    if not record.missing or pid is None or "personal_id" in record.missing:
        return None
    return pid if id_shape(pid) != "malformed" else None


def _value(citizen: Citizen, name: str) -> Any:
    value = getattr(citizen, name, None)
    return value.isoformat() if isinstance(value, date) else value


def correction_task(
    record: Record,
    decision: Decision,
    citizen: Citizen | None,
    *,
    version: int,
    decided_ms: int,
    name_match: NameMatch | None = None,
) -> dict[str, Any] | None:
    """The task for one decided record, or None when the outcome needs no correction (synced)."""
    outcome = decision.outcome
    if not outcome.unsynced:
        return None
    wanted: tuple[str, ...]
    if outcome in (Outcome.MISSING_FIELDS, Outcome.MISMATCH):
        wanted = tuple(f for f in decision.fields if f in NPD_FIELDS)
    else:
        wanted = _STATUS_FIELDS.get(outcome, ())
    npd: Mapping[str, Any] = {name: _value(citizen, name) for name in wanted} if citizen is not None else {}
    task: dict[str, Any] = {
        "record_id": record.record_id,
        "sector": record.sector,
        "province": record.province,
        "outcome": outcome.value,
        "fields": list(decision.fields),
        "npd": dict(npd),
        "version": version,
        "decided_ms": decided_ms,
        "record": dict(record.raw),
    }
    if record.sector == Sector.CIVIL_STATUS and record.event == "marriage":
        condition = MARRIAGE_CONDITIONS.get(decision.fields)
        if condition is not None:
            task["condition"] = condition
    if name_match is not None:
        task["name_match"] = {**name_match.explanation(), "reading": name_match.reading}
    return task
