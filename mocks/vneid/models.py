"""Request and response bodies of the VNeID API (`XCreate` what comes in, `XPublic` what leaves the API)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mocks.common.fields import NOT_BLANK, IsoDate, ProvinceCode, Stripped
from mocks.vneid.accounts import Account
from mocks.vneid.lifecycle import Level, Status
from mocks.vneid.service import Approval

__all__ = [
    "PASSCODE_PATTERN",
    "PERSONAL_ID_PATTERN",
    "AccountLookupPublic",
    "AccountPublic",
    "AccountStatusPublic",
    "ActivationCreate",
    "ApplicationCreate",
    "ApprovalPublic",
    "HealthPublic",
    "LockCreate",
    "MatchErrorPublic",
    "Message",
]

PERSONAL_ID_PATTERN = r"^[0-9]{12}$"
PASSCODE_PATTERN = r"^[0-9]{6}$"


class Message(BaseModel):
    """An error body: `{"detail": "what was wrong and what to do"}`."""

    detail: str


class MatchErrorPublic(Message):
    """422 of an approval: the application disagrees with the NPD; `fields` names what differs."""

    fields: list[str]


class ApplicationCreate(BaseModel):
    """An application for an e-ID account, as filed with the police of `province`."""

    model_config = ConfigDict(extra="forbid")

    personal_id: str = Field(pattern=PERSONAL_ID_PATTERN)
    full_name: Annotated[str, Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK), Stripped]
    date_of_birth: IsoDate
    gender: Literal["male", "female"]
    province: ProvinceCode = Field(description="where the application is filed (3-digit province code)")
    level: Level = Field(description="1: matched against the NPD automatically; 2: also verified in person")


class ActivationCreate(BaseModel):
    """The citizen's first log-in: the one-time code from the approval and a new 6-digit passcode."""

    model_config = ConfigDict(extra="forbid")

    activation_code: str = Field(min_length=1, max_length=64)
    passcode: str = Field(pattern=PASSCODE_PATTERN, description="6 digits")


class LockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500, json_schema_extra=NOT_BLANK), Stripped]


class AccountStatusPublic(BaseModel):
    """What an agency may see of an account: its status, level and dates (no personal fields)."""

    personal_id: str
    province: str
    status: Status
    level: Level
    applied_at: datetime
    approved_at: datetime | None
    activated_at: datetime | None
    locked_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountStatusPublic:
        return cls.model_validate(account, from_attributes=True)


class AccountLookupPublic(BaseModel):
    """An agency's look-up: the fields of `AccountStatusPublic` its scopes cover. A field outside them is
    absent (not null) and named in `withheld`."""

    personal_id: str | None = None
    province: str | None = None
    status: Status | None = None
    level: Level | None = None
    applied_at: datetime | None = None
    approved_at: datetime | None = None
    activated_at: datetime | None = None
    locked_at: datetime | None = None
    updated_at: datetime | None = None
    withheld: list[str] = Field(
        default_factory=list, description="fields left out because the credentials' scopes do not cover them"
    )


class AccountPublic(AccountStatusPublic):
    """An account as the police see it: the status plus the application's data and a lock's reason."""

    account_id: str
    full_name: str
    date_of_birth: date
    gender: Literal["male", "female"]
    lock_reason: str | None


class ApprovalPublic(BaseModel):
    """An approved account and the one-time activation code for the citizen (null for a level upgrade)."""

    account: AccountPublic
    activation_code: str | None

    @classmethod
    def of(cls, approval: Approval) -> ApprovalPublic:
        account = AccountPublic.model_validate(approval.account, from_attributes=True)
        return cls(account=account, activation_code=approval.activation_code)


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"
