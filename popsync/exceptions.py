"""Errors of the popsync CLI and orchestration, under one root: PopsyncError."""

from __future__ import annotations

__all__ = [
    "ExpectationFailed",
    "NpdNotEmptyError",
    "OutputPathError",
    "PopsyncError",
    "ScenarioError",
    "ServiceError",
]


class PopsyncError(Exception):
    """Root of every error the CLI reports as a message instead of a traceback."""


class ScenarioError(PopsyncError):
    """A scenario file is unreadable or wrong; the message names the file and the place."""


class ServiceError(PopsyncError):
    """A service popsync started (NDXP, a worker) failed to start or died."""


class ExpectationFailed(PopsyncError):
    """A figure of the run differs from the scenario's `expect`."""


class OutputPathError(PopsyncError):
    """A file the run was asked to write (--summary, --results, --report) cannot be written there."""


class NpdNotEmptyError(PopsyncError):
    """The NPD database a run was given (--npd-url) already holds citizens; a run loads its own."""
