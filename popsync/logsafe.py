"""Logging set-up for the CLI: stderr, with personal IDs masked in every record."""

from __future__ import annotations

import logging

from schemas.masking import MaskingFilter

__all__ = ["configure_logging"]


def configure_logging(level: str = "WARNING") -> None:
    """Plain stderr logging with the masking filter on the root handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python's network thread warns when it waited on the GIL (the CLI generates 800,000 citizens
    # in the main thread); nothing is lost, and the warning reads like an error to the people watching.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    # kafka-python's admin client logs its whole configuration, SASL password included, at DEBUG.
    logging.getLogger("kafka.admin.client").setLevel(logging.INFO)
    # faust's workers join with their own assignor, whose member metadata kafka-python cannot decode; the
    # lag monitor copes (it counts every partition of such a group as held) but kafka-python warns on every
    # poll, which would bury the run's progress lines.
    logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
