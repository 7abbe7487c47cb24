"""Masking of personal data in text bound for logs: ID-like digit runs become `008*******56`."""

from __future__ import annotations

import logging
import re

__all__ = ["MaskingFilter", "mask_ids"]

_ID_RUN = re.compile(r"(?<![0-9])([0-9]{3})[0-9]{4,7}([0-9]{2})(?![0-9])")


def mask_ids(text: str) -> str:
    """Mask 9–12-digit runs (personal and legacy IDs): `008190123456` → `008*******56`."""
    return _ID_RUN.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 5) + m.group(2), text)


class MaskingFilter(logging.Filter):
    """Rewrites a record's final message with IDs masked, whoever logged it (uvicorn, faust, popsync)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_ids(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
