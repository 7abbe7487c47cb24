"""Errors of the local PostgreSQL server: one root, `PostgresUnavailableError`."""

from __future__ import annotations

from popsync.exceptions import PopsyncError

__all__ = ["NO_POSTGRES_HELP", "PostgresUnavailableError"]

NO_POSTGRES_HELP = (
    "install Debian's postgresql package (as root: scripts/install-postgres.sh, or `make test-tools`), "
    "or put initdb, pg_ctl and postgres on PATH (or in $POPSYNC_PG_BIN)"
)


class PostgresUnavailableError(PopsyncError):
    """No PostgreSQL server could be started here (binaries missing, initdb or start failed)."""
