"""The e-ID accounts in SQLite: one per citizen; each change and its outbox event in one transaction.

`AccountsStore` is the interface the service needs; `AccountsDB` is its SQLite implementation and
`mocks.vneid.accounts_postgres.PostgresAccounts` its PostgreSQL one (`open_accounts` picks by URL).
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from mocks.common.audit import AuditLog, AuditStore
from mocks.ndxp.postgres import is_postgres_url
from mocks.ndxp.sqlite import SqliteConnections, sqlite_path
from mocks.vneid.exceptions import AccountExistsError, AccountNotFoundError
from mocks.vneid.lifecycle import AccountState, Action, Level, Status, Transition, apply_for, transition
from mocks.vneid.matching import Applicant
from mocks.vneid.outbox import AccountEvent, Outbox, OutboxStore

__all__ = [
    "COLUMNS",
    "NOT_FOUND",
    "Account",
    "AccountsDB",
    "AccountsStore",
    "account_from_row",
    "columns_after",
    "new_event",
    "open_accounts",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    personal_id TEXT NOT NULL UNIQUE,   -- one account per citizen
    province TEXT NOT NULL,             -- where the application was filed
    full_name TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    gender TEXT NOT NULL,
    status TEXT NOT NULL,
    level INTEGER NOT NULL,             -- applied for while applied, granted afterwards
    locked_from TEXT,
    lock_reason TEXT,
    passcode_hash TEXT,
    activation_hash TEXT,
    applied_at TEXT NOT NULL,
    approved_at TEXT,
    activated_at TEXT,
    locked_at TEXT,
    updated_at TEXT NOT NULL
);
"""
COLUMNS = (
    "account_id", "personal_id", "province", "full_name", "date_of_birth", "gender", "status", "level",
    "locked_from", "lock_reason", "passcode_hash", "activation_hash",
    "applied_at", "approved_at", "activated_at", "locked_at", "updated_at",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM accounts"  # noqa: S608 - constant column names
_INSERT = f"INSERT INTO accounts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
NOT_FOUND = "no e-ID account for this personal ID; the citizen must apply first"
_TIMES = ("applied_at", "approved_at", "activated_at", "locked_at", "updated_at")


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


@dataclass(frozen=True, slots=True)
class Account:
    """One citizen's e-ID account as stored (the hashes never leave the service)."""

    account_id: str
    personal_id: str
    province: str
    full_name: str
    date_of_birth: date
    gender: Literal["male", "female"]
    status: Status
    level: Level
    locked_from: Status | None
    lock_reason: str | None
    passcode_hash: str | None = field(repr=False)
    activation_hash: str | None = field(repr=False)
    applied_at: datetime
    approved_at: datetime | None
    activated_at: datetime | None
    locked_at: datetime | None
    updated_at: datetime

    @property
    def state(self) -> AccountState:
        return AccountState(self.status, self.level, self.locked_from)


def account_from_row(row: sqlite3.Row | tuple[Any, ...]) -> Account:
    """An `Account` from a stored row (`COLUMNS`' order): times and dates as ISO text (SQLite) or typed
    (PostgreSQL); times in UTC either way."""
    values = dict(zip(COLUMNS, row, strict=True))
    for name in _TIMES:
        value = values[name]
        if isinstance(value, str):
            value = datetime.fromisoformat(value) if value else None
        values[name] = value.astimezone(UTC) if value else None
    if isinstance(values["date_of_birth"], str):
        values["date_of_birth"] = date.fromisoformat(values["date_of_birth"])
    values["status"] = Status(values["status"])
    values["locked_from"] = Status(values["locked_from"]) if values["locked_from"] else None
    return Account(**values)


def new_event(account: Account, tr: Transition, at: datetime) -> AccountEvent:
    """The outbox event of `tr` on `account` at `at` (a new event ID)."""
    return AccountEvent(
        event_id=uuid.uuid4().hex,
        account_id=account.account_id,
        personal_id=account.personal_id,
        province=account.province,
        action=tr.action.value,
        from_status=tr.from_status.value if tr.from_status else None,
        to_status=tr.to_status.value,
        level=tr.to.level,
        at=at,
    )


class AccountsStore(Protocol):
    """What the VNeID service needs from its accounts' storage: one account per citizen, `change` the only
    way a status moves, each change and its outbox event committed as one."""

    @property
    def outbox(self) -> OutboxStore:
        """The store's outbox (its events are written by `apply` and `change`)."""
        ...

    @property
    def location(self) -> str:
        """Where the accounts are, without credentials (for logs)."""
        ...

    def find(self, personal_id: str) -> Account | None: ...
    def get(self, personal_id: str) -> Account: ...
    def get_by_id(self, account_id: str) -> Account | None: ...
    def count(self) -> int: ...
    def apply(
        self, applicant: Applicant, province: str, level: Level, at: datetime | None = None
    ) -> Account: ...
    def change(
        self, personal_id: str, action: Action, *, at: datetime | None = None, **updates: str | None
    ) -> Account: ...
    def audit_log(self) -> AuditStore:
        """The disclosure audit kept in the same database."""
        ...

    def close(self) -> None: ...


class AccountsDB:
    """Accounts and their outbox in one SQLite file (WAL); `change` is the only way a status moves."""

    def __init__(self, connections: SqliteConnections) -> None:
        self.connections = connections
        self.connections.get().executescript(_SCHEMA)
        self.outbox = Outbox(connections)

    @classmethod
    def create(cls, path: Path | str) -> AccountsDB:
        """Open the database file at `path`, creating it (and its tables) when absent."""
        return cls(SqliteConnections(Path(path)))

    def close(self) -> None:
        self.connections.close()

    @property
    def location(self) -> str:
        return str(self.connections.path)

    def audit_log(self) -> AuditLog:
        """The disclosure audit in the same file."""
        return AuditLog(self.connections)

    def find(self, personal_id: str) -> Account | None:
        row = self.connections.get().execute(f"{_SELECT} WHERE personal_id = ?", (personal_id,)).fetchone()
        return account_from_row(row) if row else None

    def get(self, personal_id: str) -> Account:
        """The citizen's account; `AccountNotFoundError` when there is none."""
        account = self.find(personal_id)
        if account is None:
            raise AccountNotFoundError(NOT_FOUND)
        return account

    def get_by_id(self, account_id: str) -> Account | None:
        row = self.connections.get().execute(f"{_SELECT} WHERE account_id = ?", (account_id,)).fetchone()
        return account_from_row(row) if row else None

    def count(self) -> int:
        return int(self.connections.get().execute("SELECT COUNT(*) FROM accounts").fetchone()[0])

    def apply(self, applicant: Applicant, province: str, level: Level, at: datetime | None = None) -> Account:
        """A new account in `applied`, with its event; `AccountExistsError` if the citizen has one."""
        at = at or datetime.now(UTC)
        tr = apply_for(level)
        a = applicant
        row = (
            uuid.uuid4().hex, a.personal_id, province, a.full_name, a.date_of_birth.isoformat(), a.gender,
            tr.to_status.value, tr.to.level, None, None, None, None, _iso(at), None, None, None, _iso(at),
        )  # fmt: skip
        conn = self.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_INSERT, row)
            account = account_from_row(row)
            Outbox.insert(conn, new_event(account, tr, at))
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            raise AccountExistsError(
                "the citizen already has an e-ID account (one per personal ID); look it up instead"
            ) from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return account

    def change(
        self, personal_id: str, action: Action, *, at: datetime | None = None, **updates: str | None
    ) -> Account:
        """Apply `action` to the citizen's account, decided on its state inside the transaction, and write
        the event. `updates` sets further columns (passcode_hash, activation_hash, lock_reason, full_name)."""
        at = at or datetime.now(UTC)
        conn = self.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(f"{_SELECT} WHERE personal_id = ?", (personal_id,)).fetchone()
            if row is None:
                raise AccountNotFoundError(NOT_FOUND)
            before = account_from_row(row)
            tr = transition(before.state, action)
            values = columns_after(before, tr, at, updates)
            sets = ", ".join(f"{name} = ?" for name in values)  # names from _columns_after; values bound
            update = f"UPDATE accounts SET {sets} WHERE account_id = ?"  # noqa: S608
            conn.execute(update, [*values.values(), before.account_id])
            Outbox.insert(conn, new_event(before, tr, at))
            after = conn.execute(f"{_SELECT} WHERE account_id = ?", (before.account_id,)).fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return account_from_row(after)


def columns_after(
    before: Account, tr: Transition, at: datetime, updates: dict[str, str | None]
) -> dict[str, Any]:
    """The columns `tr` sets on `before` at `at`, with the caller's `updates` (names checked here)."""
    unknown = set(updates) - {"passcode_hash", "activation_hash", "lock_reason", "full_name"}
    if unknown:
        raise ValueError(f"change() cannot set {sorted(unknown)}")
    to = tr.to
    values: dict[str, Any] = {
        "status": to.status.value,
        "level": to.level,
        "locked_from": to.locked_from.value if to.locked_from else None,
        "updated_at": _iso(at),
        **updates,
    }
    if to.status is Status.APPROVED and before.approved_at is None:
        values["approved_at"] = _iso(at)
    if to.status is Status.ACTIVATED and before.activated_at is None:
        values["activated_at"] = _iso(at)
        values["activation_hash"] = None  # the one-time code is spent
    if tr.action is Action.LOCK:
        values["locked_at"] = _iso(at)
    if tr.action is Action.UNLOCK:
        values["locked_at"] = values["lock_reason"] = None
    return values


def open_accounts(url: str) -> AccountsStore:
    """Open the accounts store a database URL names: `sqlite:///PATH` or `postgresql://…` (other schemes
    fail clearly)."""
    if is_postgres_url(url):
        from mocks.vneid.accounts_postgres import PostgresAccounts  # not at the top: it imports this module

        return PostgresAccounts.create(url)
    return AccountsDB.create(sqlite_path(url))
