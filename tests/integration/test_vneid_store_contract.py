"""One contract for every VNeID accounts store and its outbox: the same tests against SQLite and a real
PostgreSQL (issue 12). The service's own rules are unit-tested in tests/unit/test_vneid_accounts.py."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest

from mocks.common.audit import Disclosure
from mocks.vneid.accounts import AccountsStore, open_accounts
from mocks.vneid.exceptions import (
    AccountExistsError,
    AccountNotFoundError,
    IllegalTransitionError,
    MatchError,
)
from mocks.vneid.lifecycle import Action, Status
from mocks.vneid.matching import Applicant
from mocks.vneid.outbox import Outbox
from mocks.vneid.service import AccountService
from popsync.postgres import LocalPostgres
from schemas.citizen import Citizen

DUC = Citizen(
    personal_id="008090123456", full_name="Nguyễn Văn Đức", date_of_birth=date(1990, 5, 17), gender="male",
    permanent_province="008",
)  # fmt: skip
HOA = Citizen(
    personal_id="019301000001", full_name="Trần Thị Hoa", date_of_birth=date(2001, 2, 3), gender="female",
    permanent_province="019",
)  # fmt: skip
NPD = {c.personal_id: c for c in (DUC, HOA)}


def npd(ids: list[str]) -> Mapping[str, Citizen]:
    return {i: NPD[i] for i in ids if i in NPD}


def applicant(citizen: Citizen = DUC, **changes: object) -> Applicant:
    fields: dict[str, object] = {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth,
        "gender": citizen.gender,
        **changes,
    }
    return Applicant(**fields)  # type: ignore[arg-type]  # the test's fields are Applicant's


@dataclass
class Backend:
    name: str
    url: str
    raw: Callable[[str], None]

    def open(self) -> AccountsStore:
        return open_accounts(self.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "vneid.sqlite3"

        def run_sqlite(sql: str) -> None:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute(sql)
            finally:
                conn.close()

        return Backend("sqlite", f"sqlite:///{path}", run_sqlite)
    url = request.getfixturevalue("postgres_url")

    def run_postgres(sql: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.encode())

    return Backend("postgresql", url, run_postgres)


@pytest.fixture
def db(backend: Backend) -> Iterator[AccountsStore]:
    store = backend.open()
    yield store
    store.close()


@pytest.fixture
def service(db: AccountsStore) -> AccountService:
    return AccountService(db, npd)


def steps(db: AccountsStore, personal_id: str = DUC.personal_id) -> list[tuple[str | None, str, int]]:
    return [(e.from_status, e.to_status, e.level) for e in db.outbox.events(personal_id)]


def test_an_account_through_its_life_one_event_per_change(service: AccountService, db: AccountsStore) -> None:
    at = datetime(2024, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=7)))
    filed = db.apply(applicant(full_name="  nguyễn   VĂN đức "), "008", 1, at=at)
    assert (filed.status, filed.level, filed.province, filed.applied_at) == (Status.APPLIED, 1, "008", at)
    assert db.get(DUC.personal_id) == filed == db.get_by_id(filed.account_id)
    approval = service.approve(DUC.personal_id)
    assert approval.activation_code is not None and approval.account.full_name == DUC.full_name
    done = service.activate(DUC.personal_id, approval.activation_code, "123456")
    assert done.status is Status.ACTIVATED and done.activation_hash is None and done.passcode_hash
    locked = service.lock(DUC.personal_id, "lost phone")
    assert (locked.status, locked.locked_from, locked.lock_reason) == (
        Status.LOCKED,
        Status.ACTIVATED,
        "lost phone",
    )
    unlocked = service.unlock(DUC.personal_id)
    assert (unlocked.status, unlocked.locked_at, unlocked.lock_reason) == (Status.ACTIVATED, None, None)
    assert steps(db) == [
        (None, "applied", 1),
        ("applied", "approved", 1),
        ("approved", "activated", 1),
        ("activated", "locked", 1),
        ("locked", "activated", 1),
    ]
    events = db.outbox.events()
    assert events[0].at == at and events[0].at.tzinfo == UTC  # stored and read back in UTC
    assert events[0].to_message()["at"] == "2024-03-03T22:06:07.890123+00:00"
    assert [e.seq for e in events] == sorted(e.seq for e in events) and len({e.event_id for e in events}) == 5
    assert db.find(HOA.personal_id) is None and db.get_by_id("nope") is None and db.count() == 1


def test_one_account_per_citizen_and_refusals_change_nothing(
    service: AccountService, db: AccountsStore
) -> None:
    db.apply(applicant(), "008", 1)
    with pytest.raises(AccountExistsError):
        db.apply(applicant(), "019", 2)
    with pytest.raises(AccountNotFoundError):
        db.get(HOA.personal_id)
    with pytest.raises(AccountNotFoundError):
        db.change(HOA.personal_id, Action.LOCK)
    with pytest.raises(IllegalTransitionError):
        db.change(DUC.personal_id, Action.UNLOCK)
    db.apply(applicant(HOA, full_name="Someone Else"), "019", 1)
    with pytest.raises(MatchError):
        service.approve(HOA.personal_id)
    assert db.get(HOA.personal_id).status is Status.APPLIED
    assert db.count() == 2 and len(db.outbox.events()) == 2


def test_the_outbox_is_pending_until_marked_and_a_connector_reads_it(
    db: AccountsStore, backend: Backend
) -> None:
    db.apply(applicant(), "008", 1)
    db.change(DUC.personal_id, Action.VERIFY_IN_PERSON)
    db.apply(applicant(HOA), "019", 1)
    ids = [e.event_id for e in db.outbox.pending()]
    assert len(ids) == 3 and db.outbox.pending_count() == 3
    assert [e.event_id for e in db.outbox.pending(limit=2)] == ids[:2]
    assert db.outbox.mark_sent(ids[:2]) == 2
    assert db.outbox.mark_sent(ids[:2]) == 0 and db.outbox.mark_sent([]) == 0
    connector = Outbox.open(backend.url)  # a connector process: its own connections
    try:
        assert [e.event_id for e in connector.pending()] == ids[2:]
        assert connector.pending_count() == 1 and len(connector.events()) == 3
        assert connector.mark_sent(ids) == 1
    finally:
        connector.close()
    assert db.outbox.pending() == []


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("DELETE FROM outbox", "never deleted"),
        ("UPDATE outbox SET to_status = 'activated'", "never rewritten"),
        ("UPDATE outbox SET sent_at = '2030-01-01T00:00:00+00:00'", "marked sent once"),
    ],
)
def test_the_database_keeps_outbox_events_as_they_were(
    db: AccountsStore, backend: Backend, statement: str, refusal: str
) -> None:
    db.apply(applicant(), "008", 1)
    before = db.outbox.events()
    db.outbox.mark_sent([before[0].event_id])
    with pytest.raises((sqlite3.DatabaseError, psycopg.Error), match=refusal):
        backend.raw(statement)
    after = db.outbox.events()
    assert [(e.event_id, e.to_status, e.at) for e in after] == [
        (e.event_id, e.to_status, e.at) for e in before
    ]


def test_the_audit_sits_in_the_same_database(db: AccountsStore, backend: Backend) -> None:
    audit = db.audit_log()
    audit.record([Disclosure("bhxh", DUC.personal_id, ["status"], "check", "r1", "accounts.read")])
    other = backend.open()
    try:
        assert other.audit_log().count() == 1
        assert other.audit_log().read()[0].request_id == "r1"
    finally:
        other.close()
    with pytest.raises((sqlite3.DatabaseError, psycopg.Error), match="append-only"):
        backend.raw("DELETE FROM audit")


def test_two_replicas_changing_one_account_take_turns(db: AccountsStore, backend: Backend) -> None:
    db.apply(applicant(), "008", 1)
    db.change(DUC.personal_id, Action.VERIFY_IN_PERSON)
    db.change(DUC.personal_id, Action.ACTIVATE, passcode_hash="h")
    stores = [db, backend.open()]
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def lock_it(store: AccountsStore) -> None:
        start.wait()
        try:
            store.change(DUC.personal_id, Action.LOCK, lock_reason="race")
            result = "locked"
        except IllegalTransitionError:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=lock_it, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stores[1].close()
    # The second decided on the first's result: exactly one lock, and one event for it.
    assert sorted(outcomes) == ["locked", "refused"]
    assert steps(db)[-1] == ("activated", "locked", 2) and len(db.outbox.events()) == 4


def test_the_vneid_serves_from_postgres_with_the_npd_there_too(postgres_server: LocalPostgres) -> None:
    from mocks.ndxp.db import open_population
    from mocks.vneid.config import VneidSettings
    from mocks.vneid.server import VneidServer

    npd_url, vneid_url = postgres_server.create_database("npd"), postgres_server.create_database("vneid")
    population = open_population(npd_url)
    population.load([DUC, HOA])
    population.close()
    secret = "test-police-008-secret"
    settings = VneidSettings(
        database_url=vneid_url,
        population_url=npd_url,
        clients={"police-008": {"secret": secret, "scopes": ["account.officer"]}},
        api_keys={},
        officer_keys={},
    )
    with VneidServer(settings) as server:
        token = httpx.post(
            f"{server.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("police-008", secret),
        ).json()["access_token"]
        officer = {"Authorization": f"Bearer {token}"}
        body = {
            "personal_id": DUC.personal_id, "full_name": DUC.full_name, "date_of_birth": "1990-05-17",
            "gender": "male", "province": "008", "level": 1,
        }  # fmt: skip
        assert httpx.post(f"{server.base_url}/v1/accounts", json=body, headers=officer).status_code == 201
        approved = httpx.post(f"{server.base_url}/v1/accounts/{DUC.personal_id}/approve", headers=officer)
        assert approved.status_code == 200 and approved.json()["account"]["status"] == "approved"
    store = open_accounts(vneid_url)
    try:
        assert steps(store) == [(None, "applied", 1), ("applied", "approved", 1)]
        assert store.audit_log().count() >= 1  # the officer's answers are audited in the same database
    finally:
        store.close()
