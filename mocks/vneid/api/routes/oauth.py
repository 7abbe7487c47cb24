"""`POST /oauth/token`: OAuth2 client credentials of agencies and police units → a short-lived bearer
token (`mocks.common.routes`). The citizens' OIDC log-in has its own `/token` (authorization code)."""

from __future__ import annotations

import logging

from mocks.common.routes import token_router
from mocks.vneid.deps import REALM
from mocks.vneid.logs import LOGGER

__all__ = ["router"]

# The package logger: it carries the ID-masking filter.
router = token_router(logging.getLogger(LOGGER), realm=REALM)
