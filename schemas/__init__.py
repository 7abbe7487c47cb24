"""popsync: schemas."""

from schemas.citizen import Citizen, mask_id
from schemas.civil import (
    CIVIL_FIELDS,
    CivilDecision,
    IdSpaceExhaustedError,
    NewCitizen,
    NpdChange,
    Registration,
    UpdateCitizen,
    decide_civil,
    is_married,
    issue_personal_id,
    lookup_ids,
    registration_key,
)
from schemas.names import fold_diacritics, mask_name, normalize_name
from schemas.outcomes import RECORD_OUTCOMES, SECTORS, UNSYNCED_OUTCOMES, Outcome, Sector, is_synced
from schemas.personal_id import century_digit, consistent_with, decode, id_shape, make_personal_id
from schemas.provinces import PROVINCES, is_province, province_name
from schemas.records import (
    REQUIRED_FIELDS,
    Record,
    Rejected,
    parse_date,
    parse_event,
    parse_gender,
    parse_line,
    parse_object,
)
from schemas.rules import Decision, decide, holder_key, lookup_key

__all__ = [
    "CIVIL_FIELDS",
    "PROVINCES",
    "RECORD_OUTCOMES",
    "REQUIRED_FIELDS",
    "SECTORS",
    "UNSYNCED_OUTCOMES",
    "Citizen",
    "CivilDecision",
    "Decision",
    "IdSpaceExhaustedError",
    "NewCitizen",
    "NpdChange",
    "Outcome",
    "Record",
    "Registration",
    "Rejected",
    "Sector",
    "UpdateCitizen",
    "century_digit",
    "consistent_with",
    "decide",
    "decide_civil",
    "decode",
    "fold_diacritics",
    "holder_key",
    "id_shape",
    "is_married",
    "is_province",
    "is_synced",
    "issue_personal_id",
    "lookup_ids",
    "lookup_key",
    "make_personal_id",
    "mask_id",
    "mask_name",
    "normalize_name",
    "parse_date",
    "parse_event",
    "parse_gender",
    "parse_line",
    "parse_object",
    "province_name",
    "registration_key",
]
