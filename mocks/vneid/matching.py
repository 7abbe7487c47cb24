"""The automatic check behind an approval: an application's data against the citizen the NPD holds. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from mocks.vneid.exceptions import MatchError
from schemas.citizen import Citizen
from schemas.names import normalize_name

__all__ = ["Applicant", "CitizenLookup", "check_against_npd"]

# `PopulationDB.lookup_many` of the mock NPD fits; so does a dict's look-up in tests.
CitizenLookup = Callable[[list[str]], Mapping[str, Citizen]]


@dataclass(frozen=True, slots=True)
class Applicant:
    """What a citizen states when applying for an e-ID account."""

    personal_id: str
    full_name: str
    date_of_birth: date
    gender: Literal["male", "female"]


def check_against_npd(applicant: Applicant, citizen: Citizen | None) -> Citizen:
    """The NPD's citizen when the application agrees with it; `MatchError` naming the fields otherwise.

    Names must match after harmless normalisation only (NFC, spacing, case): an identity account is
    not granted on a name typed without its diacritics, unlike a sector record that is `corrected`.
    """
    if citizen is None:
        raise MatchError(
            "no citizen with this personal ID in the National Population Database; "
            "check the ID, or have the citizen's record created first",
            ("personal_id",),
        )
    if citizen.deceased:
        raise MatchError("the NPD records this citizen as deceased; no account can be approved", ("status",))
    differing = tuple(
        name
        for name, same in (
            ("full_name", normalize_name(applicant.full_name) == normalize_name(citizen.full_name)),
            ("date_of_birth", applicant.date_of_birth == citizen.date_of_birth),
            ("gender", applicant.gender == citizen.gender),
        )
        if not same
    )
    if differing:
        raise MatchError(
            f"the application disagrees with the NPD on {', '.join(differing)}; "
            "correct the application (or the NPD record) and approve again",
            differing,
        )
    return citizen
