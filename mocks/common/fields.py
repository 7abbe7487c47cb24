"""Field types the mocks' requests share, each refusing exactly what its OpenAPI schema says is not
allowed: dates are `YYYY-MM-DD` strings, provinces one of the 63 codes (an `enum`), and free text holds
a character other than white space (`NotBlank`, `Stripped`, documented by `NOT_BLANK`)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from mocks.common.excerpts import excerpt
from schemas.provinces import PROVINCES, is_province

__all__ = ["NOT_BLANK", "WHITE_SPACE", "IsoDate", "NotBlank", "ProvinceCode", "Stripped"]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# White space as each reader counts it: Python's `str.isspace`, the ECMA-262 `\s` of JSON Schema patterns
# and the Rust `\s` of pydantic's own `pattern` disagree on \x1c-\x1f, U+0085 and U+FEFF, so the text
# checks strip all of them, and the OpenAPI pattern lists them, spelled out, so every reader agrees.
WHITE_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "\ufeff"
NOT_BLANK = {"pattern": "[^" + "".join(f"\\u{ord(c):04x}" for c in WHITE_SPACE) + "]"}


def _iso_date(value: object) -> object:
    # pydantic alone also takes a number (seconds since 1970: 86400 is 1970-01-02) or a date-time string;
    # the schema says `format: date`, so only the RFC 3339 full-date passes (a `date` from Python too).
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("a date must be a string written YYYY-MM-DD")


def _not_blank(value: str) -> str:
    # After the length limits, which apply to the text as sent, as the OpenAPI says.
    if not value.strip(WHITE_SPACE):
        raise ValueError("must hold a character other than white space")
    return value


def _stripped(value: str) -> str:
    return _not_blank(value).strip(WHITE_SPACE)


def _province(value: str) -> str:
    if not is_province(value):
        raise ValueError(f"province {excerpt(value)!r} is not one of the 63 three-digit province codes")
    return value


NotBlank = AfterValidator(_not_blank)  # with `json_schema_extra=NOT_BLANK` on the field
Stripped = AfterValidator(_stripped)  # the same, and the value kept without its outer white space
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
ProvinceCode = Annotated[
    str,
    AfterValidator(_province),
    Field(description="3-digit province code", json_schema_extra={"enum": list(PROVINCES)}),
]
