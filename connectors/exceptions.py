"""Errors of the connectors package, under one root: ConnectorError."""

from __future__ import annotations

__all__ = ["ConnectorError", "DeliveryError", "SourceFileError"]


class ConnectorError(Exception):
    """Root of every error a connector raises on purpose."""


class SourceFileError(ConnectorError):
    """A records file cannot be read at all (missing, a directory, unreadable)."""


class DeliveryError(ConnectorError):
    """The broker did not confirm some records; the message says how many and why."""
