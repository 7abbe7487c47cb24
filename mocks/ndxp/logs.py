"""Logging without personal data: a filter that masks 9- and 12-digit runs (IDs) in every record."""

from __future__ import annotations

import logging
import re
from typing import Any

from schemas.citizen import mask_id

__all__ = ["MaskIdsFilter", "install_log_filters", "mask_ids"]

# Exactly 9 or 12 ASCII digits, not part of a longer run (a 10-digit insurance code is not an ID).
_ID_RUN = re.compile(r"(?<![0-9])(?:[0-9]{12}|[0-9]{9})(?![0-9])")
# uvicorn's access log puts the request path (GET /v1/citizens/{id}) in the record's args.
_LOGGERS = ("uvicorn.access", "uvicorn.error", "mocks.ndxp")


def mask_ids(text: str) -> str:
    """`text` with every 9/12-digit run masked (`008*******12`)."""
    return _ID_RUN.sub(lambda m: mask_id(m.group()), text)


def _mask(value: Any) -> Any:
    return mask_ids(value) if isinstance(value, str) else value


class MaskIdsFilter(logging.Filter):
    """Mask IDs in a record's message and arguments; never drops a record.

    Arguments are masked one by one (not merged into the message) because uvicorn's access
    formatter unpacks them by position.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask(v) for k, v in record.args.items()}
        return True


def install_log_filters() -> None:
    """Attach the masking filter to uvicorn's and this package's loggers (once each)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskIdsFilter) for f in logger.filters):
            logger.addFilter(MaskIdsFilter())
