"""Parsing a records-file line or a Kafka message value into a sector `Record`, or a `Rejected` (rule 1)."""

from __future__ import annotations

import json
import re
import reprlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import orjson

from schemas.outcomes import Sector
from schemas.provinces import PROVINCES, is_province

__all__ = [
    "MAX_DEPTH",
    "MAX_LINE_BYTES",
    "REQUIRED_FIELDS",
    "OversizedLine",
    "Record",
    "Rejected",
    "civil_required",
    "parse_date",
    "parse_event",
    "parse_gender",
    "parse_line",
    "parse_object",
]

Gender = Literal["male", "female"]
Event = Literal["birth", "death", "marriage"]

_IDENTITY: tuple[str, ...] = ("personal_id", "full_name", "date_of_birth", "gender")

# Required fields per sector, in the order `Record.missing` and a missing_fields result list them.
# civil_status lists every field some event requires; `civil_required` narrows it per event.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    Sector.INSURANCE.value: (*_IDENTITY, "insurance_code"),
    Sector.CIVIL_STATUS.value: (*_IDENTITY, "event", "event_date", "registration_no", "spouse_id"),
    Sector.LABOUR.value: _IDENTITY,
}
# What a civil-status event does not require: a birth is registered before any ID exists, only a
# marriage names a spouse, and an unreadable event word cannot say whose ID is needed.
_CIVIL_NOT_REQUIRED: dict[Event | None, frozenset[str]] = {
    "birth": frozenset({"personal_id", "spouse_id"}),
    "death": frozenset({"spouse_id"}),
    "marriage": frozenset(),
    None: frozenset({"personal_id", "spouse_id"}),
}

_SECTOR_LIST = ", ".join(s.value for s in Sector)
_BOM = "\ufeff"
_BOM_BYTES = _BOM.encode()

# CONTRACT.md's readings of strict JSON (RFC 8259): a longer line, or deeper nesting, is not a record.
MAX_LINE_BYTES = 1024 * 1024
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
# A string or a bracket of a JSON text: a nesting scan that skips brackets inside strings.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
# Only ASCII digits are digits (`\d` would take Arabic-Indic and full-width ones), and dates are zero-padded.
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_VN_DATE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_INSURANCE_CODE = re.compile(r"[0-9]{10}")
# Keys are NFC and case-folded; `Nữ` is written with an escape so an editor cannot decompose it.
_GENDERS: dict[str, Gender] = {"male": "male", "female": "female", "nam": "male", "n\u1eef": "female"}
_EVENTS: dict[str, Event] = {"birth": "birth", "death": "death", "marriage": "marriage"}

# Reasons quote what they were given; a bounded repr keeps a megabyte-long value out of the dead-letter topic.
# (Repr takes these as keywords only from Python 3.12.)
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 40
_repr.maxlist = _repr.maxdict = 4
_repr.maxlevel = 2
_show_any = _repr.repr
# What a code never looks like and personal data may: an ID (9+ digits), a date (either form).
_PERSONAL_SHAPE = re.compile(r"[0-9]{9,}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}")


def _show(value: object) -> str:
    """A sector or province as a reason may quote it: a short code, never what could be someone's data.

    A rejected line's reason is logged and kept on the dead-letter topic; a name, an ID or a birth date
    put in the wrong field must not travel with it (the line itself does, in the dead letter's `raw`).
    """
    shown = _show_any(value)
    if (
        len(shown) <= 40
        and not _PERSONAL_SHAPE.search(shown)
        and not (isinstance(value, str) and " " in value.strip())  # a full name has spaces
    ):
        return shown
    return f"(a text of {len(value)} characters)" if isinstance(value, str) else f"({_kind(value)})"


class OversizedLine(bytes):
    """The start of a line longer than `MAX_LINE_BYTES`, as a file reader keeps it; `size`: the whole line's.

    A reader need not hold a line of gigabytes to have it rejected with its size (CONTRACT.md).
    """

    size: int

    def __new__(cls, head: bytes, size: int) -> OversizedLine:
        line = super().__new__(cls, head)
        line.size = size
        return line


@dataclass(frozen=True, slots=True)
class Rejected:
    """Not a record (rule 1): goes to the dead-letter topic with a reason."""

    reason: str
    record_id: str | None = None
    sector: str | None = None
    province: str | None = None


# Not frozen, though nothing changes a Record once read: a frozen dataclass sets each field through
# `object.__setattr__`, which made building one 4x slower (about a tenth of the rules' time per record).
@dataclass(slots=True)
class Record:
    """A sector record that passed rule 1; its fields read, not yet judged against the NPD (read-only by
    convention: the rules and the workers never assign to it)."""

    record_id: str
    sector: str
    province: str
    personal_id: str | None
    full_name: str | None
    date_of_birth: date | None
    gender: Gender | None
    missing: tuple[str, ...]
    raw: Mapping[str, Any]
    # civil_status only (None elsewhere, and for an unreadable event word): see `civil_required`.
    event: Event | None = None


def _text(value: object) -> str | None:
    """A string that is not blank, ends trimmed; None for anything else."""
    if isinstance(value, str):
        return value.strip() or None
    return None


def _name(value: object) -> str | None:
    """A non-blank string as given: names are compared after normalisation, never rewritten here."""
    return value if isinstance(value, str) and value.strip() else None


def _insurance_code(value: object) -> str | None:
    text = _text(value)
    return text if text is not None and _INSURANCE_CODE.fullmatch(text) else None


# Readings of the strings that recur on the hot path (birth dates, gender words), bounded so that a file of
# distinct garbage cannot grow them without limit.
_CACHE_LIMIT = 200_000
_DATE_CACHE: dict[str, date | None] = {}
_MISS: Any = object()
_GENDER_CACHE: dict[str, Gender | None] = {}


def _cached_date(value: object) -> date | None:
    if type(value) is not str:
        return None
    try:
        return _DATE_CACHE[value]
    except KeyError:
        read = parse_date(value)
        if len(_DATE_CACHE) < _CACHE_LIMIT:
            _DATE_CACHE[value] = read
        return read


def _cached_gender(value: object) -> Gender | None:
    if type(value) is not str:
        return None
    try:
        return _GENDER_CACHE[value]
    except KeyError:
        read = parse_gender(value)
        if len(_GENDER_CACHE) < _CACHE_LIMIT:
            _GENDER_CACHE[value] = read
        return read


def parse_date(value: object) -> date | None:
    """A real, zero-padded `YYYY-MM-DD` or `DD/MM/YYYY` date (ends trimmed); None for anything else."""
    text = _text(value)
    if text is None:
        return None
    # The usual ISO form, read in C; fromisoformat takes more forms than the contract, hence the shape test.
    if (
        len(text) == 10
        and text[4] == "-"
        and text[7] == "-"
        and text.isascii()
        and text[:4].isdigit()
        and text[5:7].isdigit()
        and text[8:].isdigit()
    ):
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    if m := _ISO_DATE.fullmatch(text):
        year, month, day = m.groups()
    elif m := _VN_DATE.fullmatch(text):
        day, month, year = m.groups()
    else:
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:  # 2023-02-29, month 13, year 0000
        return None


def _word(value: object) -> str | None:
    text = _text(value)
    return unicodedata.normalize("NFC", text).casefold() if text is not None else None


def parse_gender(value: object) -> Gender | None:
    """`male`/`female`/`Nam`/`Nữ` in any case or Unicode form, ends trimmed; None for anything else."""
    word = _word(value)
    return _GENDERS.get(word) if word is not None else None


def parse_event(value: object) -> Event | None:
    """A civil-status event `birth`/`death`/`marriage`, read like a gender word; None for anything else."""
    word = _word(value)
    return _EVENTS.get(word) if word is not None else None


# Readers of the required fields that `Record` does not carry; None means absent or unreadable.
_OTHER_READERS: dict[str, Callable[[object], object]] = {
    "insurance_code": _insurance_code,
    "event_date": parse_date,
    "registration_no": _text,
    "spouse_id": _text,
}


def civil_required(event: Event | None) -> tuple[str, ...]:
    """The required fields of a civil-status record with `event` (None: unreadable), in listing order."""
    dropped = _CIVIL_NOT_REQUIRED[event]
    return tuple(f for f in REQUIRED_FIELDS[Sector.CIVIL_STATUS] if f not in dropped)


def _kind(value: object) -> str:
    """What a JSON value is, in JSON's words, for a reason."""
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    if value is None:
        return "JSON null"
    return f"a {type(value).__name__}"


def _rule_one_problems(obj: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    record_id = obj.get("record_id")
    if record_id is not None and not isinstance(record_id, str):
        problems.append(f"record_id must be a string, not {_kind(record_id)}")
    elif _text(record_id) is None:
        problems.append("record_id is absent or blank")
    if "sector" not in obj:
        problems.append(f"sector is absent; it must be one of {_SECTOR_LIST}")
    elif not isinstance(obj["sector"], str) or obj["sector"] not in REQUIRED_FIELDS:
        problems.append(f"sector {_show(obj['sector'])} is not one of {_SECTOR_LIST}")
    if "province" not in obj:
        problems.append("province is absent; it must be one of the 63 province codes")
    elif not is_province(obj["province"]):
        problems.append(f"province {_show(obj['province'])} is not one of the 63 province codes")
    return problems


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


_CIVIL = Sector.CIVIL_STATUS.value
_INSURANCE = Sector.INSURANCE.value


def parse_object(obj: object) -> Rejected | Record:
    """Apply rule 1 to a decoded JSON value and read the fields of what passes."""
    if type(obj) is not dict and not isinstance(obj, Mapping):  # a dict, as JSON decodes it, in one test
        return Rejected(f"not a JSON object (got {_kind(obj)})")
    record_id = obj.get("record_id")
    sector = obj.get("sector")
    province = obj.get("province")
    # The common case in one test (exact str types, as JSON decodes them); anything else is judged in full.
    if not (
        type(record_id) is str
        and type(sector) is str
        and sector in REQUIRED_FIELDS
        and type(province) is str
        and province in PROVINCES
        and record_id.strip()
    ):
        problems = _rule_one_problems(obj)
        if problems:
            return Rejected(
                "; ".join(problems),
                record_id if _text(record_id) is not None else None,
                _as_str(sector),
                _as_str(province),
            )
    personal_id = _text(obj.get("personal_id"))
    full_name = _name(obj.get("full_name"))
    born, word = obj.get("date_of_birth"), obj.get("gender")
    # The caches looked up in line (this runs for every record); a miss reads the value and remembers it.
    date_of_birth = _DATE_CACHE.get(born, _MISS) if type(born) is str else None
    if date_of_birth is _MISS:
        date_of_birth = _cached_date(born)
    gender = _GENDER_CACHE.get(word, _MISS) if type(word) is str else None
    if gender is _MISS:
        gender = _cached_gender(word)
    event = parse_event(obj.get("event")) if sector == _CIVIL else None
    missing: tuple[str, ...] = ()
    if (
        personal_id is None
        or full_name is None
        or date_of_birth is None
        or gender is None
        or sector == _CIVIL
        or (sector == _INSURANCE and _insurance_code(obj.get("insurance_code")) is None)
    ):
        read: dict[str, object] = {
            "personal_id": personal_id,
            "full_name": full_name,
            "date_of_birth": date_of_birth,
            "gender": gender,
            "event": event,
        }
        required = civil_required(event) if sector == _CIVIL else REQUIRED_FIELDS[obj["sector"]]
        missing = tuple(
            f for f in required if (read[f] if f in read else _OTHER_READERS[f](obj.get(f))) is None
        )
    return Record(
        record_id=obj["record_id"],
        sector=obj["sector"],
        province=obj["province"],
        personal_id=personal_id,
        full_name=full_name,
        date_of_birth=date_of_birth,
        gender=gender,
        missing=missing,
        raw=obj,
        event=event,
    )


def parse_line(line: bytes | bytearray | str) -> Rejected | Record | None:
    """Parse one records-file line (or message value): None for an empty line, else as `parse_object`.

    A UTF-8 byte-order mark at the start is dropped (the reader hands over the file's first line with it);
    the line ending (`\\n` or `\\r\\n`) may be present. A line of only white space, or only a byte-order
    mark, is not a JSON object. JSON is read strictly (CONTRACT.md): no NaN/Infinity literals, no lone
    surrogate, at most `MAX_DEPTH` levels of nesting, at most `MAX_LINE_BYTES` bytes. Never raises.
    """
    if isinstance(line, OversizedLine):
        return Rejected(f"line too long: {line.size:,} bytes, more than the {MAX_LINE_BYTES:,} allowed")
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else bytes(line)
    data = data.removesuffix(b"\n").removesuffix(b"\r")
    had_bom = data.startswith(_BOM_BYTES)
    if had_bom:
        data = data[len(_BOM_BYTES) :]
    if not data:
        return Rejected("not a JSON object (the line holds only a byte-order mark)") if had_bom else None
    if len(data) > MAX_LINE_BYTES:
        return Rejected(f"line too long: {len(data):,} bytes, more than the {MAX_LINE_BYTES:,} allowed")
    obj = _loads(data)
    if isinstance(obj, Rejected):
        return obj
    return parse_object(obj)


def _loads(data: bytes) -> object:
    """The JSON value of a line, or why it is not one: orjson (strict and fast), the stdlib for the reason."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        obj = _loads_slowly(data)
        if isinstance(obj, Rejected):
            return obj
    if (data.count(b"[") + data.count(b"{") > MAX_DEPTH) and _depth(data) > MAX_DEPTH:
        return Rejected(f"not a JSON object (nested deeper than {MAX_DEPTH} levels)")
    return obj


def _loads_slowly(data: bytes) -> object:
    """What orjson refused: a reason, or the value of the one case the contract reads leniently (1e999)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(f"line is not valid UTF-8 (byte {exc.start})")
    if not text.strip():
        return Rejected("not a JSON object (the line is blank)")
    if _SURROGATE.search(text):
        return Rejected("not a JSON object (a lone surrogate is not text)")
    if (data.count(b"[") + data.count(b"{") > MAX_DEPTH) and _depth(data) > MAX_DEPTH:
        return Rejected(f"not a JSON object (nested deeper than {MAX_DEPTH} levels)")

    def constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        obj = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        # Some of the stdlib's messages end in "at" already ("Invalid control character at").
        return Rejected(
            f"not a JSON object (invalid JSON: {exc.msg.removesuffix(' at')} at column {exc.colno})"
        )
    except ValueError as exc:  # NaN/Infinity, or an integer past Python's digit limit
        return Rejected(f"not a JSON object (unreadable JSON: {str(exc)[:80]})")
    except RecursionError:
        return Rejected("not a JSON object (unreadable JSON: nested too deeply)")
    if _has_surrogate(obj):
        return Rejected("not a JSON object (a string holds a lone surrogate escape)")
    return obj


def _has_surrogate(obj: object) -> bool:
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _depth(data: bytes) -> int:
    """The deepest nesting of brackets outside strings."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(data):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest
