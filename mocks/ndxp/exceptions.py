"""Errors of the mock NDXP, under one root.

NdxpError
├── StorageError                 the database refused or failed an operation
│   ├── UnsupportedDatabaseError the database URL names an engine not implemented
│   ├── DuplicateCitizenError    a load would hold the same personal_id twice
│   └── PopulationFileError      a line of a population file is not a citizen (or it is unreadable)
└── ServerStartError             the background server did not come up
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DuplicateCitizenError",
    "NdxpError",
    "PopulationFileError",
    "ServerStartError",
    "StorageError",
    "UnsupportedDatabaseError",
]


class NdxpError(Exception):
    """Root of every error the mock NDXP raises on purpose."""


class StorageError(NdxpError):
    """The population or audit database refused or failed an operation."""


class UnsupportedDatabaseError(StorageError):
    """The database URL names an engine (or form) this mock does not implement."""


class DuplicateCitizenError(StorageError):
    """A load would hold two citizens with the same personal_id; nothing of that load is kept."""


class PopulationFileError(StorageError):
    """A line of a population file is not a citizen, or the file cannot be read; carries the file, the line
    number (None for the whole file) and the problem, on one line and without personal data."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        if line is None:
            super().__init__(f"{self.path}: {problem}")
        else:
            super().__init__(f"{self.path}:{line}: {problem} (nothing of this file was loaded; fix the line)")


class ServerStartError(NdxpError):
    """The NDXP server thread did not answer /health in time, or stopped while starting."""
