"""The citizen as the mock National Population Database holds it (CONTRACT.md, population file)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.provinces import is_province

__all__ = ["Citizen", "mask_id"]


def _check_province(value: str, what: str) -> str:
    if not is_province(value):
        raise ValueError(f"{what} {value!r} is not one of the 63 province codes")
    return value


class Citizen(BaseModel):
    """One citizen of the NPD. Other basic fields (ethnicity, religion, father_id …) are kept as extras."""

    model_config = ConfigDict(extra="allow", frozen=True)

    personal_id: str = Field(pattern=r"^[0-9]{12}$")
    legacy_id: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    full_name: str = Field(min_length=1)
    date_of_birth: date
    gender: Literal["male", "female"]
    birth_province: str | None = None
    permanent_province: str
    status: Literal["alive", "deceased"] = "alive"
    date_of_death: date | None = None

    @field_validator("permanent_province")
    @classmethod
    def _permanent_known(cls, value: str) -> str:
        return _check_province(value, "permanent_province")

    @model_validator(mode="after")
    def _default_birth_province(self) -> Citizen:
        # The NPD is not perfect: an ID may contradict its holder's gender or year (rule 6 finds those),
        # so nothing here checks the ID against the other fields.
        if self.birth_province is None:
            object.__setattr__(self, "birth_province", self.personal_id[:3])
        return self

    @property
    def deceased(self) -> bool:
        """Deceased when the status says so or a date of death is recorded."""
        return self.status == "deceased" or self.date_of_death is not None


def mask_id(value: object) -> str:
    """A form of an ID safe for logs: province code and last two digits (`008*******12`)."""
    text = str(value)
    if len(text) <= 5:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]
