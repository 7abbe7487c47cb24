"""Reading a population file strictly: citizens, or one error naming the file and the line.

A population file is JSON lines of CONTRACT.md's Citizen. Whatever it holds, the reader yields `Citizen`s
or raises `PopulationFileError` (file, line number, what is wrong, no personal data): a bad line stops the
load, because a population with a citizen silently left out would give records wrong outcomes later. JSON
is read as strictly as a records line (CONTRACT.md: RFC 8259, no NaN/Infinity, no lone surrogate, at most
64 levels, at most 1 MiB a line), and dates must be written `YYYY-MM-DD` (pydantic alone would also take a
Unix timestamp or a datetime).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from mocks.ndxp.exceptions import PopulationFileError
from schemas.citizen import Citizen
from schemas.records import MAX_DEPTH, MAX_LINE_BYTES

__all__ = ["numbered_citizens", "read_population_file"]

_BOM = b"\xef\xbb\xbf"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only, zero-padded
_DATES = ("date_of_birth", "date_of_death")
_MAX_MSG = 200
# orjson's messages end with the place in the line; the file's line number is said once, in front.
_ORJSON_PLACE = re.compile(r":? line 1 column (\d+) \(char \d+\)$")


def numbered_citizens(path: Path | str) -> Iterator[tuple[int, Citizen]]:
    """(line number, citizen) of each line of a population file, in order; blank lines and a UTF-8 BOM at
    the start of the file are skipped. Raises `PopulationFileError` for the first line that is not a citizen,
    and for a file that cannot be read."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with handle:
        lineno = 0
        while True:
            # A bounded read: a file of gigabytes without a line end must not be read into memory whole.
            try:
                raw = handle.readline(MAX_LINE_BYTES + 3)
            except OSError as exc:  # a folder, a device gone, an I/O error
                raise _unreadable(path, exc) from None
            if not raw:
                return
            lineno += 1
            line = raw.removesuffix(b"\n").removesuffix(b"\r")
            if len(line) > MAX_LINE_BYTES:
                raise PopulationFileError(path, lineno, f"the line is longer than {MAX_LINE_BYTES:,} bytes")
            if lineno == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if not line.strip():  # blank lines carry no citizen
                continue
            yield lineno, _citizen(path, lineno, line)


def _unreadable(path: Path, exc: OSError) -> PopulationFileError:
    return PopulationFileError(path, None, f"cannot read the population file: {exc.strerror or exc}")


def read_population_file(path: Path | str) -> Iterator[Citizen]:
    """The citizens of a JSON-lines population file, in order; a bad line raises `PopulationFileError`
    (file, line number, field problem). A UTF-8 BOM and blank lines are skipped."""
    return (citizen for _, citizen in numbered_citizens(path))


def _citizen(path: Path, lineno: int, line: bytes) -> Citizen:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise PopulationFileError(path, lineno, f"Invalid JSON: {_json_problem(line, exc)}") from None
    if not isinstance(obj, dict):
        raise PopulationFileError(path, lineno, f"not a citizen: a JSON object is needed, not {_kind(obj)}")
    if (line.count(b"[") + line.count(b"{") > MAX_DEPTH) and _depth(obj) > MAX_DEPTH:
        raise PopulationFileError(path, lineno, f"Invalid JSON: nested deeper than {MAX_DEPTH} levels")
    problems = [
        f"{name}: must be a date written YYYY-MM-DD"
        for name in _DATES
        if obj.get(name) is not None and not (isinstance(obj[name], str) and _ISO_DATE.fullmatch(obj[name]))
    ]
    if problems:
        raise PopulationFileError(path, lineno, "; ".join(problems))
    try:
        return Citizen.model_validate(obj)
    except ValidationError as exc:
        raise PopulationFileError(path, lineno, _problem(exc)) from None


def _json_problem(line: bytes, exc: orjson.JSONDecodeError) -> str:
    """orjson's reason, with the column in the line and without the line's content."""
    message = str(exc.args[0]) if exc.args else "unreadable"
    if line.lstrip().startswith(_BOM):
        return "a byte-order mark is only allowed at the start of the file"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:  # orjson would blame surrogates for any bad byte
        return f"the line is not UTF-8 text (byte {bad.start + 1})"
    return _ORJSON_PLACE.sub(lambda m: f" at column {int(m.group(1))}", message)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _depth(value: object) -> int:
    """How deeply arrays and objects nest in a decoded JSON value (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _problem(exc: ValidationError) -> str:
    # Field locations and messages only: pydantic's input values would put personal data in logs. A
    # validator's own message may quote a value (a province code): bounded, so a megabyte stays out.
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"] if len(err["msg"]) <= _MAX_MSG else err["msg"][:_MAX_MSG] + "…"
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
