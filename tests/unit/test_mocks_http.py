"""The HTTP pieces both mocks share, in process: the body limit, exact 405s, bounded validation errors,
ASCII challenges and the field types whose validation matches their OpenAPI schema."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks.common.body_limit import BodyLimitMiddleware
from mocks.common.errors import MAX_ERRORS, bounded_errors, install_error_answers
from mocks.common.excerpts import EXCERPT_CHARS
from mocks.common.fields import NOT_BLANK, IsoDate, NotBlank, ProvinceCode, Stripped
from mocks.common.methods import MethodGuardMiddleware
from mocks.common.security import OAuthError, www_authenticate
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.models import MAX_BATCH, BatchQuery
from mocks.vneid.config import VneidSettings

pytestmark = pytest.mark.unit

LIMIT = 1000


# --- the body limit --------------------------------------------------------------------------------


class Body:
    """An ASGI `receive` that hands out `chunks` of a request body and counts the bytes taken."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.taken = 0
        self.calls = 0

    async def __call__(self) -> Message:
        self.calls += 1
        if not self.chunks:
            return {"type": "http.disconnect"}
        chunk = self.chunks.pop(0)
        self.taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}


class Echo:
    """An ASGI app that reads the whole body and answers its length; records what it was given."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.after_body: Message | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        self.after_body = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def call(app: ASGIApp, receive: Receive, headers: dict[str, str] | None = None) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent


def test_a_declared_length_over_the_limit_is_413_without_reading_the_body() -> None:
    app, body = Echo(), Body([b"x" * 10 * LIMIT])
    sent = call(BodyLimitMiddleware(app, LIMIT), body, {"content-length": str(10 * LIMIT)})
    assert sent[0]["status"] == 413 and body.calls == 0 and app.bodies == []
    detail = json.loads(sent[1]["body"])["detail"]
    assert str(LIMIT) in detail and "split" in detail


def test_a_streamed_body_is_read_no_further_than_past_the_limit() -> None:
    chunk = LIMIT // 4 + 1
    app, body = Echo(), Body([b"x" * chunk] * 100)  # chunked: no Content-Length
    sent = call(BodyLimitMiddleware(app, LIMIT), body)
    assert sent[0]["status"] == 413 and app.bodies == []
    assert body.taken == 4 * chunk  # the chunk that crossed the limit, and nothing after it


@pytest.mark.parametrize("size", [0, 1, LIMIT])
def test_a_body_within_the_limit_reaches_the_app_whole(size: int) -> None:
    parts = [b"a" * (size // 2), b"b" * (size - size // 2)]
    app, body = Echo(), Body(parts)
    sent = call(BodyLimitMiddleware(app, LIMIT), body, {"content-length": str(size)})
    assert sent[0]["status"] == 200 and app.bodies == [b"".join(parts)]
    assert app.after_body == {"type": "http.disconnect"}  # the next receive is the real one


def test_the_ndxp_limit_takes_the_largest_legitimate_batch() -> None:
    # 1000 IDs of the longer kind and the longest purpose, every character escaped as JSON can escape it.
    body = {"ids": ["008090123456"] * MAX_BATCH, "purpose": "\u1ec7" * 500}
    size = len(json.dumps(body, ensure_ascii=True).encode())
    BatchQuery.model_validate(body)
    assert size * 100 < NdxpSettings.model_fields["max_body_bytes"].default
    # A civil-status record as the sector publishes it, its fields as long as real ones get, 1000 of them.
    record = {
        "record_id": "HT-008-0000001", "sector": "civil_status", "province": "008",
        "personal_id": "008090123456", "full_name": "Nguyễn Thị Phương Thảo Hoàng Lê " * 2,
        "date_of_birth": "1990-05-17", "gender": "female", "event": "marriage", "event_date": "2023-12-01",
        "registration_no": "123/2023/KH-UBND-0123456", "spouse_id": "008190000002",
    }  # fmt: skip
    civil = {"registrations": [record] * MAX_BATCH, "purpose": "register civil-status events"}
    assert (
        len(json.dumps(civil, ensure_ascii=True).encode()) * 4
        < NdxpSettings.model_fields["max_body_bytes"].default
    )


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NDXP_MAX_BODY_BYTES", "2097152")
    monkeypatch.setenv("VNEID_MAX_BODY_BYTES", "131072")
    assert NdxpSettings().max_body_bytes == 2 * 1024 * 1024
    assert VneidSettings().max_body_bytes == 128 * 1024
    with pytest.raises(ValidationError, match="max_body_bytes"):
        NdxpSettings(max_body_bytes=100)


# --- 405 -------------------------------------------------------------------------------------------


def guarded_app() -> FastAPI:
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def read(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @items.post("/verify")
    async def verify() -> dict[str, bool]:
        return {"ok": True}

    page = APIRouter()

    @page.get("/page")
    async def show() -> dict[str, str]:
        return {"page": "form"}

    @page.post("/page")
    async def post() -> dict[str, str]:
        return {"page": "posted"}

    app = FastAPI()
    app.include_router(items, prefix="/v1")  # nested: FastAPI keeps it out of `app.routes`
    app.include_router(page)
    app.add_middleware(MethodGuardMiddleware)
    return app


def request(app: FastAPI, method: str, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path)

    return asyncio.run(go())


def test_a_path_without_parameters_decides_its_methods() -> None:
    app = guarded_app()
    # The template /v1/items/{item_id} would take it (and answer 422: "verify" is no integer).
    refused = request(app, "GET", "/v1/items/verify")
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert request(app, "POST", "/v1/items/verify").json() == {"ok": True}
    assert request(app, "GET", "/v1/items/7").json() == {"item_id": 7}
    assert request(app, "GET", "/v1/items/x").status_code == 422  # a bad parameter stays a 422
    wrong = request(app, "DELETE", "/v1/items/7")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"


def test_a_405_lists_the_methods_of_every_route_of_the_path() -> None:
    app = guarded_app()
    options = request(app, "OPTIONS", "/page")
    assert options.status_code == 405 and options.headers["allow"] == "GET, POST"
    assert request(app, "GET", "/nowhere").status_code == 404
    assert request(app, "PUT", "/docs").headers["allow"] == "GET, HEAD"


# --- bounded validation errors ---------------------------------------------------------------------


def test_validation_errors_keep_excerpts_and_a_bounded_count() -> None:
    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: int

    huge = "x" * 1_000_000
    with pytest.raises(ValidationError) as caught:
        Strict.model_validate({"name": huge, **{f"k{n}{huge[:200]}": n for n in range(500)}})
    errors = caught.value.errors()
    assert len(errors) == 501
    issues = bounded_errors(errors)
    assert len(issues) == MAX_ERRORS + 1 and issues[-1]["type"] == "too_many_errors"
    assert "481 more errors" in issues[-1]["msg"]
    assert issues[0]["input"] == huge[: EXCERPT_CHARS - 3] + "..."
    assert all(len(str(part)) <= EXCERPT_CHARS for issue in issues for part in issue["loc"])
    assert "input" not in issues[1]  # an extra key's value is a number: no excerpt of it
    assert len(json.dumps(issues)) < 20_000


def test_context_values_that_are_not_json_are_dropped() -> None:
    (issue,) = bounded_errors(
        [
            {
                "type": "t",
                "loc": ("body", 0),
                "msg": "m",
                "input": [1],
                "ctx": {"ge": float("nan"), "e": ValueError()},
            }
        ]
    )
    assert issue == {"type": "t", "loc": ["body", 0], "msg": "m"}
    json.dumps(issue, allow_nan=False)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def test_an_app_answers_422_bounded_and_documents_400_and_413() -> None:
    app = FastAPI()

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.get("/items")
    async def list_items() -> list[Item]:
        return []

    install_error_answers(app)
    bad = {"name": 1, **{f"extra-{n}": "y" * 10_000 for n in range(1000)}}

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/items", json=bad)

    answer = asyncio.run(go())
    assert answer.status_code == 422 and len(answer.content) < 20_000
    assert len(answer.json()["detail"]) == MAX_ERRORS + 1
    paths = app.openapi()["paths"]["/items"]
    assert {"400", "413", "422"} <= set(paths["post"]["responses"])
    assert "413" in paths["get"]["responses"] and "400" not in paths["get"]["responses"]


# --- challenges and field types --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (
            "send the access token as Authorization: Bearer …",
            "send the access token as Authorization: Bearer ...",
        ),
        ('the "token"\\ is bad', "the 'token'' is bad"),
        ("Số định danh\x00\n", "So ?inh danh??"),
    ],
)
def test_a_challenge_is_printable_ascii_whatever_the_description(description: str, expected: str) -> None:
    value = www_authenticate("Bearer", realm="vneid", error="invalid_request", description=description)
    value.encode("ascii")  # a header is latin-1 on the wire; "…" in one made the answer a 500
    assert value == f'Bearer realm="vneid", error="invalid_request", error_description="{expected}"'
    assert OAuthError("invalid_token", description, 401).challenge(realm="ndxp").isascii()


def test_a_long_description_is_cut() -> None:
    assert len(www_authenticate("Bearer", realm="r", error="e", description="d" * 10_000)) < 300


def model_with(annotation: Any) -> Callable[[object], object]:
    class Holder(BaseModel):
        value: annotation  # type: ignore[valid-type]

    def check(value: object) -> object:
        return Holder.model_validate({"value": value}).value

    return check


@pytest.mark.parametrize("value", [86400, 86400.0, "86400", "1990-05-17T00:00:00", "17/05/1990", True, None])
def test_a_date_is_a_yyyy_mm_dd_string_only(value: object) -> None:
    check = model_with(IsoDate)
    assert str(check("1990-05-17")) == "1990-05-17"
    with pytest.raises(ValidationError):
        check(value)


def test_a_province_is_one_of_the_63_and_the_schema_says_so() -> None:
    check = model_with(ProvinceCode)
    assert check("008") == "008"
    for bad in ("", "999", "8", " 008", "x" * 10_000):
        with pytest.raises(ValidationError) as caught:
            check(bad)
        assert len(str(caught.value.errors()[0]["msg"])) < 300

    class Holder(BaseModel):
        province: ProvinceCode

    enum = Holder.model_json_schema()["properties"]["province"]["enum"]
    assert len(enum) == 63 and "008" in enum and "999" not in enum


def test_free_text_holds_a_character_other_than_white_space_within_its_raw_length() -> None:
    class Form(BaseModel):
        purpose: Annotated[str, Field(min_length=1, max_length=10, json_schema_extra=NOT_BLANK), Stripped]
        reason: Annotated[str, Field(min_length=1, json_schema_extra=NOT_BLANK), NotBlank] = "x"

    assert Form(purpose="  audit ").purpose == "audit"
    assert Form(purpose="x", reason=" kept ").reason == " kept "
    pattern = re.compile(Form.model_json_schema()["properties"]["purpose"]["pattern"])
    # Python, ECMA-262 and Rust disagree on what `\s` takes; the schema and the check agree on all of it.
    for blank in (" ", "\u00a0", "\u0085", "\x1c", "\x1f", "\ufeff", "\u3000\t"):
        with pytest.raises(ValidationError, match="white space"):
            Form(purpose=blank)
        assert pattern.search(blank) is None
    assert pattern.search(" a ") is not None
    with pytest.raises(ValidationError, match="at most 10"):
        Form(purpose=" 0123456789 ")  # 12 characters as sent: over the documented maxLength
