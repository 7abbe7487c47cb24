"""`/v1/audit`: read the disclosure audit (the `audit.read` scope: auditors' clients only).

Filter by `agency`, `personal_id` and `request_id` (the `X-Request-ID` the caller sent or was echoed).
"""

from __future__ import annotations

from mocks.common.routes import audit_router
from mocks.vneid.deps import auditor

__all__ = ["router"]

router = audit_router(auditor)
