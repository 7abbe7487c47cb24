"""`POST /oauth/token`: OAuth2 client credentials → a short-lived bearer token (`mocks.common.routes`)."""

from __future__ import annotations

import logging

from mocks.common.routes import token_router

__all__ = ["router"]

# The package logger: it carries the ID-masking filter.
router = token_router(logging.getLogger("mocks.ndxp"), realm="ndxp")
