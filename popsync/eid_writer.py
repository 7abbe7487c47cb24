"""Bulk writing of planned e-ID account changes into the mock VNeID's accounts store and its outbox.

`AccountService` takes one transaction per change and a scrypt hash per approval and activation: hours for
a province. Here each change is still decided by the VNeID's own lifecycle rules
(`mocks.vneid.lifecycle.transition`, so an illegal plan fails), and written with its outbox event in the
same transaction, but a batch of changes shares one transaction and one `executemany`. Bulk-written
accounts carry no activation code and no passcode (nobody logs in to them); everything else is as the
service stores it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from mocks.vneid.accounts import AccountsDB
from mocks.vneid.lifecycle import AccountState, Action, apply_for, transition
from popsync.eid_plan import AccountPlan, period_start, timeline
from schemas.citizen import Citizen

__all__ = ["WRITE_BATCH", "AccountsWriter", "write_timeline"]

WRITE_BATCH = 50_000  # account changes per SQLite transaction
_LOCK_REASON = "reported lost or stolen phone"
_ACCOUNT_COLUMNS = (
    "account_id", "personal_id", "province", "full_name", "date_of_birth", "gender", "status", "level",
    "locked_from", "lock_reason", "applied_at", "approved_at", "activated_at", "locked_at", "updated_at",
)  # fmt: skip
_INSERT_ACCOUNT = (
    f"INSERT INTO accounts ({', '.join(_ACCOUNT_COLUMNS)}) "  # noqa: S608 - constant column names
    f"VALUES ({', '.join('?' * len(_ACCOUNT_COLUMNS))})"
)
_UPDATE_ACCOUNT = (
    "UPDATE accounts SET status = ?, level = ?, locked_from = ?, lock_reason = ?, approved_at = ?, "
    "activated_at = ?, locked_at = ?, updated_at = ? WHERE account_id = ?"
)
_INSERT_EVENT = (
    "INSERT INTO outbox (event_id, account_id, personal_id, province, action, from_status, to_status, "
    "level, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The version (7) and variant bits of a UUID (RFC 9562): 48 bits of Unix time in ms, then random bits.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x7000 << 64) | (0x8000 << 48)
# Positions in an account's row (as _ACCOUNT_COLUMNS); the state the lifecycle decides on is kept aside.
_STATUS, _LEVEL, _LOCKED_FROM, _REASON, _APPROVED_AT, _ACTIVATED_AT, _LOCKED_AT, _UPDATED_AT = (
    6, 7, 8, 9, 11, 12, 13, 14,
)  # fmt: skip


class AccountsWriter:
    """Applies the planned changes to the accounts store in batches: each batch's account rows and outbox
    events in one transaction, as `AccountsDB.change` does for one change."""

    def __init__(self, db: AccountsDB, plans: Sequence[AccountPlan], people: Sequence[Citizen], seed: int):
        self.conn = db.connections.get()
        # Personal IDs are random keys of a unique index, and changed accounts are looked up at random: with
        # SQLite's default 2 MB page cache each of those reads index pages from disk again (3 times slower).
        self.conn.execute("PRAGMA cache_size = -524288")  # KiB: 512 MB
        self.plans = plans
        self.people = people  # the citizen of each account (same index as `plans`)
        self.ids = random.Random(f"{seed}:eid-ids")
        self.states: list[AccountState | None] = [None] * len(plans)
        self.rows: list[list[Any] | None] = [None] * len(plans)
        self.new: list[int] = []
        self.changed: set[int] = set()
        self.finished: list[int] = []  # accounts whose last change is in this batch
        self.events: list[tuple[Any, ...]] = []
        self.written = 0

    def _uuid(self, at_ms: int) -> str:
        """A version-7 UUID (hex) of time `at_ms`, its random bits drawn from the seeded stream.

        Time-ordered IDs written in time order land at the end of the unique indexes on `event_id` and
        `account_id`, instead of at random places in them (random IDs made the inserts 3 times slower).
        """
        return f"{at_ms << 80 | self.ids.getrandbits(80) & _UUID_CLEAR | _UUID_SET:032x}"

    def change(self, account: int, step: int, at: str, at_ms: int) -> None:
        plan = self.plans[account]
        action, level = plan.steps[step]
        state = self.states[account]
        if action is Action.APPLY:
            tr = apply_for(1 if level == 1 else 2)
            c = self.people[account]
            row: list[Any] = [
                self._uuid(at_ms), c.personal_id, plan.province, c.full_name, c.date_of_birth.isoformat(),
                c.gender, tr.to_status.value, tr.to.level, None, None, at, None, None, None, at,
            ]  # fmt: skip
            self.rows[account] = row
            self.new.append(account)
        else:
            assert state is not None, "the plan applies before any other change"
            tr = transition(state, action)  # the VNeID's own rules: an illegal plan fails here
            row = self.rows[account]  # type: ignore[assignment]  # set at the account's application
            to = tr.to
            row[_STATUS], row[_LEVEL], row[_UPDATED_AT] = to.status.value, to.level, at
            row[_LOCKED_FROM] = to.locked_from.value if to.locked_from else None
            if to.status.value == "approved" and row[_APPROVED_AT] is None:
                row[_APPROVED_AT] = at
            if to.status.value == "activated" and row[_ACTIVATED_AT] is None:
                row[_ACTIVATED_AT] = at
            if action is Action.LOCK:
                row[_LOCKED_AT], row[_REASON] = at, _LOCK_REASON
            self.changed.add(account)
        self.states[account] = tr.to
        if step == len(plan.steps) - 1:
            self.finished.append(account)
        from_status = tr.from_status.value if tr.from_status else None
        self.events.append(
            (self._uuid(at_ms), row[0], row[1], plan.province, action.value, from_status, tr.to_status.value,
             tr.to.level, at)
        )  # fmt: skip

    def flush(self) -> None:
        """Write the batch's new accounts, changed accounts and events in one transaction."""
        if not self.events:
            return
        new = set(self.new)
        inserts = [tuple(self.rows[a]) for a in self.new]  # type: ignore[arg-type]
        updates = []
        for a in self.changed - new:
            r = self.rows[a]
            assert r is not None
            updates.append(
                (r[_STATUS], r[_LEVEL], r[_LOCKED_FROM], r[_REASON], r[_APPROVED_AT], r[_ACTIVATED_AT],
                 r[_LOCKED_AT], r[_UPDATED_AT], r[0])
            )  # fmt: skip
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(_INSERT_ACCOUNT, inserts)
            self.conn.executemany(_UPDATE_ACCOUNT, updates)
            self.conn.executemany(_INSERT_EVENT, self.events)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.written += len(self.events)
        for a in self.finished:  # an account whose last change is written needs no row in memory
            self.rows[a] = None
        self.new, self.changed, self.events, self.finished = [], set(), [], []


def write_timeline(
    db: AccountsDB,
    plans: Sequence[AccountPlan],
    people: Sequence[Citizen],
    seed: int,
    as_of: date,
    after_batch: Callable[[int], None] = lambda written: None,
) -> int:
    """Write every planned change in time order, `WRITE_BATCH` per transaction; `after_batch(written)`
    runs after each. `people[i]` is the citizen of `plans[i]`. Returns the number of events written."""
    writer = AccountsWriter(db, plans, people, seed)
    epoch = int(period_start(as_of).timestamp())
    for n, event in enumerate(timeline(plans), 1):
        at_s = epoch + event.at_s
        writer.change(event.account, event.step, datetime.fromtimestamp(at_s, UTC).isoformat(), at_s * 1000)
        if n % WRITE_BATCH == 0:
            writer.flush()
            after_batch(writer.written)
    writer.flush()
    after_batch(writer.written)
    return writer.written
