"""A real PostgreSQL server for popsync's tests and benchmarks: started from the local binaries on a free
127.0.0.1 port in a temporary directory, stopped after.

Modules: `errors` (`PostgresUnavailableError`), `local` (`LocalPostgres`, `local_postgres()`).
"""

from __future__ import annotations

from popsync.postgres.errors import PostgresUnavailableError
from popsync.postgres.local import LocalPostgres, find_binaries, local_postgres

__all__ = ["LocalPostgres", "PostgresUnavailableError", "find_binaries", "local_postgres"]
