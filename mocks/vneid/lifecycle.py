"""The e-ID account lifecycle as pure functions: which change is legal from which status, and its result.

    apply ──► applied ──approve (level 1, NPD match)──────────► approved ──activate──► activated
                 └──────verify_in_person (level 2, officer)──► approved(2)
    approved(1) / activated(1) ──verify_in_person──► same status at level 2 (an upgrade)
    any but locked ──lock──► locked ──unlock──► the status it was locked from

Every legal change is a `Transition`; an illegal one raises `IllegalTransitionError` saying what the
status allows instead. No I/O here: the store applies transitions and writes their events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from mocks.vneid.exceptions import IllegalTransitionError

__all__ = ["AccountState", "Action", "Level", "Status", "Transition", "apply_for", "transition"]

Level = Literal[1, 2]


class Status(StrEnum):
    """Where an account stands (DOMAIN.md: applied for, approved, then activated; or locked)."""

    APPLIED = "applied"
    APPROVED = "approved"
    ACTIVATED = "activated"
    LOCKED = "locked"


class Action(StrEnum):
    """What can happen to an account; each legal one becomes an event."""

    APPLY = "apply"
    APPROVE = "approve"  # level 1: the application's data matched the NPD automatically
    VERIFY_IN_PERSON = "verify_in_person"  # level 2: an officer also checked the citizen in person
    ACTIVATE = "activate"  # the citizen's first log-in: sets a passcode
    LOCK = "lock"
    UNLOCK = "unlock"


@dataclass(frozen=True, slots=True)
class AccountState:
    """The part of an account the lifecycle decides on.

    `level` is the level applied for while `applied`, the level granted afterwards.
    `locked_from` is the status a locked account returns to when unlocked.
    """

    status: Status
    level: Level
    locked_from: Status | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One legal change: the action, the status before (None for an application) and the state after."""

    action: Action
    from_status: Status | None
    to: AccountState

    @property
    def to_status(self) -> Status:
        return self.to.status


def apply_for(level: Level) -> Transition:
    """A new application for an e-ID account of `level`."""
    return Transition(Action.APPLY, None, AccountState(Status.APPLIED, level))


def _illegal(action: Action, state: AccountState, why: str) -> IllegalTransitionError:
    return IllegalTransitionError(
        f"cannot {action.value.replace('_', ' ')} an account that is {state.status.value} "
        f"(level {state.level}): {why}"
    )


def _approve(state: AccountState) -> AccountState:
    if state.status is not Status.APPLIED:
        raise _illegal(Action.APPROVE, state, "only an applied account can be approved")
    if state.level != 1:
        raise _illegal(
            Action.APPROVE, state, "a level-2 application is approved by in-person verification "
            "(POST /v1/accounts/{personal_id}/verify-in-person)",
        )  # fmt: skip
    return replace(state, status=Status.APPROVED)


def _verify_in_person(state: AccountState) -> AccountState:
    if state.status is Status.LOCKED:
        raise _illegal(Action.VERIFY_IN_PERSON, state, "unlock it first")
    if state.status is Status.APPLIED:
        return AccountState(Status.APPROVED, 2)
    if state.level == 2:
        raise _illegal(Action.VERIFY_IN_PERSON, state, "it is already level 2")
    return replace(state, level=2)  # an approved or activated level-1 account upgraded in person


def _activate(state: AccountState) -> AccountState:
    if state.status is not Status.APPROVED:
        why = {
            Status.APPLIED: "the application is not approved yet",
            Status.ACTIVATED: "it is already activated; log in with the passcode",
            Status.LOCKED: "it is locked; an officer must unlock it first",
        }[state.status]
        raise _illegal(Action.ACTIVATE, state, why)
    return replace(state, status=Status.ACTIVATED)


def _lock(state: AccountState) -> AccountState:
    if state.status is Status.LOCKED:
        raise _illegal(Action.LOCK, state, "it is already locked")
    return AccountState(Status.LOCKED, state.level, locked_from=state.status)


def _unlock(state: AccountState) -> AccountState:
    if state.status is not Status.LOCKED or state.locked_from is None:
        raise _illegal(Action.UNLOCK, state, "only a locked account can be unlocked")
    return AccountState(state.locked_from, state.level)


_RULES = {
    Action.APPROVE: _approve,
    Action.VERIFY_IN_PERSON: _verify_in_person,
    Action.ACTIVATE: _activate,
    Action.LOCK: _lock,
    Action.UNLOCK: _unlock,
}


def transition(state: AccountState, action: Action) -> Transition:
    """The change `action` makes to an existing account in `state`; `IllegalTransitionError` if none."""
    if action is Action.APPLY:
        raise _illegal(action, state, "the citizen already has an account (one per personal ID)")
    return Transition(action, state.status, _RULES[action](state))
