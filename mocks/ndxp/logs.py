"""Logging without personal data: a filter that masks ID-like digit runs in uvicorn's and our records."""

from __future__ import annotations

import logging

from schemas.masking import MaskingFilter

__all__ = ["MaskIdsFilter", "install_log_filters"]

# uvicorn's access log puts the request path (GET /v1/citizens/{id}) in the record's args.
_LOGGERS = ("uvicorn.access", "uvicorn.error", "mocks.ndxp")


# One filter for the whole project: it masks arguments one by one, which uvicorn's access formatter needs.
MaskIdsFilter = MaskingFilter


def install_log_filters() -> None:
    """Attach the masking filter to uvicorn's and this package's loggers (once each).

    A logger's filters see only records logged on that very logger, so this package logs on
    `mocks.ndxp` itself, not on per-module child loggers.
    """
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskIdsFilter) for f in logger.filters):
            logger.addFilter(MaskIdsFilter())
