"""A deterministic adversarial records corpus: good records mixed with hostile lines of every kind.

`adversarial_lines(good, n, seed)` returns `n` lines: every good record (in order, as `write_records`
writes it) and, between them at seeded places, hostile lines: a good record with one field replaced by
anything (`HOSTILE_FRAGMENTS`: NaN, 1e999, lone surrogates, NUL, BOM, wrong types, non-ASCII digits,
deep nesting …), given twice, or dropped; arbitrary bytes and JSON values; BOM-only, blank and
white-space-only lines; CRLF endings; invalid UTF-8; UTF-16; truncated lines; repeated `record_id`s; a
line over 1 MiB and a valid one of about 1 MB. Each kind appears at least once when `n` leaves room.
CONTRACT.md says what each must become: one outcome or one `rejected`, and the run goes on.

    lines = adversarial_lines(generate_records(spec, ...), 10_000, seed=7)
    write_corpus(Path("corpus.jsonl"), lines)

or, from the shell, `python -m connectors.adversarial records.jsonl corpus.jsonl --lines 10000 --seed 7`.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas.records import MAX_DEPTH, MAX_LINE_BYTES

__all__ = ["HOSTILE_FRAGMENTS", "HOSTILE_KINDS", "adversarial_lines", "main", "write_corpus"]

_BOM = b"\xef\xbb\xbf"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Raw JSON text standing for one field's value: what a careless or hostile producer writes. Not all of it
# is JSON (`NaN`, an empty value, a raw NUL); every one is small (the huge kinds are lines of their own).
HOSTILE_FRAGMENTS: tuple[str, ...] = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1" * 5000,
    "12345678901",
    "0.1e-400",
    "-0",
    '"\\ud800"',
    '"\\udfff"',
    '"a\\ud83d"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"\\ufeff"',
    '"\\r\\n"',
    '"\\u2028"',
    '"\\u202e"',
    '" "',
    '""',
    '"\u0660\u0660\u0668\u0661\u0669\u0660\u0660\u0660\u0660\u0661\u0662\u0663"',  # Arabic-Indic digits
    '"\uff10\uff10\uff18\uff11\uff19\uff10\uff10\uff10\uff10\uff11\uff12\uff13"',  # full-width digits
    '"\uff11\uff19\uff19\uff10-01-01"',  # a date in full-width digits
    '"1990-02-30"',
    '"1990-1-2"',
    '"Nam\\u0000"',
    '"' + "x" * 10_000 + '"',
    _nested(MAX_DEPTH - 1),
    _nested(MAX_DEPTH),
    _nested(MAX_DEPTH + 1),
    _nested(1000),
    '{"$date": 0}',
    '["008190000123"]',
    "{}",
    "[]",
    "null",
    "true",
    "false",
    "",  # `"field":,`: not JSON
    "\x00",
    "\ufeff",
    "'single'",
)

# Text a random JSON string is drawn from: plain and Vietnamese letters, controls, NUL, BOM, lone
# surrogates, an emoji, bidirectional controls, line separators, other scripts' digits.
_CHARS = (
    "abcXYZ 019-/|\\\"'{}[]:,"
    "ĐđƯưƠơẠạẾếỆệỮữỳ"
    "\x00\x01\x07\x1b\x7f\t\r\n\ufeff\ud800\udbff\udc00\udfff\U0001f600\u202e\u200f\u2028\u2029"
    "\u0660\u0669\uff10\uff19\u0966"
)
_FIELDS = (
    "record_id",
    "sector",
    "province",
    "personal_id",
    "full_name",
    "date_of_birth",
    "gender",
    "insurance_code",
    "occupation",
    "legacy_id",
    "event",
)


def _text(rng: random.Random, most: int) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(0, most)))


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.2:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and roll < 0.35:
        return {_text(rng, 6): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return rng.choice(
        [
            None,
            rng.random() < 0.5,
            rng.randint(-(2**70), 2**70),
            rng.uniform(-1e308, 1e308),
            _text(rng, 12),
        ]
    )


def _json_text(rng: random.Random, value: Any) -> str:
    """A JSON text of `value`; with ensure_ascii off a lone surrogate stays raw (then not UTF-8 at all)."""
    return json.dumps(value, ensure_ascii=rng.random() < 0.5)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _dump(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _with_field(record: Mapping[str, Any], name: str, fragment: str, twice: str | None = None) -> str:
    """The record as JSON text with `name` given as the raw `fragment` (and again as `twice`)."""
    parts = [f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}" for k, v in record.items() if k != name]
    parts.append(f"{json.dumps(name)}:{fragment}")
    if twice is not None:  # a duplicate key: the later one counts
        parts.append(f"{json.dumps(name)}:{twice}")
    return "{" + ",".join(parts) + "}"


class _Maker:
    """Makes the hostile lines of one corpus; `good` are the good records emitted so far."""

    def __init__(self, rng: random.Random, records: Sequence[Mapping[str, Any]], seed: int) -> None:
        self.rng = rng
        self.records = records
        self.seed = seed
        self.made = 0
        self.emitted = 0  # good records already placed before the line being made

    def _base(self) -> dict[str, Any]:
        """A good record (one already placed when there is one) under a record_id of its own."""
        self.made += 1
        source = self.records[self.rng.randrange(max(self.emitted, 1))]
        return {**source, "record_id": f"ADV-{self.seed}-{self.made:06d}"}

    def _fragment(self) -> str:
        if self.rng.random() < 0.7:
            return self.rng.choice(HOSTILE_FRAGMENTS)
        return _json_text(self.rng, _json_value(self.rng))

    def field(self) -> bytes:
        return _encode(_with_field(self._base(), self.rng.choice(_FIELDS), self._fragment()))

    def duplicate_key(self) -> bytes:
        name = self.rng.choice(_FIELDS)
        return _encode(_with_field(self._base(), name, self._fragment(), self._fragment()))

    def dropped_field(self) -> bytes:
        record = self._base()
        record.pop(self.rng.choice(_FIELDS), None)
        return _dump(record)

    def wrong_type(self) -> bytes:
        record = self._base()
        name = self.rng.choice(_FIELDS)
        record[name] = self.rng.choice(
            [12345678, 1.5, True, None, [record.get(name)], {"v": record.get(name)}]
        )
        return _dump(record)

    def any_bytes(self) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 200)))

    def any_json(self) -> bytes:
        return _encode(_json_text(self.rng, _json_value(self.rng)))

    def bom_only(self) -> bytes:
        return _BOM

    def bom_record(self) -> bytes:
        return _BOM + _dump(self._base())

    def white_space(self) -> bytes:
        return self.rng.choice([b" ", b"\t", b"   \t ", b" \r", b"\x0b", b"\x0c"])

    def empty(self) -> bytes:
        return b""

    def crlf(self) -> bytes:
        return _dump(self._base()) + b"\r"

    def utf16(self) -> bytes:
        return json.dumps(self._base(), ensure_ascii=False).encode(self.rng.choice(["utf-16", "utf-16-le"]))

    def latin1(self) -> bytes:
        return json.dumps(self._base(), ensure_ascii=False).encode("latin-1", "replace") + b"\xe9"

    def bad_utf8(self) -> bytes:
        line = bytearray(_dump(self._base()))
        line[self.rng.randrange(len(line))] = self.rng.choice([0xFF, 0xC3, 0x80, 0xED])
        return bytes(line)

    def truncated(self) -> bytes:
        line = _dump(self._base())
        return line[: self.rng.randrange(1, len(line))]

    def raw_nul(self) -> bytes:
        line = _dump(self._base())
        cut = self.rng.randrange(len(line))
        return line[:cut] + b"\x00" + line[cut:]

    def repeated_line(self) -> bytes:
        """An earlier good record again, whole: the connector dead-letters a repeated record_id."""
        return _dump(self.records[self.rng.randrange(max(self.emitted, 1))])

    def repeated_id(self) -> bytes:
        """Another record under an earlier good record's record_id."""
        earlier = self.records[self.rng.randrange(max(self.emitted, 1))]
        return _dump({**self._base(), "record_id": earlier["record_id"]})

    # Kinds made once per corpus: big, so a corpus of 10,000 lines stays a few megabytes.

    def over_1mib(self) -> bytes:
        return b"x" * (MAX_LINE_BYTES + 1)

    def over_1mib_record(self) -> bytes:
        return _dump({**self._base(), "note": "x" * MAX_LINE_BYTES})

    def near_1mib_record(self) -> bytes:
        """A valid record of about 1 MB, under the limit: decided like any other."""
        return _dump({**self._base(), "note": "x" * 1_000_000})

    def deep_line(self) -> bytes:
        return _nested(100_000).encode()


_Kind = Callable[[_Maker], bytes]
_CHEAP: dict[str, _Kind] = {
    "field": _Maker.field,
    "duplicate_key": _Maker.duplicate_key,
    "dropped_field": _Maker.dropped_field,
    "wrong_type": _Maker.wrong_type,
    "any_bytes": _Maker.any_bytes,
    "any_json": _Maker.any_json,
    "bom_only": _Maker.bom_only,
    "bom_record": _Maker.bom_record,
    "white_space": _Maker.white_space,
    "empty": _Maker.empty,
    "crlf": _Maker.crlf,
    "utf16": _Maker.utf16,
    "latin1": _Maker.latin1,
    "bad_utf8": _Maker.bad_utf8,
    "truncated": _Maker.truncated,
    "raw_nul": _Maker.raw_nul,
    "repeated_line": _Maker.repeated_line,
    "repeated_id": _Maker.repeated_id,
}
_ONCE: dict[str, _Kind] = {
    "over_1mib": _Maker.over_1mib,
    "over_1mib_record": _Maker.over_1mib_record,
    "near_1mib_record": _Maker.near_1mib_record,
    "deep_line": _Maker.deep_line,
}
# The cheap kinds drawn most often are the ones with the most variety inside them.
_WEIGHTS = {"field": 12, "duplicate_key": 4, "any_bytes": 3, "any_json": 3, "wrong_type": 3}
HOSTILE_KINDS: tuple[str, ...] = (*_ONCE, *_CHEAP)


def adversarial_lines(good_records: Sequence[Mapping[str, Any]], n: int, seed: int) -> list[bytes]:
    """`n` lines without line ends: every good record in order, and `n - len(good_records)` hostile lines
    at seeded places (the same arguments give the same bytes). Each hostile kind appears at least once
    when there is room for all of them. No line holds a `\\n`, so each is one line of the file."""
    if not good_records:
        raise ValueError("adversarial_lines needs at least one good record to vary")
    if n < len(good_records):
        raise ValueError(f"n ({n:,}) is less than the {len(good_records):,} good records it must hold")
    rng = random.Random(seed)
    hostile = n - len(good_records)
    kinds = list(HOSTILE_KINDS)[:hostile]
    names = list(_CHEAP)
    weights = [_WEIGHTS.get(k, 1) for k in names]
    kinds += rng.choices(names, weights, k=hostile - len(kinds))
    rng.shuffle(kinds)
    places = set(rng.sample(range(n), hostile))
    maker = _Maker(rng, good_records, seed)
    makers = {**_CHEAP, **_ONCE}
    lines: list[bytes] = []
    pending = iter(kinds)
    for place in range(n):
        if place in places:
            line = makers[next(pending)](maker)
        else:
            line = _dump(good_records[maker.emitted])
            maker.emitted += 1
        # A `\n` inside (a UTF-16 code unit, random bytes) would split the line in two.
        lines.append(line.replace(b"\n", b"\r"))
    return lines


def write_corpus(path: Path, lines: Sequence[bytes]) -> int:
    """Write the lines, each ended by `\\n`; returns the number of bytes written."""
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(data)
    return len(data)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m connectors.adversarial RECORDS OUT [--lines N] [--seed S]`: a corpus from a records file."""
    parser = argparse.ArgumentParser(prog="python -m connectors.adversarial", description=main.__doc__)
    parser.add_argument("records", type=Path, help="a JSON-lines file of good records to mix and vary")
    parser.add_argument("out", type=Path, help="the corpus file to write")
    parser.add_argument("--lines", type=int, default=10_000, help="lines of the corpus (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    good = [json.loads(x) for x in args.records.read_text(encoding="utf-8").splitlines() if x.strip()]
    lines = adversarial_lines(good, max(args.lines, len(good)), args.seed)
    size = write_corpus(args.out, lines)
    print(f"{args.out}: {len(lines):,} lines ({len(good):,} good), {size:,} bytes")  # CLI output


if __name__ == "__main__":
    main()
