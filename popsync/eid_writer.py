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
from typing import Any, NamedTuple

from mocks.vneid.accounts import AccountsDB
from mocks.vneid.lifecycle import AccountState, Action, apply_for, transition
from popsync.eid_plan import AccountPlan, period_start, timeline
from schemas.citizen import Citizen

__all__ = ["WRITE_BATCH", "AccountsWriter", "write_timeline"]

# Account changes per SQLite transaction. A transaction rewrites every page it touched (random accounts'
# rows, the personal-ID index) into the WAL at its commit: 200,000 changes a commit wrote Tuyên Quang's
# 1.7 million in 45 s where 50,000 took 55 s.
WRITE_BATCH = 200_000
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


class _Step(NamedTuple):
    """One change of the lifecycle, decided: the state after it and the values it writes."""

    to: AccountState
    status: str
    level: int
    locked_from: str | None
    action: str
    from_status: str | None
    locks: bool


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
        self._steps: dict[tuple[AccountState | None, Action, int], _Step] = {}

    def _uuid(self, at_ms: int) -> str:
        """A version-7 UUID (hex) of time `at_ms`, its random bits drawn from the seeded stream.

        Time-ordered IDs written in time order land at the end of the unique indexes on `event_id` and
        `account_id`, instead of at random places in them (random IDs made the inserts 3 times slower).
        """
        return f"{at_ms << 80 | self.ids.getrandbits(80) & _UUID_CLEAR | _UUID_SET:032x}"

    def _step(self, state: AccountState | None, action: Action, level: int) -> _Step:
        """What `action` does to an account in `state` (None: not applied yet), by the VNeID's own rules
        (an illegal plan fails here), with the column values it writes. The rules are a pure function of
        the state and the action, of which there are a few dozen pairs: each is decided once."""
        key = (state, action, level)
        step = self._steps.get(key)
        if step is None:
            if action is Action.APPLY:
                tr = apply_for(1 if level == 1 else 2)
            else:
                assert state is not None, "the plan applies before any other change"
                tr = transition(state, action)
            to = tr.to
            step = self._steps[key] = _Step(
                to,
                to.status.value,
                to.level,
                to.locked_from.value if to.locked_from else None,
                action.value,
                tr.from_status.value if tr.from_status else None,
                action is Action.LOCK,
            )
        return step

    def change(self, account: int, step: int, at: str, at_ms: int) -> None:
        plan = self.plans[account]
        action, level = plan.steps[step]
        done = self._step(self.states[account], action, level)
        status = done.status
        if action is Action.APPLY:
            c = self.people[account]
            row: list[Any] = [
                self._uuid(at_ms), c.personal_id, plan.province, c.full_name, c.date_of_birth.isoformat(),
                c.gender, status, done.level, None, None, at, None, None, None, at,
            ]  # fmt: skip
            self.rows[account] = row
            self.new.append(account)
        else:
            row = self.rows[account]  # type: ignore[assignment]  # set at the account's application
            row[_STATUS], row[_LEVEL], row[_UPDATED_AT] = status, done.level, at
            row[_LOCKED_FROM] = done.locked_from
            if status == "approved" and row[_APPROVED_AT] is None:
                row[_APPROVED_AT] = at
            if status == "activated" and row[_ACTIVATED_AT] is None:
                row[_ACTIVATED_AT] = at
            if done.locks:
                row[_LOCKED_AT], row[_REASON] = at, _LOCK_REASON
            self.changed.add(account)
        self.states[account] = done.to
        if step == len(plan.steps) - 1:
            self.finished.append(account)
        self.events.append(
            (self._uuid(at_ms), row[0], row[1], plan.province, done.action, done.from_status, status,
             done.level, at)
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
    last_s, at = -1, ""
    for n, event in enumerate(timeline(plans), 1):
        at_s = epoch + event.at_s
        if at_s != last_s:  # changes in the same second share its text
            last_s, at = at_s, datetime.fromtimestamp(at_s, UTC).isoformat()
        writer.change(event.account, event.step, at, at_s * 1000)
        if n % WRITE_BATCH == 0:
            writer.flush()
            after_batch(writer.written)
    writer.flush()
    after_batch(writer.written)
    return writer.written
