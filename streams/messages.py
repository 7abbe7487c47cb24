"""Wire formats of the messages popsync workers and connectors exchange (JSON, UTF-8)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "DEAD_LETTER_RAW_BYTES",
    "dead_letter_body",
    "decode_headers",
    "dumps",
    "envelope_lines",
    "envelope_value",
    "int_header",
    "loads",
    "now_ms",
    "result_key",
]

HEADER_PROVINCE = "popsync-province"
HEADER_SECTOR = "popsync-sector"
HEADER_SEQ = "popsync-seq"
HEADER_PUBLISHED_MS = "popsync-published-ms"
HEADER_REQUEST_ID = "x-request-id"
# The publication of a record: 1 first, 2 … for each corrected re-publication (the latest supersedes).
HEADER_VERSION = "popsync-version"
# The linked-procedure chain a record belongs to (a child's health-insurance card), if any.
HEADER_CHAIN = "popsync-chain"
# A batch envelope (see `envelope_value`): the number of records it carries; their sequence numbers.
HEADER_ENVELOPE = "popsync-envelope"
HEADER_SEQS = "popsync-seqs"


def now_ms() -> int:
    return int(time.time() * 1000)


# A dead letter quotes at most this much of the line it rejects (CONTRACT.md), and short identifying fields:
# the entry always fits in a message whatever the line held.
DEAD_LETTER_RAW_BYTES = 64 * 1024
_DEAD_LETTER_FIELD_CHARS = 256


def dumps(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON (orjson); names keep their diacritics.

    What orjson refuses (a lone surrogate, a non-string key) is written by the stdlib with escapes instead
    of stopping the caller: no value can crash a producer.
    """
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":"), default=repr).encode()


def loads(data: bytes | str) -> Any:
    """A message popsync wrote, decoded (orjson; the stdlib for what `dumps` had to escape)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _bounded(value: str | None) -> str | None:
    if value is None or len(value) <= _DEAD_LETTER_FIELD_CHARS:
        return value
    return value[:_DEAD_LETTER_FIELD_CHARS] + f"… ({len(value):,} characters)"


def dead_letter_body(
    reason: str,
    origin: str,
    raw: bytes,
    record_id: str | None = None,
    sector: str | None = None,
    province: str | None = None,
) -> dict[str, Any]:
    """A dead-letter entry: the reason, where the line came from, what it could say of itself, its start."""
    body: dict[str, Any] = {
        "reason": reason,
        "origin": origin,
        "record_id": _bounded(record_id),
        "sector": _bounded(sector),
        "province": _bounded(province),
        "raw": raw[:DEAD_LETTER_RAW_BYTES].decode("utf-8", "replace"),
    }
    if len(raw) > DEAD_LETTER_RAW_BYTES:
        body["raw_bytes"] = len(raw)  # the line's full size; `raw` holds its first 64 KiB
    return body


def result_key(sector: str, province: str, record_id: str) -> str:
    """One record's identity across restarts and re-publications: its results-topic key."""
    return f"{sector}|{province}|{record_id}"


def decode_headers(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> dict[str, str]:
    """Headers as text (faust hands a list of pairs or a mapping)."""
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {
        k: (v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)) for k, v in items
    }


def int_header(headers: Mapping[str, str], name: str, default: int) -> int:
    """A header holding a whole number; `default` when it is absent or unreadable (a foreign producer's)."""
    text = headers.get(name)
    if text is None or not text.isascii() or not text.strip().lstrip("-").isdigit() or len(text) > 20:
        return default
    return int(text)


def envelope_value(lines: Sequence[bytes]) -> bytes:
    """A batch envelope's value: record lines, in source order, joined by `\\n` (README "Envelopes").

    A line a connector publishes never holds `\\n` (it was split on it), so the split is exact. The
    envelope's headers say how many records it carries (`popsync-envelope`) and their sequence numbers
    (`popsync-seqs`, comma-separated); every record of an envelope shares its partition, publication time
    and request ID.
    """
    return b"\n".join(lines)


def envelope_lines(value: bytes, count: int) -> list[bytes]:
    """The record lines of an envelope that says it carries `count`; a value that disagrees is one line.

    An envelope whose line count is not its header's was not written by a popsync connector: it is read
    as one message value instead, which parse_line then judges (and most likely rejects), never lost.
    """
    lines = value.split(b"\n")
    return lines if len(lines) == count else [value]
