"""Logging without personal data: the project's masking filter on uvicorn's and this package's loggers."""

from __future__ import annotations

import logging

from schemas.masking import MaskingFilter

__all__ = ["LOGGER", "install_log_filters"]

LOGGER = "mocks.vneid"
# uvicorn's access log puts the request path (GET /v1/accounts/{id}) in the record's args.
_LOGGERS = ("uvicorn.access", "uvicorn.error", LOGGER, "connectors.vneid")


def install_log_filters() -> None:
    """Attach the masking filter to each logger once. A logger's filters see only records logged on that
    very logger, so this package logs on `mocks.vneid` itself, not on per-module children."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskingFilter) for f in logger.filters):
            logger.addFilter(MaskingFilter())
