"""Linked-procedure chain steps (`streams.chain_steps`): a chain's state is a pure fold of its step facts."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pytest

from schemas.outcomes import Outcome
from schemas.records import Record, parse_object
from streams.chain_steps import (
    CARD_AGE_LIMIT,
    FINAL_STEPS,
    apply_step,
    card_reconciled_step,
    chain_id,
    duration_ms,
    step,
    under_age,
)

pytestmark = pytest.mark.unit

BIRTH = chain_id("008", "KS-008-1")
DEATH = chain_id("008", "KT-008-1")


def birth(name: str, at: int, *, ok: bool = True, detail: str | None = None) -> dict[str, Any]:
    return step(BIRTH, "birth", "008", name, at, ok=ok, detail=detail)


def death(name: str, at: int, *, ok: bool = True, detail: str | None = None) -> dict[str, Any]:
    return step(DEATH, "death", "008", name, at, ok=ok, detail=detail)


def fold(steps: Iterable[Mapping[str, Any]], state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    current = dict(state) if state is not None else None
    for body in steps:
        current = apply_step(current, body)
    assert current is not None, "no steps"
    return current


# A child under 6: residence, card issued, card reconciled. Replays arrive later than the originals.
BIRTH_CHAIN = [
    birth("registered", 1_000),
    birth("residence_registered", 1_200),
    birth("card_issued", 1_300),
    birth("card_reconciled", 1_500),
]
BIRTH_REPLAYS = [birth("registered", 1_900), birth("card_reconciled", 2_400)]
DEATH_CHAIN = [death("registered", 5_000), death("residence_ended", 5_100), death("allowance_granted", 5_400)]
DEATH_REPLAYS = [
    death("registered", 6_000),
    death("residence_ended", 6_100),
    death("allowance_granted", 7_000),
]


# --- chain_id and step ------------------------------------------------------------------------------------


def test_chain_id_is_province_and_trimmed_registration_number() -> None:
    assert chain_id("008", "KS-008-1") == "008|KS-008-1"
    assert chain_id("008", "  KS-008-1 \t") == "008|KS-008-1"
    assert chain_id("008", "KS 008 1") == "008|KS 008 1", "inner spaces are part of the number"


def test_chain_id_replayed_with_padding_is_the_same_chain() -> None:
    assert chain_id("052", " KT-1") == chain_id("052", "KT-1 ")


def test_step_body_has_every_key_and_no_detail_when_ok() -> None:
    assert step("008|KS-1", "birth", "008", "registered", 12) == {
        "chain_id": "008|KS-1",
        "kind": "birth",
        "province": "008",
        "step": "registered",
        "ok": True,
        "at_ms": 12,
    }


def test_step_carries_a_failure_detail() -> None:
    body = step("008|KS-1", "birth", "008", "residence_registered", 12, ok=False, detail="refused")
    assert body["ok"] is False and body["detail"] == "refused"


@pytest.mark.parametrize("detail", [None, ""])
def test_step_without_a_detail_leaves_the_key_out(detail: str | None) -> None:
    assert "detail" not in step("c", "death", "008", "residence_ended", 1, ok=False, detail=detail)


def test_final_steps_are_the_three_chain_ends() -> None:
    assert frozenset({"card_reconciled", "no_card_needed", "allowance_granted"}) == FINAL_STEPS


# --- apply_step: one step at a time ----------------------------------------------------------------------


def test_first_step_starts_an_in_progress_chain() -> None:
    state = apply_step(None, birth("registered", 1_000))
    assert state == {
        "kind": "birth",
        "province": "008",
        "steps": ["registered"],
        "status": "in_progress",
        "started_ms": 1_000,
    }


def test_an_empty_state_counts_as_no_state() -> None:
    assert apply_step({}, birth("registered", 1_000)) == apply_step(None, birth("registered", 1_000))


def test_registered_sets_started_and_the_earliest_wins_on_replay() -> None:
    late_first = fold([birth("registered", 2_000), birth("registered", 1_000)])
    early_first = fold([birth("registered", 1_000), birth("registered", 2_000)])
    assert late_first["started_ms"] == early_first["started_ms"] == 1_000
    assert late_first == early_first


def test_a_step_other_than_registered_sets_no_start() -> None:
    state = apply_step(None, birth("residence_registered", 1_000))
    assert "started_ms" not in state and "ended_ms" not in state
    assert state["status"] == "in_progress"


@pytest.mark.parametrize("name", ["residence_registered", "card_issued", "residence_ended", "registered"])
def test_an_ok_intermediate_step_keeps_the_chain_in_progress(name: str) -> None:
    state = fold([birth("registered", 1), birth(name, 2)])
    assert state["status"] == "in_progress"
    assert "ended_ms" not in state and "detail" not in state


@pytest.mark.parametrize("name", sorted(FINAL_STEPS))
def test_a_final_ok_step_completes_the_chain(name: str) -> None:
    state = fold([birth("registered", 100), birth(name, 350)])
    assert state["status"] == "completed"
    assert state["ended_ms"] == 350
    assert "detail" not in state


@pytest.mark.parametrize(
    "name", ["registered", "residence_registered", "residence_ended", "card_issued", *sorted(FINAL_STEPS)]
)
def test_any_failing_step_stalls_the_chain_with_its_detail(name: str) -> None:
    state = fold([birth("registered", 100), birth(name, 400, ok=False, detail="the NPD refused")])
    assert state["status"] == "stalled"
    assert state["detail"] == "the NPD refused"
    assert state["ended_ms"] == 400


def test_a_failing_step_without_detail_records_none() -> None:
    state = fold([death("registered", 1), death("residence_ended", 2, ok=False)])
    assert state["status"] == "stalled" and state["detail"] is None


def test_a_step_without_ok_counts_as_ok() -> None:
    body = birth("card_reconciled", 9)
    del body["ok"]
    assert apply_step(None, body)["status"] == "completed"


@pytest.mark.parametrize(
    "after",
    [
        birth("card_reconciled", 900),
        birth("no_card_needed", 900),
        birth("card_issued", 900),
        birth("residence_registered", 900),
        birth("registered", 900),
        birth("card_reconciled", 50),  # even one that happened before the failure
    ],
)
def test_stalled_is_sticky_whatever_comes_after(after: dict[str, Any]) -> None:
    stalled = fold([birth("registered", 100), birth("residence_registered", 200, ok=False, detail="refused")])
    state = apply_step(stalled, after)
    assert state["status"] == "stalled"
    assert state["detail"] == "refused"


def test_a_failure_after_completion_stalls_the_chain() -> None:
    completed = fold(BIRTH_CHAIN)
    state = apply_step(completed, birth("card_reconciled", 1_600, ok=False, detail="unsynced"))
    assert state["status"] == "stalled" and state["detail"] == "unsynced"
    assert state["ended_ms"] == 1_500, "the earliest terminal step ends the chain"


def test_ended_is_the_earliest_terminal_step() -> None:
    state = fold(
        [birth("card_reconciled", 800), birth("card_reconciled", 500), birth("card_reconciled", 700)]
    )
    assert state["ended_ms"] == 500


def test_steps_are_a_sorted_set_of_names() -> None:
    state = fold([birth("registered", 1), birth("card_issued", 3), birth("registered", 2)])
    assert state["steps"] == ["card_issued", "registered"]


def test_kind_and_province_come_from_the_steps() -> None:
    state = apply_step(None, step("052|KT-9", "death", "052", "residence_ended", 4))
    assert (state["kind"], state["province"]) == ("death", "052")


def test_apply_step_leaves_the_previous_state_untouched() -> None:
    before = fold([birth("registered", 1_000)])
    snapshot = {**before, "steps": list(before["steps"])}
    apply_step(before, birth("card_reconciled", 2_000))
    assert before == snapshot


def test_extra_keys_of_the_state_are_kept() -> None:
    # The tracker stores the partition with the state.
    state = apply_step({**fold([birth("registered", 1)]), "partition": 3}, birth("card_issued", 2))
    assert state["partition"] == 3


# --- apply_step: order and number do not matter -------------------------------------------------------------


def all_orders(steps: list[dict[str, Any]]) -> set[str]:
    return {repr(sorted(fold(order).items())) for order in itertools.permutations(steps)}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            BIRTH_CHAIN + BIRTH_REPLAYS,
            {
                "kind": "birth",
                "province": "008",
                "steps": ["card_issued", "card_reconciled", "registered", "residence_registered"],
                "status": "completed",
                "started_ms": 1_000,
                "ended_ms": 1_500,
            },
        ),
        (
            DEATH_CHAIN + DEATH_REPLAYS,
            {
                "kind": "death",
                "province": "008",
                "steps": ["allowance_granted", "registered", "residence_ended"],
                "status": "completed",
                "started_ms": 5_000,
                "ended_ms": 5_400,
            },
        ),
    ],
    ids=["birth", "death"],
)
def test_every_order_with_duplicates_gives_one_state(
    steps: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    states = {repr(sorted(fold(order).items())) for order in itertools.permutations(steps)}
    assert states == {repr(sorted(expected.items()))}
    assert duration_ms(expected) == expected["ended_ms"] - expected["started_ms"]


def test_every_order_of_a_chain_without_a_card_gives_one_state() -> None:
    steps = [
        birth("registered", 10),
        birth("residence_registered", 20),
        birth("no_card_needed", 30),
        birth("no_card_needed", 45),
        birth("registered", 40),
    ]
    assert len(all_orders(steps)) == 1
    assert fold(steps)["status"] == "completed"
    assert duration_ms(fold(steps)) == 20


@pytest.mark.parametrize(
    "failing",
    [
        death("residence_ended", 5_100, ok=False, detail="the NPD refused the change"),
        death("allowance_granted", 5_400, ok=False, detail="the NPD does not record the death"),
    ],
)
def test_every_order_of_a_stalled_death_chain_gives_one_state(failing: dict[str, Any]) -> None:
    steps = [
        death("registered", 5_000),
        death("residence_ended", 5_100),
        failing,
        {**failing, "at_ms": 9_000},
        death("registered", 8_000),
    ]
    states = all_orders(steps)
    assert len(states) == 1
    state = fold(steps)
    assert state["status"] == "stalled"
    assert state["detail"] == failing["detail"]
    assert state["started_ms"] == 5_000
    assert state["ended_ms"] == failing["at_ms"]


def test_every_order_of_a_card_that_came_out_unsynced_gives_one_state() -> None:
    failing = card_reconciled_step(BIRTH, card_record("008"), Outcome.MISMATCH, 1_500)
    steps = [*BIRTH_CHAIN[:3], failing, {**failing, "at_ms": 2_000}, birth("registered", 1_800)]
    assert len(all_orders(steps)) == 1
    state = fold(steps)
    assert (state["status"], state["detail"]) == ("stalled", "the card record came out unsynced/mismatch")
    assert (state["started_ms"], state["ended_ms"]) == (1_000, 1_500)


# --- duration_ms ----------------------------------------------------------------------------------------


def test_duration_of_a_completed_chain() -> None:
    assert duration_ms(fold(BIRTH_CHAIN)) == 500


def test_duration_of_a_stalled_chain() -> None:
    assert duration_ms(fold([death("registered", 10), death("residence_ended", 70, ok=False)])) == 60


def test_no_duration_while_in_progress() -> None:
    assert duration_ms(fold(BIRTH_CHAIN[:3])) is None


def test_no_duration_without_the_registration() -> None:
    state = fold(BIRTH_CHAIN[1:])
    assert state["status"] == "completed"
    assert duration_ms(state) is None


def test_no_duration_without_an_end() -> None:
    assert duration_ms({"status": "completed", "started_ms": 1}) is None
    assert duration_ms({}) is None


def test_duration_is_never_negative() -> None:
    # A final step stamped before the registration (clocks of two services) counts as 0, not negative.
    state = fold([birth("card_reconciled", 100), birth("registered", 300)])
    assert duration_ms(state) == 0


# --- under_age -------------------------------------------------------------------------------------------


def test_card_age_limit_is_six() -> None:
    assert CARD_AGE_LIMIT == 6


@pytest.mark.parametrize(
    ("born", "on", "under"),
    [
        (date(2023, 11, 30), date(2023, 12, 1), True),  # a newborn
        (date(2023, 12, 1), date(2023, 12, 1), True),  # registered on the day of birth
        (date(2017, 5, 10), date(2023, 5, 9), True),  # the day before the 6th birthday
        (date(2017, 5, 10), date(2023, 5, 10), False),  # exactly 6 years
        (date(2017, 5, 10), date(2023, 5, 11), False),
        (date(2017, 12, 31), date(2023, 12, 30), True),
        (date(2017, 12, 31), date(2023, 12, 31), False),
        (date(2018, 1, 1), date(2023, 12, 31), True),  # 5 the whole calendar year of the 6th birthday
        (date(2017, 6, 10), date(2023, 5, 31), True),  # a later month in the birthday's year
        (date(2017, 4, 30), date(2023, 5, 1), False),
        (date(1990, 1, 1), date(2023, 12, 31), False),  # a late registration of an adult
    ],
)
def test_under_age_counts_birthdays(born: date, on: date, under: bool) -> None:
    assert under_age(born, on) is under


@pytest.mark.parametrize(
    ("on", "under"),
    [
        (date(2022, 2, 28), True),  # no 29 February in 2022: the birthday is not yet reached on the 28th
        (date(2022, 3, 1), False),  # … and is past on 1 March
        (date(2021, 12, 31), True),
    ],
)
def test_born_on_29_february_turns_6_on_1_march_of_a_common_year(on: date, under: bool) -> None:
    assert under_age(date(2016, 2, 29), on) is under


def test_born_on_29_february_turns_6_on_1_march_also_when_6_years_on_is_common() -> None:
    assert under_age(date(2020, 2, 29), date(2026, 2, 28)) is True
    assert under_age(date(2020, 2, 29), date(2026, 3, 1)) is False


def test_born_on_29_february_and_a_leap_birthday() -> None:
    assert under_age(date(2020, 2, 29), date(2024, 2, 28), years=4) is True
    assert under_age(date(2020, 2, 29), date(2024, 2, 29), years=4) is False


def test_birthdays_next_to_29_february_of_a_leap_year() -> None:
    assert under_age(date(2018, 2, 28), date(2024, 2, 27)) is True
    assert under_age(date(2018, 2, 28), date(2024, 2, 28)) is False
    assert under_age(date(2018, 3, 1), date(2024, 2, 29)) is True
    assert under_age(date(2018, 3, 1), date(2024, 3, 1)) is False


def test_under_age_with_another_limit() -> None:
    assert under_age(date(2010, 6, 1), date(2024, 5, 31), years=14) is True
    assert under_age(date(2010, 6, 1), date(2024, 6, 1), years=14) is False


# --- card_reconciled_step ----------------------------------------------------------------------------------


def card_record(province: str = "052") -> Record:
    record = parse_object(
        {
            "record_id": f"BHYT-TE-{province}-KS-1",
            "sector": "insurance",
            "province": province,
            "personal_id": f"{province}223000123",
            "full_name": "Lê Minh An",
            "date_of_birth": "2023-11-02",
            "gender": "female",
            "insurance_code": "5212345678",
        }
    )
    assert isinstance(record, Record)
    return record


@pytest.mark.parametrize("outcome", list(Outcome))
def test_card_reconciled_is_ok_only_for_a_synced_card(outcome: Outcome) -> None:
    body = card_reconciled_step(BIRTH, card_record(), outcome, 77)
    synced = outcome in (Outcome.CLEANED, Outcome.CORRECTED)
    assert body["chain_id"] == BIRTH
    assert (body["kind"], body["step"], body["at_ms"]) == ("birth", "card_reconciled", 77)
    assert body["province"] == "052", "the province is the card record's"
    assert body["ok"] is synced
    if synced:
        assert "detail" not in body
        assert apply_step(None, body)["status"] == "completed"
    else:
        assert body["detail"] == f"the card record came out {outcome.value}"
        assert apply_step(None, body)["status"] == "stalled"
