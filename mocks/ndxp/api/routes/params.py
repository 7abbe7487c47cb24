"""Query and path parameters shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from mocks.common.fields import NOT_BLANK, NotBlank
from mocks.ndxp.models import LEGACY_ID_PATTERN, PERSONAL_ID_PATTERN

__all__ = ["LegacyIdParam", "PersonalIdParam", "PurposeParam"]

PurposeParam = Annotated[
    str,
    Query(
        min_length=1,
        max_length=500,
        json_schema_extra=NOT_BLANK,
        description="why the data is needed; recorded in the audit with every disclosure",
    ),
    NotBlank,
]
PersonalIdParam = Annotated[
    str, Path(pattern=PERSONAL_ID_PATTERN, description="12-digit personal ID (ASCII digits)")
]
LegacyIdParam = Annotated[str, Path(pattern=LEGACY_ID_PATTERN, description="9-digit legacy ID (CMND)")]
