"""`/v1/audit`: read the disclosure audit (the `audit.read` scope: auditors' clients or keys only).

To trace one record of a run: its Kafka message's `x-request-id` header is the request ID of the
worker's NDXP call; filter by that `request_id` and the record's `personal_id`.
"""

from __future__ import annotations

from mocks.common.routes import audit_router
from mocks.ndxp.deps import auditor

__all__ = ["router"]

router = audit_router(auditor)
