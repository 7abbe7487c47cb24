"""Request and response bodies of the NDXP API (`XBase` shared fields, `XPublic` what leaves the API)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mocks.common.fields import NOT_BLANK, IsoDate, ProvinceCode, Stripped
from schemas.citizen import Citizen

__all__ = [
    "MAX_BATCH",
    "BatchItemPublic",
    "BatchPublic",
    "BatchQuery",
    "CitizenBase",
    "CitizenDisclosurePublic",
    "CitizenFieldsPublic",
    "CitizenPublic",
    "CivilRegistrationsPublic",
    "CivilRegistrationsQuery",
    "CivilResultPublic",
    "FieldResult",
    "HealthPublic",
    "LegacyPublic",
    "Message",
    "Purpose",
    "ResidenceDeregistration",
    "ResidencePublic",
    "ResidenceRegistration",
    "VerifyPublic",
    "VerifyQuery",
]

MAX_BATCH = 1000
ID_PATTERN = r"^(?:[0-9]{9}|[0-9]{12})$"
PERSONAL_ID_PATTERN = r"^[0-9]{12}$"
LEGACY_ID_PATTERN = r"^[0-9]{9}$"

Purpose = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        json_schema_extra=NOT_BLANK,
        description="why the data is needed; recorded in the audit with every disclosure",
    ),
    Stripped,
]
FieldResult = Literal["match", "match_without_diacritics", "mismatch"]


class Message(BaseModel):
    """An error body: `{"detail": "what was wrong and what to do"}`."""

    detail: str


class CitizenBase(BaseModel):
    """The basic fields every citizen has (CONTRACT.md, Citizen)."""

    personal_id: str
    legacy_id: str | None = None
    full_name: str
    date_of_birth: date
    gender: Literal["male", "female"]
    birth_province: str
    permanent_province: str
    status: Literal["alive", "deceased"] = "alive"
    date_of_death: date | None = None


class CitizenPublic(CitizenBase):
    """A citizen as disclosed: the basic fields above plus the others the NPD holds (ethnicity,
    religion, father_id …). The JSON is a CONTRACT.md Citizen: `Citizen.model_validate` reads it."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def of(cls, citizen: Citizen) -> CitizenPublic:
        return cls.model_validate(citizen.model_dump())


class CitizenFieldsPublic(BaseModel):
    """The fields of a citizen the caller's scopes cover. A withheld field is absent (never null), and
    named in the `withheld` list next to it; the fields and scopes are in `mocks/ndxp/scopes.py`."""

    model_config = ConfigDict(extra="allow")

    personal_id: str | None = None
    legacy_id: str | None = None
    full_name: str | None = None
    date_of_birth: date | None = None
    gender: Literal["male", "female"] | None = None
    birth_province: str | None = None
    permanent_province: str | None = None
    status: Literal["alive", "deceased"] | None = None
    date_of_death: date | None = None


class CitizenDisclosurePublic(CitizenFieldsPublic):
    """`GET /v1/citizens/{id}`: the disclosed fields, and `withheld`: the citizen's fields the caller's
    scopes do not cover (empty when every field was disclosed)."""

    withheld: list[str] = Field(default_factory=list)


class VerifyQuery(BaseModel):
    """Single verification: the ID and whichever fields the caller wants checked."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="12-digit personal ID or 9-digit legacy ID")
    full_name: str | None = Field(default=None, min_length=1)
    date_of_birth: IsoDate | None = None
    gender: Literal["male", "female"] | None = None
    purpose: Purpose


class VerifyPublic(BaseModel):
    """Verification result. `fields` has one entry per claimed field; empty when not found."""

    found: bool
    personal_id: str | None = None
    fields: dict[str, FieldResult] = Field(default_factory=dict)
    deceased: bool | None = None
    permanent_province: str | None = None
    withheld: list[str] = Field(
        default_factory=list,
        description="what the caller's scopes do not cover (absent above): personal_id, deceased, "
        "permanent_province, or a claimed field's result",
    )


class BatchQuery(BaseModel):
    """Up to 1000 IDs; items that are not strings of 9 or 12 ASCII digits come back with an `error`."""

    model_config = ConfigDict(extra="forbid")

    ids: list[JsonValue] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} IDs (12-digit personal or 9-digit legacy); split larger batches",
    )
    purpose: Purpose


class BatchItemPublic(BaseModel):
    """The answer for one queried ID, in request order."""

    query_id: JsonValue
    found: bool
    citizen: CitizenFieldsPublic | None = None
    withheld: list[str] = Field(
        default_factory=list, description="the citizen's fields the caller's scopes do not cover"
    )
    error: str | None = None


class BatchPublic(BaseModel):
    results: list[BatchItemPublic]


class LegacyPublic(BaseModel):
    legacy_id: str
    personal_id: str


class CivilRegistrationsQuery(BaseModel):
    """Civil-status records as the sector published them, decided and applied in order, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    registrations: list[JsonValue] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} civil_status record objects (CONTRACT.md); split larger batches",
    )
    purpose: Purpose


class CivilResultPublic(BaseModel):
    """One registration's outcome (docs/civil-status.md), in request order."""

    record_id: str | None = Field(description="the record's record_id; null for a rejected item without one")
    outcome: str = Field(description="cleaned, corrected, unsynced/… or rejected")
    fields: list[str] = Field(default_factory=list)
    corrections: dict[str, str] = Field(default_factory=dict)
    personal_id: str | None = Field(
        default=None, description="synced only: the 12-digit ID issued (birth) or resolved (death, marriage)"
    )
    spouse_personal_id: str | None = Field(default=None, description="synced marriage: the spouse's ID")
    replayed: bool = Field(
        default=False,
        description=(
            "true: this record was decided before (registered, or refused with the same content); "
            "the stored answer, no change"
        ),
    )
    detail: str | None = Field(default=None, description="rejected only: why the item is not a record")


class CivilRegistrationsPublic(BaseModel):
    results: list[CivilResultPublic]


Reference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        json_schema_extra=NOT_BLANK,
        description="the caller's idempotency key: a repeat with it answers the same, changing nothing",
    ),
    Stripped,
]


class ResidenceRegistration(BaseModel):
    """`POST /v1/residence/registrations`: register a citizen's permanent residence in `province`."""

    model_config = ConfigDict(extra="forbid")

    personal_id: str = Field(pattern=PERSONAL_ID_PATTERN)
    province: ProvinceCode = Field(description="3-digit province code of the permanent residence")
    since: IsoDate
    reference: Reference
    purpose: Purpose = "register a permanent residence"


class ResidenceDeregistration(BaseModel):
    """`POST /v1/residence/deregistrations`: end a citizen's permanent residence on `on`."""

    model_config = ConfigDict(extra="forbid")

    personal_id: str = Field(pattern=PERSONAL_ID_PATTERN)
    on: IsoDate
    reference: Reference
    purpose: Purpose = "end a permanent residence"


class ResidencePublic(BaseModel):
    """A residence change applied (or, `replayed`, applied before under the same reference)."""

    personal_id: str
    residence_status: Literal["registered", "ended"]
    reference: str
    replayed: bool = False


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"
