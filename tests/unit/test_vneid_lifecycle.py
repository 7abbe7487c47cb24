"""Unit tests of the e-ID account lifecycle: every (status, level, action), legal or not."""

from __future__ import annotations

import pytest

from mocks.vneid.exceptions import IllegalTransitionError
from mocks.vneid.lifecycle import AccountState, Action, Level, Status, apply_for, transition

pytestmark = pytest.mark.unit

A, P, V, L = Status.APPLIED, Status.APPROVED, Status.ACTIVATED, Status.LOCKED

# (status, level) → action → (status, level) after, or None when illegal. Locked accounts below.
LEGAL: dict[tuple[Status, Level], dict[Action, tuple[Status, Level] | None]] = {
    (A, 1): {Action.APPROVE: (P, 1), Action.VERIFY_IN_PERSON: (P, 2), Action.ACTIVATE: None},
    (A, 2): {Action.APPROVE: None, Action.VERIFY_IN_PERSON: (P, 2), Action.ACTIVATE: None},
    (P, 1): {Action.APPROVE: None, Action.VERIFY_IN_PERSON: (P, 2), Action.ACTIVATE: (V, 1)},
    (P, 2): {Action.APPROVE: None, Action.VERIFY_IN_PERSON: None, Action.ACTIVATE: (V, 2)},
    (V, 1): {Action.APPROVE: None, Action.VERIFY_IN_PERSON: (V, 2), Action.ACTIVATE: None},
    (V, 2): {Action.APPROVE: None, Action.VERIFY_IN_PERSON: None, Action.ACTIVATE: None},
}
CASES = [
    (status, level, action, after) for (status, level), row in LEGAL.items() for action, after in row.items()
]


def test_an_application_starts_applied_at_the_level_asked_for() -> None:
    tr = apply_for(2)
    assert (tr.action, tr.from_status, tr.to) == (Action.APPLY, None, AccountState(A, 2))


@pytest.mark.parametrize(("status", "level", "action", "after"), CASES)
def test_transitions_of_unlocked_accounts(
    status: Status, level: Level, action: Action, after: tuple[Status, Level] | None
) -> None:
    state = AccountState(status, level)
    if after is None:
        with pytest.raises(IllegalTransitionError) as info:
            transition(state, action)
        message = str(info.value)
        assert status.value in message and f"level {level}" in message
        assert action.value.replace("_", " ") in message
    else:
        tr = transition(state, action)
        assert (tr.from_status, tr.to_status, tr.to.level) == (status, *after)
        assert tr.to.locked_from is None


def test_a_level_2_application_is_not_approved_automatically_and_says_what_to_do() -> None:
    with pytest.raises(IllegalTransitionError, match=r"in-person verification.*verify-in-person"):
        transition(AccountState(A, 2), Action.APPROVE)


@pytest.mark.parametrize(("status", "level"), list(LEGAL))
def test_any_unlocked_account_locks_and_unlocks_back_to_where_it_was(status: Status, level: Level) -> None:
    state = AccountState(status, level)
    locked = transition(state, Action.LOCK)
    assert (locked.from_status, locked.to) == (status, AccountState(L, level, locked_from=status))
    unlocked = transition(locked.to, Action.UNLOCK)
    assert (unlocked.from_status, unlocked.to) == (L, state)
    with pytest.raises(IllegalTransitionError, match="only a locked account can be unlocked"):
        transition(state, Action.UNLOCK)


@pytest.mark.parametrize("action", [Action.APPROVE, Action.VERIFY_IN_PERSON, Action.ACTIVATE, Action.LOCK])
@pytest.mark.parametrize("locked_from", [A, P, V])
def test_a_locked_account_allows_nothing_but_unlock(action: Action, locked_from: Status) -> None:
    with pytest.raises(IllegalTransitionError, match="that is locked"):
        transition(AccountState(L, 1, locked_from=locked_from), action)


@pytest.mark.parametrize(("status", "level"), list(LEGAL))
def test_applying_again_is_illegal_for_every_account(status: Status, level: Level) -> None:
    with pytest.raises(IllegalTransitionError, match="already has an account"):
        transition(AccountState(status, level), Action.APPLY)
