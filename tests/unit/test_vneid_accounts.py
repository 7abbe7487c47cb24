"""Unit tests of the account store, its outbox and the account service, on a SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mocks.vneid.accounts import AccountsDB, open_accounts
from mocks.vneid.exceptions import (
    AccountExistsError,
    AccountNotFoundError,
    ActivationCodeError,
    IllegalTransitionError,
    MatchError,
    OidcError,
    PopulationUnavailableError,
    VneidError,
)
from mocks.vneid.lifecycle import Status
from mocks.vneid.matching import Applicant
from mocks.vneid.outbox import Outbox
from mocks.vneid.passcodes import hash_secret, verify_secret
from mocks.vneid.service import AccountService
from schemas.citizen import Citizen

pytestmark = pytest.mark.unit

DUC = Citizen(
    personal_id="008090123456", full_name="Nguyễn Văn Đức", date_of_birth=date(1990, 5, 17), gender="male",
    permanent_province="008",
)  # fmt: skip
TAM = Citizen(
    personal_id="052050000777", full_name="Lê Văn Tám", date_of_birth=date(1950, 1, 1), gender="male",
    permanent_province="052", status="deceased",
)  # fmt: skip
NPD = {c.personal_id: c for c in (DUC, TAM)}


def applicant(citizen: Citizen = DUC, **changes: Any) -> Applicant:
    fields = {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth,
        "gender": citizen.gender,
        **changes,
    }
    return Applicant(**fields)


class CountingNpd:
    """The NPD look-up, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ids: list[str]) -> Mapping[str, Citizen]:
        self.calls += 1
        return {i: NPD[i] for i in ids if i in NPD}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AccountsDB]:
    store = open_accounts(f"sqlite:///{tmp_path / 'vneid.sqlite3'}")
    yield store
    store.close()


@pytest.fixture
def npd() -> CountingNpd:
    return CountingNpd()


@pytest.fixture
def service(db: AccountsDB, npd: CountingNpd) -> AccountService:
    return AccountService(db, npd)


def transitions(db: AccountsDB, personal_id: str = DUC.personal_id) -> list[tuple[str | None, str, int]]:
    return [(e.from_status, e.to_status, e.level) for e in db.outbox.events(personal_id)]


def activated(service: AccountService, level: int = 1, passcode: str = "123456") -> None:
    service.apply(applicant(), "008", 1)
    approval = service.approve(DUC.personal_id) if level == 1 else service.verify_in_person(DUC.personal_id)
    assert approval.activation_code is not None
    service.activate(DUC.personal_id, approval.activation_code, passcode)


def test_every_error_has_the_one_root() -> None:
    for error in (AccountExistsError, MatchError, OidcError, PopulationUnavailableError, ActivationCodeError):
        assert issubclass(error, VneidError)


def test_level_1_applied_approved_activated_each_change_one_event(
    service: AccountService, db: AccountsDB
) -> None:
    account = service.apply(applicant(full_name="  nguyễn   VĂN đức "), "008", 1)
    assert (account.status, account.level, account.province) == (Status.APPLIED, 1, "008")
    approval = service.approve(DUC.personal_id)
    assert approval.account.status is Status.APPROVED and approval.account.approved_at is not None
    assert approval.account.full_name == DUC.full_name  # the NPD's spelling is kept
    assert approval.activation_code and verify_secret(
        approval.activation_code, approval.account.activation_hash
    )
    done = service.activate(DUC.personal_id, approval.activation_code, "123456")
    assert done.status is Status.ACTIVATED and done.activated_at is not None and done.activation_hash is None
    assert transitions(db) == [(None, "applied", 1), ("applied", "approved", 1), ("approved", "activated", 1)]
    events = db.outbox.events()
    assert len({e.event_id for e in events}) == 3
    assert {(e.account_id, e.province, e.personal_id) for e in events} == {
        (done.account_id, "008", DUC.personal_id)
    }


def test_level_2_is_approved_in_person_and_level_1_upgraded(
    service: AccountService, db: AccountsDB, npd: CountingNpd
) -> None:
    service.apply(applicant(), "008", 2)
    with pytest.raises(IllegalTransitionError, match="in-person"):
        service.approve(DUC.personal_id)
    assert npd.calls == 0  # an illegal change never reaches the NPD
    approval = service.verify_in_person(DUC.personal_id)
    assert (approval.account.status, approval.account.level) == (Status.APPROVED, 2)
    assert approval.activation_code is not None

    assert transitions(db) == [(None, "applied", 2), ("applied", "approved", 2)]


def test_an_activated_level_1_account_is_upgraded_in_person(service: AccountService, db: AccountsDB) -> None:
    activated(service, level=1)
    upgrade = service.verify_in_person(DUC.personal_id)
    assert (upgrade.account.status, upgrade.account.level, upgrade.activation_code) == (
        Status.ACTIVATED,
        2,
        None,
    )
    assert transitions(db)[-1] == ("activated", "activated", 2)
    with pytest.raises(IllegalTransitionError, match="already level 2"):
        service.verify_in_person(DUC.personal_id)


@pytest.mark.parametrize(
    ("who", "changes", "fields"),
    [
        (DUC, {"full_name": "Nguyen Van Duc"}, ("full_name",)),  # no diacritics: not good enough for an e-ID
        (DUC, {"date_of_birth": date(1990, 5, 18), "gender": "female"}, ("date_of_birth", "gender")),
        (TAM, {}, ("status",)),
        (DUC, {"personal_id": "008090999999"}, ("personal_id",)),
    ],
)
def test_approval_refused_when_the_npd_disagrees(
    service: AccountService, db: AccountsDB, who: Citizen, changes: dict[str, Any], fields: tuple[str, ...]
) -> None:
    filed = service.apply(applicant(who, **changes), "008", 1)
    with pytest.raises(MatchError) as info:
        service.approve(filed.personal_id)
    assert info.value.fields == fields
    assert db.get(filed.personal_id).status is Status.APPLIED
    assert len(db.outbox.events()) == 1  # the application only


def test_approval_without_a_population_says_which_setting(db: AccountsDB) -> None:
    service = AccountService(db, None)
    service.apply(applicant(), "008", 1)
    with pytest.raises(PopulationUnavailableError, match="VNEID_POPULATION_URL"):
        service.approve(DUC.personal_id)


def test_one_account_per_citizen(service: AccountService, db: AccountsDB) -> None:
    service.apply(applicant(), "008", 1)
    with pytest.raises(AccountExistsError):
        service.apply(applicant(), "019", 2)
    assert db.count() == 1 and len(db.outbox.events()) == 1
    with pytest.raises(AccountNotFoundError):
        service.lookup("019301000001")


def test_activation_needs_the_code_from_the_approval(service: AccountService, db: AccountsDB) -> None:
    service.apply(applicant(), "008", 1)
    # Before approval there is no code: the same answer as a wrong code, telling nothing of the status.
    with pytest.raises(ActivationCodeError, match="wrong activation code"):
        service.activate(DUC.personal_id, "ANYCODE", "123456")
    with pytest.raises(ActivationCodeError, match="wrong activation code"):
        service.activate("008190000001", "ANYCODE", "123456")  # nobody's account: the same answer
    code = service.approve(DUC.personal_id).activation_code
    assert code is not None
    with pytest.raises(ActivationCodeError):
        service.activate(DUC.personal_id, "WRONG", "123456")
    service.activate(DUC.personal_id, code, "123456")
    with pytest.raises(ActivationCodeError):  # the one-time code is spent
        service.activate(DUC.personal_id, code, "654321")
    assert [e.to_status for e in db.outbox.events()] == ["applied", "approved", "activated"]


def test_lock_and_unlock_return_to_the_status_before(service: AccountService, db: AccountsDB) -> None:
    activated(service)
    locked = service.lock(DUC.personal_id, "reported lost phone")
    assert (locked.status, locked.locked_from, locked.lock_reason) == (
        Status.LOCKED,
        Status.ACTIVATED,
        "reported lost phone",
    )
    with pytest.raises(IllegalTransitionError, match="already locked"):
        service.lock(DUC.personal_id, "again")
    unlocked = service.unlock(DUC.personal_id)
    assert (unlocked.status, unlocked.locked_at, unlocked.lock_reason) == (Status.ACTIVATED, None, None)
    assert transitions(db)[-2:] == [("activated", "locked", 1), ("locked", "activated", 1)]


def test_authentication_answers_the_same_for_unknown_wrong_and_not_activated(service: AccountService) -> None:
    service.apply(applicant(), "008", 1)
    service.approve(DUC.personal_id)
    answers = []
    for personal_id, passcode in [("019301000001", "123456"), (DUC.personal_id, "123456")]:
        with pytest.raises(OidcError) as info:
            service.authenticate(personal_id, passcode)
        answers.append((info.value.error, info.value.description))
    assert answers[0] == answers[1] and answers[0][0] == "access_denied"


def test_authentication_of_activated_and_locked_accounts(service: AccountService) -> None:
    activated(service, passcode="246810")
    assert service.authenticate(DUC.personal_id, "246810").status is Status.ACTIVATED
    with pytest.raises(OidcError, match="wrong personal ID or passcode"):
        service.authenticate(DUC.personal_id, "246811")
    service.lock(DUC.personal_id, "fraud suspected")
    with pytest.raises(OidcError, match="locked"):
        service.authenticate(DUC.personal_id, "246810")


def test_passcode_hashes_are_salted_and_checked(service: AccountService) -> None:
    first, second = hash_secret("123456"), hash_secret("123456")
    assert first != second and verify_secret("123456", first) and verify_secret("123456", second)
    assert not verify_secret("123457", first)
    assert not verify_secret("123456", None) and not verify_secret("123456", "md5$garbage")


def test_outbox_pending_until_marked_and_kept_across_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.sqlite3'}"
    db = open_accounts(url)
    service = AccountService(db, CountingNpd())
    activated(service)
    ids = [e.event_id for e in db.outbox.pending()]
    assert len(ids) == 3
    assert db.outbox.mark_sent(ids[:2]) == 2
    assert db.outbox.mark_sent(ids[:2]) == 0  # marking again changes nothing
    db.close()

    outbox = Outbox.open(url)  # a connector process after a restart
    try:
        assert [e.event_id for e in outbox.pending()] == ids[2:]
        assert outbox.pending_count() == 1 and len(outbox.events()) == 3
    finally:
        outbox.close()


def test_outbox_events_are_never_deleted_or_rewritten(service: AccountService, db: AccountsDB) -> None:
    service.apply(applicant(), "008", 1)
    conn = db.connections.get()
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM outbox")
    with pytest.raises(sqlite3.IntegrityError, match="never rewritten"):
        conn.execute("UPDATE outbox SET to_status = 'activated'")
    db.outbox.mark_sent([db.outbox.events()[0].event_id])
    with pytest.raises(sqlite3.IntegrityError, match="marked sent once"):
        conn.execute("UPDATE outbox SET sent_at = 'later'")


def test_event_messages_carry_the_transition(service: AccountService, db: AccountsDB) -> None:
    service.apply(applicant(), "008", 1)
    message = db.outbox.events()[0].to_message()
    assert set(message) == {
        "event_id",
        "account_id",
        "personal_id",
        "province",
        "action",
        "from",
        "to",
        "level",
        "at",
    }
    assert (message["from"], message["to"], message["level"], message["action"]) == (
        None,
        "applied",
        1,
        "apply",
    )
