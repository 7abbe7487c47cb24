"""The pure parts of the PostgreSQL plumbing: URLs, the SQL dialect shim, finding the server binaries."""

from __future__ import annotations

from pathlib import Path

import pytest

import popsync.postgres.local as local
from mocks.ndxp.db_postgres import postgres_dialect
from mocks.ndxp.postgres import checked_database_url, is_postgres_url, safe_url
from popsync.postgres import PostgresUnavailableError, find_binaries

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "yes"),
    [
        ("postgresql://u@h/db", True),
        ("POSTGRES://u@h:5432/db", True),
        ("sqlite:///npd.db", False),
        ("postgresql+psycopg://u@h/db", False),
        ("npd.db", False),
    ],
)
def test_postgres_urls_are_recognised(url: str, yes: bool) -> None:
    assert is_postgres_url(url) is yes


def test_a_url_loses_its_password_and_keeps_the_rest() -> None:
    assert safe_url("postgresql://npd:s3cret@db.example:6543/npd?sslmode=require") == (
        "postgresql://npd:***@db.example:6543/npd?sslmode=require"
    )
    assert safe_url("postgresql://npd@db/npd") == "postgresql://npd@db/npd"
    assert "s3cret" not in safe_url("postgresql://:s3cret@db/npd")


def test_settings_accept_postgres_and_sqlite_and_refuse_the_rest() -> None:
    assert checked_database_url("postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    assert checked_database_url("sqlite:///npd.db") == "sqlite:///npd.db"
    assert checked_database_url(None) is None
    with pytest.raises(ValueError, match="write sqlite:///PATH or postgresql://"):
        checked_database_url("mysql://u:secret@h/db")


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("SELECT 1 FROM citizens WHERE personal_id = ?", "SELECT 1 FROM citizens WHERE personal_id = %s"),
        (
            "INSERT OR IGNORE INTO civil_refusals VALUES (?, ?, ?)",
            "INSERT INTO civil_refusals VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        ),
        ("CREATE TABLE t (a TEXT PRIMARY KEY) WITHOUT ROWID;", "CREATE TABLE t (a TEXT PRIMARY KEY) ;"),
        ("SELECT '100%' WHERE a = ?", "SELECT '100%%' WHERE a = %s"),
        ("INSERT INTO t VALUES (?)", "INSERT INTO t VALUES (%s)"),
    ],
)
def test_the_writers_sql_is_translated(sqlite: str, postgres: str) -> None:
    assert postgres_dialect(sqlite) == postgres


def test_binaries_come_from_the_variable_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("initdb", "pg_ctl", "postgres"):
        (tmp_path / name).write_text("#!/bin/sh\n", encoding="ascii")
    monkeypatch.setenv("POPSYNC_PG_BIN", str(tmp_path))
    assert find_binaries() == tmp_path


def test_no_binaries_says_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POPSYNC_PG_BIN", str(tmp_path))  # empty
    monkeypatch.setattr(local.shutil, "which", lambda _: None)
    monkeypatch.setattr(local, "_DEBIAN", tmp_path / "none")
    with pytest.raises(PostgresUnavailableError, match=r"scripts/install-postgres.sh.*POPSYNC_PG_BIN"):
        find_binaries()


def test_root_runs_the_server_as_nobody_or_the_account_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.os, "geteuid", lambda: 0)
    monkeypatch.delenv("POPSYNC_PG_USER", raising=False)
    nobody = local._RunAs.pick()
    assert nobody.user is not None and nobody.user != 0
    monkeypatch.setenv("POPSYNC_PG_USER", "no-such-account-here")
    with pytest.raises(PostgresUnavailableError, match="POPSYNC_PG_USER"):
        local._RunAs.pick()
    monkeypatch.setattr(local.os, "geteuid", lambda: 1000)
    assert local._RunAs.pick() == local._RunAs()  # not root: the current account
