"""Masking of personal data in text bound for logs: ID-like digit runs become `008*******56`."""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["MaskingFilter", "mask_ids"]

# A request ID that popsync or a mock generated (a uuid4, as 32 hex characters or in the dashed form) is kept
# whole: about one in three of them holds a run of 9+ decimal digits by chance, and masking it would break
# tracing a request through the logs. Only a whole token is kept, with uuid4's fixed version and variant
# digits and at least one letter a–f, so a bare digit run, or one glued to other text, is still masked.
_HEX = "[0-9a-f]"
_REQUEST_ID = (
    r"(?<![0-9A-Za-z-])(?=[0-9a-f-]*[a-f])"
    f"(?:{_HEX}{{12}}4{_HEX}{{3}}[89ab]{_HEX}{{15}}"
    f"|{_HEX}{{8}}-{_HEX}{{4}}-4{_HEX}{{3}}-[89ab]{_HEX}{{3}}-{_HEX}{{12}})"
    r"(?![0-9A-Za-z-])"
)
_ID_RUN = r"(?<![0-9])(?P<head>[0-9]{3})[0-9]{4,7}(?P<tail>[0-9]{2})(?![0-9])"
_TOKENS = re.compile(f"(?P<request>{_REQUEST_ID})|{_ID_RUN}")


def _replace(match: re.Match[str]) -> str:
    if match.group("request"):
        return match.group(0)
    return match.group("head") + "*" * (len(match.group(0)) - 5) + match.group("tail")


def mask_ids(text: str) -> str:
    """Mask 9–12-digit runs (personal and legacy IDs): `008190123456` → `008*******56`.

    Request IDs (`cda1ad2e9e3249f38966040996b73783`, UUIDs) stay readable.
    """
    return _TOKENS.sub(_replace, text)


def _mask(value: Any) -> Any:
    return mask_ids(value) if isinstance(value, str) else value


class MaskingFilter(logging.Filter):
    """Masks IDs in every record, whoever logged it (uvicorn, faust, popsync); never drops a record.

    Text arguments are masked one by one, so formatters that read the arguments by position (uvicorn's
    access log does) keep working; if an ID still shows in the final message (a number formatted with
    %d, say), the message is rendered, masked, and its arguments dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask(v) for k, v in record.args.items()}
        message = record.getMessage()
        masked = mask_ids(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
