"""Request and response bodies of the VNeID API (`XCreate` what comes in, `XPublic` what leaves the API)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from mocks.vneid.accounts import Account
from mocks.vneid.lifecycle import Level, Status
from mocks.vneid.service import Approval
from schemas.provinces import is_province

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
    "Message",
]

PERSONAL_ID_PATTERN = r"^[0-9]{12}$"
PASSCODE_PATTERN = r"^[0-9]{6}$"


def _province(value: str) -> str:
    if not is_province(value):
        raise ValueError(f"{value!r} is not one of the 63 three-digit province codes")
    return value


Province = Annotated[str, AfterValidator(_province)]


class Message(BaseModel):
    """An error body: `{"detail": "what was wrong and what to do"}`."""

    detail: str


class ApplicationCreate(BaseModel):
    """An application for an e-ID account, as filed with the police of `province`."""

    model_config = ConfigDict(extra="forbid")

    personal_id: str = Field(pattern=PERSONAL_ID_PATTERN)
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    date_of_birth: date
    gender: Literal["male", "female"]
    province: Province = Field(description="where the application is filed (3-digit province code)")
    level: Level = Field(description="1: matched against the NPD automatically; 2: also verified in person")


class ActivationCreate(BaseModel):
    """The citizen's first log-in: the one-time code from the approval and a new 6-digit passcode."""

    model_config = ConfigDict(extra="forbid")

    activation_code: str = Field(min_length=1, max_length=64)
    passcode: str = Field(pattern=PASSCODE_PATTERN, description="6 digits")


class LockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


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
