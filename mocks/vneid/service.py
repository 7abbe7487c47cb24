"""Account operations as the API offers them: apply, approve (level 1), verify in person (level 2),
activate, lock, unlock, authenticate. Blocking (SQLite, the NPD): handlers run them in the thread pool."""

from __future__ import annotations

from dataclasses import dataclass

from mocks.vneid.accounts import Account, AccountsStore
from mocks.vneid.exceptions import ActivationCodeError, OidcError, PopulationUnavailableError
from mocks.vneid.lifecycle import Action, Level, Status, transition
from mocks.vneid.matching import Applicant, CitizenLookup, check_against_npd
from mocks.vneid.passcodes import hash_secret, new_activation_code, verify_secret

__all__ = ["AccountService", "Approval"]

_WRONG_CREDENTIALS = "wrong personal ID or passcode, or the account is not activated yet"


@dataclass(frozen=True, slots=True)
class Approval:
    """An approved account and the one-time activation code handed to the citizen (None for an upgrade)."""

    account: Account
    activation_code: str | None


class AccountService:
    """The accounts store plus the NPD look-up that approvals match against (None: approvals answer 503)."""

    def __init__(self, db: AccountsStore, citizens: CitizenLookup | None = None) -> None:
        self.db = db
        self.citizens = citizens

    def apply(self, applicant: Applicant, province: str, level: Level) -> Account:
        """Record an application for an account of `level`, filed in `province`."""
        return self.db.apply(applicant, province, level)

    def lookup(self, personal_id: str) -> Account:
        """The citizen's account; `AccountNotFoundError` when there is none."""
        return self.db.get(personal_id)

    def find(self, personal_id: str) -> Account | None:
        return self.db.find(personal_id)

    def _match(self, account: Account) -> str:
        """The NPD's spelling of the name when the application matches it (the account keeps that one)."""
        if self.citizens is None:
            raise PopulationUnavailableError(
                "no population database is configured to match applications against; set VNEID_POPULATION_URL"
            )
        applicant = Applicant(account.personal_id, account.full_name, account.date_of_birth, account.gender)
        found = self.citizens([account.personal_id])
        return check_against_npd(applicant, found.get(account.personal_id)).full_name

    def approve(self, personal_id: str) -> Approval:
        """Level 1: match the application against the NPD automatically, approve, make an activation code."""
        account = self.db.get(personal_id)
        transition(account.state, Action.APPROVE)  # refuse illegal approvals before asking the NPD
        name = self._match(account)
        code = new_activation_code()
        approved = self.db.change(
            personal_id, Action.APPROVE, activation_hash=hash_secret(code), full_name=name
        )
        return Approval(approved, code)

    def verify_in_person(self, personal_id: str) -> Approval:
        """Level 2: an officer checked the citizen in person (and the NPD agrees); approves or upgrades."""
        account = self.db.get(personal_id)
        transition(account.state, Action.VERIFY_IN_PERSON)
        name = self._match(account)
        if account.status is Status.APPLIED:
            code = new_activation_code()
            approved = self.db.change(
                personal_id, Action.VERIFY_IN_PERSON, activation_hash=hash_secret(code), full_name=name
            )
            return Approval(approved, code)
        return Approval(self.db.change(personal_id, Action.VERIFY_IN_PERSON, full_name=name), None)

    def activate(self, personal_id: str, activation_code: str, passcode: str) -> Account:
        """The citizen's first log-in: the activation code proves the approval reached them; sets passcode.

        The code is checked first, and an unknown ID or an account without a code gets the same answer as
        a wrong code: without credentials, this route must not tell who has an account or its status.
        """
        account = self.db.find(personal_id)
        code_hash = account.activation_hash if account is not None else None
        if account is None or not code_hash or not verify_secret(activation_code, code_hash):
            raise ActivationCodeError("wrong activation code; use the one-time code given at approval")
        transition(account.state, Action.ACTIVATE)
        return self.db.change(personal_id, Action.ACTIVATE, passcode_hash=hash_secret(passcode))

    def lock(self, personal_id: str, reason: str) -> Account:
        return self.db.change(personal_id, Action.LOCK, lock_reason=reason)

    def unlock(self, personal_id: str) -> Account:
        return self.db.change(personal_id, Action.UNLOCK)

    def authenticate(self, personal_id: str, passcode: str) -> Account:
        """The account a citizen logs in to, or an OIDC `access_denied` saying why not.

        The same answer for an unknown ID, a wrong passcode and an account never activated, so a log-in
        form does not tell who has an account; a locked account is named only to its passcode's holder.
        """
        account = self.db.find(personal_id)
        if account is None or not verify_secret(passcode, account.passcode_hash):
            raise OidcError("access_denied", _WRONG_CREDENTIALS)
        if account.status is Status.LOCKED:
            raise OidcError("access_denied", "the e-ID account is locked; contact the police to unlock it")
        if account.status is not Status.ACTIVATED:
            raise OidcError("access_denied", _WRONG_CREDENTIALS)
        return account

    def still_active(self, account_id: str) -> Account | None:
        """The account behind a token if it is still activated (a lock revokes its tokens), else None."""
        account = self.db.get_by_id(account_id)
        return account if account is not None and account.status is Status.ACTIVATED else None
