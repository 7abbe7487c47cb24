"""Masking of personal data in text bound for logs: ID-like digit runs become `008*******56`."""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["MaskingFilter", "mask_ids"]

_ID_RUN = re.compile(r"(?<![0-9])([0-9]{3})[0-9]{4,7}([0-9]{2})(?![0-9])")


def mask_ids(text: str) -> str:
    """Mask 9–12-digit runs (personal and legacy IDs): `008190123456` → `008*******56`."""
    return _ID_RUN.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 5) + m.group(2), text)


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
