"""The e-ID accounts in PostgreSQL: `PostgresAccounts`, the `AccountsStore` on `postgresql://` URLs.

As the SQLite store: one account per citizen (a unique personal ID), and each change decided on the
account's state inside the transaction that writes it and its outbox event. The row is read `FOR UPDATE`,
so two replicas changing the same account take turns, and the second decides on the first's result.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from mocks.common.audit_postgres import PostgresAuditLog
from mocks.ndxp.postgres import PostgresPool
from mocks.vneid.accounts import COLUMNS, NOT_FOUND, Account, account_from_row, columns_after, new_event
from mocks.vneid.exceptions import AccountExistsError, AccountNotFoundError
from mocks.vneid.lifecycle import Action, Level, apply_for, transition
from mocks.vneid.matching import Applicant
from mocks.vneid.outbox_postgres import SCHEMA as OUTBOX_SCHEMA
from mocks.vneid.outbox_postgres import PostgresOutbox

__all__ = ["PostgresAccounts"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id text PRIMARY KEY,
    personal_id text NOT NULL UNIQUE,   -- one account per citizen
    province text NOT NULL,             -- where the application was filed
    full_name text NOT NULL,
    date_of_birth date NOT NULL,
    gender text NOT NULL,
    status text NOT NULL,
    level integer NOT NULL,             -- applied for while applied, granted afterwards
    locked_from text,
    lock_reason text,
    passcode_hash text,
    activation_hash text,
    applied_at timestamptz NOT NULL,
    approved_at timestamptz,
    activated_at timestamptz,
    locked_at timestamptz,
    updated_at timestamptz NOT NULL
);
"""
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM accounts"  # noqa: S608 - constant column names
_INSERT = f"INSERT INTO accounts ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"  # noqa: S608


class PostgresAccounts:
    """Accounts and their outbox in one PostgreSQL database; `change` is the only way a status moves."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool
        self.pool.ensure_schema(_SCHEMA + OUTBOX_SCHEMA)
        self.outbox = PostgresOutbox(pool)

    @classmethod
    def create(cls, url: str, *, max_size: int = 16) -> PostgresAccounts:
        """Connect to the database `url` names and create the tables when absent."""
        return cls(PostgresPool(url, max_size=max_size, name="vneid"))

    @property
    def location(self) -> str:
        return self.pool.location

    def close(self) -> None:
        self.pool.close()

    def audit_log(self) -> PostgresAuditLog:
        """The disclosure audit in the same database."""
        return PostgresAuditLog(self.pool)

    def _one(self, where: str, value: str) -> Account | None:
        with self.pool.connection() as conn:
            row = conn.execute(f"{_SELECT} WHERE {where} = %s".encode(), (value,)).fetchone()
        return account_from_row(row) if row else None

    def find(self, personal_id: str) -> Account | None:
        return self._one("personal_id", personal_id)

    def get(self, personal_id: str) -> Account:
        """The citizen's account; `AccountNotFoundError` when there is none."""
        account = self.find(personal_id)
        if account is None:
            raise AccountNotFoundError(NOT_FOUND)
        return account

    def get_by_id(self, account_id: str) -> Account | None:
        return self._one("account_id", account_id)

    def count(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM accounts").fetchone()
        return int(row[0]) if row else 0

    def apply(self, applicant: Applicant, province: str, level: Level, at: datetime | None = None) -> Account:
        """A new account in `applied`, with its event; `AccountExistsError` if the citizen has one."""
        at = (at or datetime.now(UTC)).astimezone(UTC)
        tr = apply_for(level)
        a = applicant
        row = (
            uuid.uuid4().hex, a.personal_id, province, a.full_name, a.date_of_birth, a.gender,
            tr.to_status.value, tr.to.level, None, None, None, None, at, None, None, None, at,
        )  # fmt: skip
        account = account_from_row(row)
        try:
            with self.pool.transaction() as conn:
                conn.execute(_INSERT, row)
                PostgresOutbox.insert(conn, new_event(account, tr, at))
        except psycopg.errors.UniqueViolation:
            raise AccountExistsError(
                "the citizen already has an e-ID account (one per personal ID); look it up instead"
            ) from None
        return account

    def change(
        self, personal_id: str, action: Action, *, at: datetime | None = None, **updates: str | None
    ) -> Account:
        """Apply `action` to the citizen's account, decided on its state inside the transaction (the row
        locked), and write the event. `updates` sets further columns (passcode_hash, activation_hash,
        lock_reason, full_name)."""
        at = (at or datetime.now(UTC)).astimezone(UTC)
        with self.pool.transaction() as conn:
            row = conn.execute(
                f"{_SELECT} WHERE personal_id = %s FOR UPDATE".encode(), (personal_id,)
            ).fetchone()
            if row is None:
                raise AccountNotFoundError(NOT_FOUND)
            before = account_from_row(row)
            tr = transition(before.state, action)
            values: dict[str, Any] = columns_after(before, tr, at, updates)
            sets = ", ".join(f"{name} = %s" for name in values)  # names from columns_after; values bound
            conn.execute(
                f"UPDATE accounts SET {sets} WHERE account_id = %s".encode(),  # noqa: S608
                [*values.values(), before.account_id],
            )
            PostgresOutbox.insert(conn, new_event(before, tr, at))
            after = conn.execute(f"{_SELECT} WHERE account_id = %s".encode(), (before.account_id,)).fetchone()
        assert after is not None  # the row was locked: nobody can have deleted it
        return account_from_row(after)
