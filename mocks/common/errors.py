"""Error answers every mock gives the same way, small whatever the input, and documented.

A 422 used to echo each refused value whole (FastAPI's `input`): a 20 MB invalid body drew a 147 MB
answer. `bounded_errors` keeps at most `MAX_ERRORS` reasons, each with its location and message cut to a
short excerpt and the refused value only as a string excerpt. `install_error_answers(app)` answers
validation errors so, and adds to the app's OpenAPI the answers its middleware and body parsing give on
every operation (400 for a body that cannot be parsed, 413 for one over the size limit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mocks.common.excerpts import EXCERPT_CHARS, excerpt

__all__ = [
    "MAX_ERRORS",
    "ValidationErrorPublic",
    "ValidationIssuePublic",
    "bounded_errors",
    "install_error_answers",
]

MESSAGE_CHARS = 300  # of a message (custom validators quote the refused value in theirs)
MAX_ERRORS = 20
MAX_LOC_PARTS = 8

Scalar = str | int | float | bool | None


class ValidationIssuePublic(BaseModel):
    """One reason a request was refused: FastAPI's `ValidationError`, with excerpts instead of values."""

    type: str
    loc: list[str | int] = Field(description="where: body, query, path or header, then the field")
    msg: str
    input: str | None = Field(
        default=None, description=f"the refused value when it is a string, cut to {EXCERPT_CHARS} characters"
    )
    ctx: dict[str, Scalar] | None = None


class ValidationErrorPublic(BaseModel):
    """422: why the request does not fit the API, at most `MAX_ERRORS` reasons (the last one then says
    how many were left out)."""

    detail: list[ValidationIssuePublic]


def _loc_part(part: object) -> str | int:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    return excerpt(str(part))


def _finite(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)  # JSON has no NaN or infinity


def _ctx(ctx: object) -> dict[str, Scalar] | None:
    if not isinstance(ctx, Mapping):
        return None
    kept: dict[str, Scalar] = {}
    for key, value in ctx.items():
        if isinstance(value, str):
            kept[excerpt(str(key))] = excerpt(value)
        elif value is None or isinstance(value, bool | int) or _finite(value):
            kept[excerpt(str(key))] = value
        # anything else (a wrapped exception, a list of allowed values) says nothing the message does not
    return kept or None


def bounded_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's `errors()` as `ValidationIssuePublic` dicts, bounded in number and size."""
    issues: list[dict[str, Any]] = []
    for error in errors[:MAX_ERRORS]:
        issue: dict[str, Any] = {
            "type": excerpt(str(error.get("type", "value_error"))),
            "loc": [_loc_part(p) for p in list(error.get("loc", ()))[:MAX_LOC_PARTS]],
            "msg": excerpt(str(error.get("msg", "")), MESSAGE_CHARS),
        }
        if isinstance(error.get("input"), str):
            issue["input"] = excerpt(error["input"])
        if (ctx := _ctx(error.get("ctx"))) is not None:
            issue["ctx"] = ctx
        issues.append(issue)
    if len(errors) > MAX_ERRORS:
        left_out = len(errors) - MAX_ERRORS
        issues.append(
            {"type": "too_many_errors", "loc": [], "msg": f"{left_out} more errors left out; fix these first"}
        )
    return issues


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": bounded_errors(errors)}, status_code=422)


_MESSAGE = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_COMMON: dict[str, dict[str, Any]] = {
    "413": {
        "description": "the request body is over the server's size limit (nothing of it was used)",
        "content": {"application/json": {"schema": _MESSAGE}},
    }
}
_WITH_BODY: dict[str, dict[str, Any]] = {
    "400": {
        "description": "the body cannot be parsed (not UTF-8 JSON, or a broken form)",
        "content": {"application/json": {"schema": _MESSAGE}},
    }
}


def _documented(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's cached document after the first call: setdefault leaves it as is
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                extra = {**_COMMON, **_WITH_BODY} if "requestBody" in operation else _COMMON
                for code, answer in extra.items():
                    responses.setdefault(code, answer)
        return schema

    return openapi


def install_error_answers(app: FastAPI) -> None:
    """Answer `app`'s validation errors with `bounded_errors`, and document the 400 and 413 answers its
    body parsing and `BodyLimitMiddleware` give."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.openapi = _documented(app.openapi)  # type: ignore[method-assign]  # FastAPI's documented way
