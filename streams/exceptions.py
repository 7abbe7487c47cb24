"""Errors of the streams package, under one root: StreamsError."""

from __future__ import annotations

__all__ = ["ConfigurationError", "NdxpUnavailableError", "StreamsError"]


class StreamsError(Exception):
    """Root of every error the reconciliation workers raise on purpose."""


class ConfigurationError(StreamsError):
    """A setting is missing or wrong; the message names the setting and what to do."""


class NdxpUnavailableError(StreamsError):
    """The national exchange answered with a transient failure (retried with backoff)."""
