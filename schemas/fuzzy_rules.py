"""The outcome rules under `matching: fuzzy`: rules 10–12 judge the name by its score. Pure.

Off by default: the exact rules of CONTRACT.md (`schemas.rules.decide`) stay what every scenario runs.
With `matching: fuzzy` the rules 2–9 are the same; only the name's part of rules 10–12 changes:

| the name (`schemas.name_match`)                | outcome (birth date and gender equal)           |
|------------------------------------------------|-------------------------------------------------|
| equal after the harmless normalisation         | `cleaned` (or `corrected` for a legacy ID)      |
| scores at least the threshold                  | `corrected`, `full_name` in the corrections     |
| scores below it                                | `unsynced/mismatch`, `full_name` in the fields  |

A name written without diacritics scores 0.95, so what rule 11 accepts is accepted here too. The NPD's
spelling is authoritative: an accepted name is corrected to it, never `cleaned`. The caller:

    decision = decide(record, citizen, first_holder)          # the exact rules, whatever their options
    decision, match = judge_names(record, citizen, decision)  # match: None when no name was compared
"""

from __future__ import annotations

from schemas.citizen import Citizen
from schemas.name_match import NameMatch, match_names
from schemas.outcomes import Outcome
from schemas.personal_id import id_shape
from schemas.records import Record
from schemas.rules import Decision, npd_corrections

__all__ = ["judge_names"]

# The outcomes of rules 10–12, the ones that compared a name.
_CLEANED, _CORRECTED, _MISMATCH = Outcome.CLEANED, Outcome.CORRECTED, Outcome.MISMATCH


def judge_names(
    record: Record, citizen: Citizen | None, decision: Decision
) -> tuple[Decision, NameMatch | None]:
    """The exact rules' `decision` with the name judged by `match_names`; the match when one was compared.

    A decision of rules 2–9 (the name was never compared) comes back unchanged with None.
    """
    # Identity tests with module constants: an enum member's hash or class attribute costs more here.
    outcome = decision.outcome
    compared = outcome is _CLEANED or outcome is _CORRECTED or outcome is _MISMATCH
    if not compared or citizen is None or record.full_name is None:
        return decision, None
    match = match_names(record.full_name, citizen.full_name)
    if match.score == 1.0:
        return decision, match  # equal after normalisation: the exact rules' decision stands
    differing: tuple[str, ...] = () if match.accepted else ("full_name",)
    if record.date_of_birth != citizen.date_of_birth:
        differing += ("date_of_birth",)
    if record.gender != citizen.gender:
        differing += ("gender",)
    if differing:
        return Decision(Outcome.MISMATCH, differing, passed_identity=True), match
    assert record.personal_id is not None  # rule 2 passed
    corrections = npd_corrections(record, citizen, id_shape(record.personal_id))
    if corrections:
        return Decision(Outcome.CORRECTED, passed_identity=True, corrections=corrections), match
    return Decision(Outcome.CLEANED, passed_identity=True), match  # not reached: an accepted name differs
