"""Bulk writing of a plan into the mock VNeID (`popsync.eid_writer`): accounts and outbox agree, in order."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from mocks.ndxp.population_exact import AgeGroups, generate_by_age
from mocks.vneid.accounts import AccountsDB
from mocks.vneid.lifecycle import Status
from popsync.eid_plan import EidTargets, plan_accounts
from popsync.eid_writer import write_timeline

pytestmark = pytest.mark.unit

AS_OF = date(2023, 12, 31)
TARGETS = EidTargets("008", {1: 300, 2: 420}, {1: 250, 2: 380}, {1: 150, 2: 300}, upgraded=60, locked=12)


def write(path: Path, seed: int = 3) -> tuple[AccountsDB, int, list[int]]:
    people = list(generate_by_age(1, {"008": AgeGroups(1000)}, AS_OF))
    plans = plan_accounts(TARGETS, len(people), seed)
    db = AccountsDB.create(path)
    batches: list[int] = []
    written = write_timeline(db, plans, [people[p.citizen] for p in plans], seed, AS_OF, batches.append)
    return db, written, batches


def test_accounts_and_their_events_agree(tmp_path: Path) -> None:
    db, written, batches = write(tmp_path / "v.sqlite3")
    try:
        events = db.outbox.events()
        assert written == len(events) == batches[-1]
        assert db.count() == 720
        assert len({e.event_id for e in events}) == len(events)
        by_account: dict[str, list[str]] = {}
        for e in events:
            chain = by_account.setdefault(e.personal_id, [])
            # each event starts where the previous one left the account
            assert e.from_status == (chain[-1] if chain else None)
            chain.append(e.to_status)
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert all(e.at.date() <= AS_OF for e in events)
        statuses: Counter[tuple[str, int]] = Counter()
        for personal_id, chain in by_account.items():
            account = db.get(personal_id)
            assert account.status.value == chain[-1]
            assert (account.approved_at is not None) == any(s in ("approved", "activated") for s in chain)
            assert (account.activated_at is not None) == ("activated" in chain)
            if account.status is Status.LOCKED:
                assert account.locked_from is Status.ACTIVATED and account.lock_reason
            statuses[account.status.value, account.level] += 1
        assert statuses[("locked", 1)] + statuses[("locked", 2)] == 12
        accounts = [db.get(p) for p in by_account]
        assert sum(a.approved_at is not None for a in accounts) == 630
        assert sum(a.activated_at is not None for a in accounts) == 450
        assert db.outbox.pending_count() == written, "nothing is sent until a connector drains it"
    finally:
        db.close()


def test_same_seed_same_ids(tmp_path: Path) -> None:
    first, _, _ = write(tmp_path / "a.sqlite3")
    again, _, _ = write(tmp_path / "b.sqlite3")
    other, _, _ = write(tmp_path / "c.sqlite3", seed=4)
    try:
        ids = [e.event_id for e in first.outbox.events()]
        assert ids == [e.event_id for e in again.outbox.events()]
        assert ids != [e.event_id for e in other.outbox.events()]
        assert all(len(i) == 32 and i[12] == "7" for i in ids), "version-7 UUIDs, time-ordered"
    finally:
        for db in (first, again, other):
            db.close()
