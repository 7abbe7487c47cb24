"""The outcome vocabulary: every record that enters ends in exactly one of these."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RECORD_OUTCOMES", "SECTORS", "UNSYNCED_OUTCOMES", "Outcome", "Sector", "is_synced"]


class Sector(StrEnum):
    """Sectors whose records are reconciled against the NPD."""

    INSURANCE = "insurance"
    CIVIL_STATUS = "civil_status"
    LABOUR = "labour"


SECTORS: frozenset[str] = frozenset(s.value for s in Sector)


class Outcome(StrEnum):
    """One record's outcome; the names are used in topics, metrics, reports and files."""

    CLEANED = "cleaned"
    CORRECTED = "corrected"
    MISMATCH = "unsynced/mismatch"
    NOT_FOUND = "unsynced/not_found"
    MALFORMED_ID = "unsynced/malformed_id"
    MISSING_FIELDS = "unsynced/missing_fields"
    DECEASED = "unsynced/deceased"
    MOVED = "unsynced/moved"
    DUPLICATE = "unsynced/duplicate"
    # A registration the law forbids (civil status: a marriage under age, of the same sex, or of direct
    # relatives; docs/civil-status.md M12–M14): the data may be right, the event cannot be registered.
    INELIGIBLE = "unsynced/ineligible"
    REJECTED = "rejected"

    @property
    def synced(self) -> bool:
        return self in (Outcome.CLEANED, Outcome.CORRECTED)

    @property
    def unsynced(self) -> bool:
        return self.value.startswith("unsynced/")

    @property
    def kind(self) -> str:
        """The short name used in scenario files: `mismatch` for `unsynced/mismatch`."""
        return self.value.removeprefix("unsynced/")


# Every outcome a record that is a record can end in (rejected lines are not records), in report order.
RECORD_OUTCOMES: tuple[Outcome, ...] = tuple(o for o in Outcome if o is not Outcome.REJECTED)
UNSYNCED_OUTCOMES: tuple[Outcome, ...] = tuple(o for o in Outcome if o.unsynced)


_SYNCED = frozenset({Outcome.CLEANED.value, Outcome.CORRECTED.value})


def is_synced(outcome: str) -> bool:
    """True for `cleaned` and `corrected`, the outcomes a report counts as synced."""
    return outcome in _SYNCED  # a set of plain strings: this runs for every result a collector reads
