"""The e-ID plan (`popsync.eid_plan`): the accounts' lifecycles reach exactly the figures asked for."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mocks.vneid.lifecycle import AccountState, Action, Status, apply_for, transition
from popsync.eid_plan import PERIOD, AccountPlan, EidTargets, plan_accounts, timeline

pytestmark = pytest.mark.unit

TARGETS = EidTargets(
    "008",
    applied={1: 900, 2: 1300},
    approved={1: 800, 2: 1100},
    activated={1: 500, 2: 900},
    upgraded=250,
    locked=60,
)


def final_state(plan: AccountPlan) -> tuple[AccountState, bool, bool]:
    """The state after its steps (by the VNeID's own rules); whether it was approved, activated."""
    action, level = plan.steps[0]
    assert action is Action.APPLY
    state = apply_for(1 if level == 1 else 2).to
    approved = activated = False
    for action, _ in plan.steps[1:]:
        state = transition(state, action).to  # raises if the plan is illegal
        approved |= state.status is Status.APPROVED
        activated |= state.status is Status.ACTIVATED
    return state, approved, activated


def figures(plans: list[AccountPlan]) -> dict[str, Counter[int]]:
    out: dict[str, Counter[int]] = {k: Counter() for k in ("applied", "approved", "activated", "locked")}
    for plan in plans:
        state, approved, activated = final_state(plan)
        out["applied"][state.level] += 1
        out["approved"][state.level] += approved
        out["activated"][state.level] += activated
        out["locked"][state.level] += state.status is Status.LOCKED
    return out


def test_the_plan_reaches_the_figures_exactly() -> None:
    plans = plan_accounts(TARGETS, 5000, seed=3)
    got = figures(plans)
    assert got["applied"] == Counter(TARGETS.applied)
    assert got["approved"] == Counter(TARGETS.approved)
    assert got["activated"] == Counter(TARGETS.activated)
    assert sum(got["locked"].values()) == 60
    upgraded = [p for p in plans if p.steps[0] == (Action.APPLY, 1) and final_state(p)[0].level == 2]
    assert len(upgraded) == 250
    assert len({p.citizen for p in plans}) == 2200, "one account per citizen"
    assert all(0 <= p.citizen < 5000 for p in plans)


def test_the_seeds_figures_by_level() -> None:
    targets = EidTargets(
        "008", {1: 3007, 2: 3195}, {1: 3007, 2: 2919}, {1: 1962, 2: 2711}, upgraded=100, locked=0
    )
    got = figures(plan_accounts(targets, 7000, seed=7))
    assert (got["approved"][1], got["approved"][2], got["activated"][1], got["activated"][2]) == (
        3007,
        2919,
        1962,
        2711,
    )


def test_same_seed_same_plan() -> None:
    def shape(plans: list[AccountPlan]) -> list[tuple[int, tuple[object, ...], list[int]]]:
        return [(p.citizen, p.steps, p.times) for p in plans]

    assert shape(plan_accounts(TARGETS, 5000, seed=1)) == shape(plan_accounts(TARGETS, 5000, seed=1))
    assert shape(plan_accounts(TARGETS, 5000, seed=1)) != shape(plan_accounts(TARGETS, 5000, seed=2))


def test_times_increase_within_the_period_and_the_timeline_keeps_each_account_in_order() -> None:
    plans = plan_accounts(TARGETS, 5000, seed=5)
    span = PERIOD.total_seconds()
    for p in plans:
        assert len(p.times) == len(p.steps)
        assert all(0 <= a < b < span for a, b in zip(p.times, p.times[1:], strict=False))
    events = list(timeline(plans))
    assert len(events) == sum(len(p.steps) for p in plans)
    assert [e.at_s for e in events] == sorted(e.at_s for e in events)
    seen: dict[int, int] = {}
    for e in events:
        assert e.step == seen.get(e.account, 0), "an account's steps come in their order"
        assert e.at_s == plans[e.account].times[e.step]
        seen[e.account] = e.step + 1


def test_too_few_eligible_citizens_is_named() -> None:
    with pytest.raises(ValueError, match=r"2,200 applications .* has 2,000 \(short by 200\)"):
        plan_accounts(TARGETS, 2000, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"activated": {1: 801, 2: 0}}, "activated level 1 (801) exceeds approved level 1 (800)"),
        ({"approved": {1: 901, 2: 0}, "activated": {1: 0, 2: 0}}, "approved level 1 (901) exceeds applied"),
        ({"upgraded": 1101}, "upgraded (1,101) exceeds approved level 2 (1,100)"),
        ({"locked": 1401}, "locked (1,401) exceeds activated (1,400)"),
    ],
)
def test_unreachable_targets_are_refused(kwargs: dict[str, object], says: str) -> None:
    fields = {
        "province": "008",
        "applied": TARGETS.applied,
        "approved": TARGETS.approved,
        "activated": TARGETS.activated,
        "upgraded": 0,
        "locked": 0,
    } | kwargs
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        EidTargets(**fields)  # type: ignore[arg-type]


def test_kinds_are_shuffled() -> None:
    kinds = TARGETS.kinds(random.Random(1))
    assert kinds[:100] != sorted(kinds[:100])
