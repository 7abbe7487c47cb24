"""Parsing records-file lines and message values (`schemas.records`): rule 1 and the field readings."""

from __future__ import annotations

import json
import random
import unicodedata
from datetime import date
from typing import Any

import pytest

from schemas.provinces import PROVINCES
from schemas.records import (
    REQUIRED_FIELDS,
    Record,
    Rejected,
    civil_required,
    parse_date,
    parse_event,
    parse_gender,
    parse_line,
    parse_object,
)

pytestmark = pytest.mark.unit

GOOD: dict[str, Any] = {
    "record_id": "r1",
    "sector": "insurance",
    "province": "008",
    "personal_id": "008190000123",
    "full_name": "Nguyễn Thị Ánh",
    "date_of_birth": "1990-02-01",
    "gender": "female",
    "insurance_code": "0123456789",
}
GOOD_LINE = json.dumps(GOOD, ensure_ascii=False)
ABSENT: Any = object()


def with_(**changes: Any) -> dict[str, Any]:
    obj = dict(GOOD)
    for key, value in changes.items():
        if value is ABSENT:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


def rejected(value: object) -> Rejected:
    assert isinstance(value, Rejected), value
    return value


def record(value: object) -> Record:
    assert isinstance(value, Record), value
    return value


# ---------------------------------------------------------------- lines


@pytest.mark.parametrize(
    "line",
    ["", b"", "\n", b"\n", "\r\n", b"\r\n"],
    ids=["str", "bytes", "lf", "lf-bytes", "crlf", "crlf-bytes"],
)
def test_empty_line_is_skipped(line: str | bytes) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize(
    "line",
    ["\ufeff", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", "\ufeff\r\n"],
    ids=["bom", "bom-bytes", "bom-lf", "bom-crlf"],
)
def test_a_line_of_only_a_byte_order_mark_is_rejected(line: str | bytes) -> None:
    # CONTRACT.md: not a record. (The file reader drops the BOM that starts a file before parse_line.)
    assert "byte-order mark" in rejected(parse_line(line)).reason


@pytest.mark.parametrize(
    "line",
    [" ", "\t\n", b"   \r\n", "\ufeff  \n", "\u00a0", "\u3000"],
    ids=["space", "tab", "spaces-crlf", "bom-then-spaces", "nbsp", "ideographic-space"],
)
def test_whitespace_only_line_is_rejected(line: str | bytes) -> None:
    assert rejected(parse_line(line)).reason == "not a JSON object (the line is blank)"


@pytest.mark.parametrize(
    "line",
    [
        GOOD_LINE,
        GOOD_LINE + "\n",
        GOOD_LINE + "\r\n",
        "\ufeff" + GOOD_LINE,
        b"\xef\xbb\xbf" + GOOD_LINE.encode() + b"\n",
        GOOD_LINE.encode(),
        bytearray(GOOD_LINE.encode()),
        f"  {GOOD_LINE}\t",
        json.dumps(GOOD),  # \u-escaped non-ASCII
    ],
    ids=["str", "lf", "crlf", "bom", "bom-bytes-lf", "bytes", "bytearray", "padded", "ascii-escaped"],
)
def test_valid_line_is_a_record(line: str | bytes) -> None:
    parsed = record(parse_line(line))
    assert parsed.record_id == "r1"
    assert parsed.full_name == "Nguyễn Thị Ánh"
    assert parsed.missing == ()


@pytest.mark.parametrize(
    "line",
    [
        b"\xff",
        b'{"record_id": "r\xe9"}',  # Latin-1 é
        b'{"full_name": "Nguy\xe1\xbb"}',  # truncated multi-byte sequence
        b"\xc0\xaf",  # overlong encoding
        b'{"full_name": "\xed\xa0\x80"}',  # encoded surrogate
        b"\xfe\xff" + GOOD_LINE.encode("utf-16-be"),
    ],
    ids=["ff", "latin-1", "truncated", "overlong", "surrogate", "utf-16"],
)
def test_invalid_utf8_line_is_rejected(line: bytes) -> None:
    result = rejected(parse_line(line))
    assert result.reason.startswith("line is not valid UTF-8")
    assert (result.record_id, result.sector, result.province) == (None, None, None)


@pytest.mark.parametrize(
    ("line", "got"),
    [
        ("{", "invalid JSON"),
        ("{'record_id': 'r1'}", "invalid JSON"),
        ("not json", "invalid JSON"),
        (GOOD_LINE + GOOD_LINE, "invalid JSON"),
        ('{"record_id": "r1",}', "invalid JSON"),
        ("\ufeff\ufeff" + GOOD_LINE, "invalid JSON"),
        ("[]", "a JSON array"),
        (f"[{GOOD_LINE}]", "a JSON array"),
        ('"r1"', "a JSON string"),
        ("42", "a JSON number"),
        ("NaN", "a JSON number"),
        ("true", "a JSON boolean"),
        ("null", "JSON null"),
        ("[" * 100_000, "nested deeper than 64 levels"),
        ("1" * 5000, "unreadable JSON"),
    ],
    ids=[
        "unclosed",
        "single-quotes",
        "text",
        "two-objects",
        "trailing-comma",
        "double-bom",
        "array",
        "array-of-record",
        "string",
        "number",
        "nan",
        "bool",
        "null",
        "too-deep",
        "huge-int",
    ],
)
def test_line_that_is_not_a_json_object_is_rejected(line: str, got: str) -> None:
    reason = rejected(parse_line(line)).reason
    assert reason.startswith("not a JSON object")
    assert got in reason


@pytest.mark.parametrize("value", [[], "x", 1, None, ("a",)], ids=["list", "str", "int", "none", "tuple"])
def test_parse_object_rejects_non_objects(value: object) -> None:
    assert rejected(parse_object(value)).reason.startswith("not a JSON object")


# ---------------------------------------------------------------- rule 1 fields


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (ABSENT, "record_id is absent or blank"),
        (None, "record_id is absent or blank"),
        ("", "record_id is absent or blank"),
        ("  \t", "record_id is absent or blank"),
        (5, "record_id must be a string, not a JSON number"),
        (["r1"], "record_id must be a string, not a JSON array"),
        (True, "record_id must be a string, not a JSON boolean"),
    ],
    ids=["absent", "null", "empty", "blank", "number", "list", "bool"],
)
def test_bad_record_id_is_rejected(value: Any, reason: str) -> None:
    result = rejected(parse_object(with_(record_id=value)))
    assert result == Rejected(reason, None, "insurance", "008")


@pytest.mark.parametrize(
    "value",
    ["Insurance", " insurance", "insurance ", "LABOUR", "labor", "tax", "", None, 1, ["insurance"], {"a": 1}],
    ids=[
        "case",
        "lead-space",
        "trail-space",
        "upper",
        "us-spelling",
        "tax",
        "empty",
        "null",
        "num",
        "list",
        "obj",
    ],
)
def test_sector_must_be_exactly_one_of_the_three(value: Any) -> None:
    result = rejected(parse_object(with_(sector=value)))
    assert result.reason == f"sector {value!r} is not one of insurance, civil_status, labour"
    assert result.record_id == "r1"
    assert result.sector == (value if isinstance(value, str) else None)


def test_absent_sector_is_rejected() -> None:
    result = rejected(parse_object(with_(sector=ABSENT)))
    assert result == Rejected(
        "sector is absent; it must be one of insurance, civil_status, labour", "r1", None, "008"
    )


@pytest.mark.parametrize(
    "value",
    ["8", "08", "0008", " 008", "008 ", "000", "003", "097", "０08", 8, None, ["008"]],
    ids=[
        "1-digit",
        "2-digit",
        "4-digit",
        "lead",
        "trail",
        "000",
        "003",
        "097",
        "full-width",
        "num",
        "null",
        "list",
    ],
)
def test_province_must_be_exactly_one_of_the_63_codes(value: Any) -> None:
    result = rejected(parse_object(with_(province=value)))
    assert result.reason == f"province {value!r} is not one of the 63 province codes"
    assert result.province == (value if isinstance(value, str) else None)


def test_every_province_code_is_accepted() -> None:
    for code in PROVINCES:
        assert record(parse_object(with_(province=code))).province == code


def test_absent_province_is_rejected() -> None:
    result = rejected(parse_object(with_(province=ABSENT)))
    assert result == Rejected(
        "province is absent; it must be one of the 63 province codes", "r1", "insurance"
    )


def test_all_rule_1_problems_are_named_in_order() -> None:
    result = rejected(parse_object(with_(record_id=" ", sector="tax", province="8")))
    assert result.reason == (
        "record_id is absent or blank; sector 'tax' is not one of insurance, civil_status, labour; "
        "province '8' is not one of the 63 province codes"
    )
    assert result == Rejected(result.reason, None, "tax", "8")


def test_reason_quotes_a_huge_value_briefly() -> None:
    result = rejected(parse_object(with_(sector="x" * 1_000_000)))
    assert len(result.reason) < 150


# ---------------------------------------------------------------- reading a record


def test_record_fields_are_read() -> None:
    obj = with_(
        record_id=" r1 ",
        personal_id="  008190000123\t",
        full_name="  Nguyễn  Thị Ánh ",
        date_of_birth="01/02/1990",
        gender="Nữ",
        extra=[1, 2],
    )
    parsed = record(parse_object(obj))
    assert parsed == Record(
        record_id=" r1 ",  # an identifier is kept as given; it only has to be non-blank
        sector="insurance",
        province="008",
        personal_id="008190000123",
        full_name="  Nguyễn  Thị Ánh ",  # as given: normalised only when compared
        date_of_birth=date(1990, 2, 1),
        gender="female",
        missing=(),
        raw=obj,
        event=None,
    )
    assert parsed.raw is obj


def test_nfd_name_is_kept_as_given() -> None:
    name = unicodedata.normalize("NFD", "Nguyễn Thị Ánh")
    assert record(parse_object(with_(full_name=name))).full_name == name


def test_duplicate_json_keys_last_wins() -> None:
    line = '{"record_id": "r1", "sector": "tax", "sector": "labour", "province": "008"}'
    assert record(parse_line(line)).sector == "labour"


def test_parse_line_and_parse_object_agree() -> None:
    assert parse_line(GOOD_LINE) == parse_object(GOOD)


def test_required_fields_per_sector() -> None:
    identity = ("personal_id", "full_name", "date_of_birth", "gender")
    assert dict(REQUIRED_FIELDS) == {
        "insurance": (*identity, "insurance_code"),
        "civil_status": (*identity, "event", "event_date", "registration_no", "spouse_id"),
        "labour": identity,
    }


@pytest.mark.parametrize(
    ("event", "required"),
    [
        ("birth", ("full_name", "date_of_birth", "gender", "event", "event_date", "registration_no")),
        (
            "death",
            ("personal_id", "full_name", "date_of_birth", "gender", "event", "event_date", "registration_no"),
        ),
        ("marriage", REQUIRED_FIELDS["civil_status"]),
        (None, ("full_name", "date_of_birth", "gender", "event", "event_date", "registration_no")),
    ],
    ids=["birth-no-id-no-spouse", "death-no-spouse", "marriage-everything", "unreadable-event"],
)
def test_civil_required_per_event(event: Any, required: tuple[str, ...]) -> None:
    assert civil_required(event) == required


@pytest.mark.parametrize(
    ("sector", "changes", "missing"),
    [
        ("labour", {"insurance_code": ABSENT}, ()),
        (
            "labour",
            {"gender": "x", "personal_id": 12, "full_name": ["a"]},
            ("personal_id", "full_name", "gender"),
        ),
        ("insurance", {"insurance_code": " 012345678 "}, ("insurance_code",)),
        (
            "insurance",
            {"date_of_birth": "2024-02-30", "insurance_code": None},
            ("date_of_birth", "insurance_code"),
        ),
        ("civil_status", {"event": "death", "event_date": "2023-01-01", "registration_no": "1"}, ()),
        ("civil_status", {}, ("event", "event_date", "registration_no")),
        ("civil_status", {"personal_id": ABSENT}, ("event", "event_date", "registration_no")),
        ("civil_status", {"event": "divorce", "spouse_id": 5}, ("event", "event_date", "registration_no")),
        ("civil_status", {"personal_id": ABSENT, "event": " Birth "}, ("event_date", "registration_no")),
        (
            "civil_status",
            {"event": "DEATH", "personal_id": " "},
            ("personal_id", "event_date", "registration_no"),
        ),
        (
            "civil_status",
            {"event": "marriage", "personal_id": " "},
            ("personal_id", "event_date", "registration_no", "spouse_id"),
        ),
        (
            "civil_status",
            {
                "event": "marriage",
                "event_date": "2023-01-01",
                "registration_no": "1",
                "spouse_id": 19192000001,
            },
            ("spouse_id",),
        ),
    ],
    ids=[
        "labour-needs-no-code",
        "labour-wrong-types",
        "insurance-code-9-digits",
        "in-required-order",
        "civil-complete",
        "civil-without-event-fields",
        "civil-no-event-needs-no-id",
        "civil-unreadable-event-needs-no-spouse",
        "birth-needs-no-id",
        "death-needs-id",
        "marriage-needs-id-and-spouse",
        "marriage-spouse-not-a-string",
    ],
)
def test_missing_lists_required_fields_in_order(
    sector: str, changes: dict[str, Any], missing: tuple[str, ...]
) -> None:
    obj = with_(sector=sector, **changes)
    if sector != "insurance" and "insurance_code" not in changes:
        del obj["insurance_code"]
    assert record(parse_object(obj)).missing == missing


def test_event_is_read_for_civil_status_only() -> None:
    assert record(parse_object(with_(sector="civil_status", event="DEATH"))).event == "death"
    assert record(parse_object(with_(sector="labour", event="death"))).event is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1990-02-01", date(1990, 2, 1)),
        ("01/02/1990", date(1990, 2, 1)),
        (" 2024-02-29\t", date(2024, 2, 29)),
        ("29/02/2000", date(2000, 2, 29)),
        ("2023-02-29", None),
        ("29/02/1900", None),
        ("1/2/1990", None),
        ("01/2/1990", None),
        ("1990-2-01", None),
        ("90-02-01", None),
        ("1990-02-01 ", date(1990, 2, 1)),
        ("1990-02-01T00:00", None),
        ("1990 -02-01", None),
        ("1990/02/01", None),
        ("01-02-1990", None),
        ("0000-01-01", None),
        ("1990-00-10", None),
        ("00/01/1990", None),
        ("١٩٩٠-٠٢-٠١", None),
        ("１９９０-02-01", None),
        ("", None),
        (None, None),
        (19900201, None),
        (["1990-02-01"], None),
        (date(1990, 2, 1), None),
    ],
    ids=lambda v: repr(v),
)
def test_parse_date(value: object, expected: date | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("male", "male"),
        ("female", "female"),
        ("Nam", "male"),
        ("Nữ", "female"),
        ("NAM", "male"),
        ("nam", "male"),
        ("NỮ", "female"),
        (" nữ ", "female"),
        (unicodedata.normalize("NFD", "Nữ"), "female"),
        (unicodedata.normalize("NFD", "NỮ"), "female"),
        ("MALE", "male"),
        ("Female", "female"),
        ("M", None),
        ("F", None),
        ("nu", None),
        ("Nu", None),
        ("other", None),
        ("ma le", None),
        ("nữa", None),
        ("", None),
        (None, None),
        (True, None),
        (0, None),
    ],
    ids=lambda v: repr(v),
)
def test_parse_gender(value: object, expected: str | None) -> None:
    assert parse_gender(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("birth", "birth"),
        (" Death ", "death"),
        ("MARRIAGE", "marriage"),
        ("divorce", None),
        ("", None),
        (1, None),
    ],
    ids=lambda v: repr(v),
)
def test_parse_event(value: object, expected: str | None) -> None:
    assert parse_event(value) == expected


# ---------------------------------------------------------------- totality, generated


@pytest.mark.parametrize("seed", range(3))
def test_parse_line_never_raises_on_random_bytes(seed: int) -> None:
    rng = random.Random(seed)
    base = GOOD_LINE.encode()
    for _ in range(3000):
        if rng.random() < 0.5:
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        else:  # a valid line with a few bytes flipped: mostly invalid UTF-8 or JSON, sometimes a record
            mutable = bytearray(base)
            for _ in range(rng.randint(1, 3)):
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
            line = bytes(mutable)
        result = parse_line(line)
        assert result is None or isinstance(result, Rejected | Record)
        if isinstance(result, Rejected):
            assert result.reason
