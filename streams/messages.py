"""Wire formats of the messages popsync workers and connectors exchange (JSON, UTF-8)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "decode_headers",
    "dumps",
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


def now_ms() -> int:
    return int(time.time() * 1000)


def dumps(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; names keep their diacritics."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


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
