"""Linked-procedure chains: their step messages and the state a chain's steps add up to. Pure.

Two chains (DOMAIN.md, the seeds' "DVC liên thông"), each step a separate service reacting to the event of
the step before it, over Kafka (`streams/chains.py`):

    birth: registered → residence_registered → card_issued → card_reconciled   (child under 6)
                                             → no_card_needed                   (6 or older)
    death: registered → residence_ended → allowance_granted

Every service reports its step on `<prefix>.chains.steps`, keyed by the chain ID (`province|registration
number`). A chain is `completed` once its final step succeeded, `stalled` once a step failed for good
(the NPD refused a residence change, the child's card record came out unsynced, the NPD does not show the
death), and `in_progress` until then. Steps are facts: delivered twice, or out of order, they add up to
the same state, so a worker killed mid-chain changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from schemas.outcomes import Outcome
from schemas.records import Record

__all__ = [
    "CARD_AGE_LIMIT",
    "FINAL_STEPS",
    "apply_step",
    "card_reconciled_step",
    "chain_id",
    "step",
    "under_age",
]

CARD_AGE_LIMIT = 6  # a health-insurance card is issued with the birth for a child under 6
FINAL_STEPS = frozenset({"card_reconciled", "no_card_needed", "allowance_granted"})


def chain_id(province: str, registration_no: str) -> str:
    """A chain's identity: the registration that started it (unique per province, stable on replay)."""
    return f"{province}|{registration_no.strip()}"


def step(
    chain: str,
    kind: str,
    province: str,
    name: str,
    at_ms: int,
    *,
    ok: bool = True,
    detail: str | None = None,
) -> dict[str, Any]:
    """One step message. `ok=False` stalls the chain; a final step that is ok completes it."""
    body: dict[str, Any] = {
        "chain_id": chain,
        "kind": kind,
        "province": province,
        "step": name,
        "ok": ok,
        "at_ms": at_ms,
    }
    if detail:
        body["detail"] = detail
    return body


def card_reconciled_step(chain: str, record: Record, outcome: Outcome, at_ms: int) -> dict[str, Any]:
    """The last step of a birth chain: the child's card record was reconciled like any insurance record."""
    ok = outcome.synced
    detail = None if ok else f"the card record came out {outcome.value}"
    return step(chain, "birth", record.province, "card_reconciled", at_ms, ok=ok, detail=detail)


def under_age(born: date, on: date, years: int = CARD_AGE_LIMIT) -> bool:
    """Whether someone born on `born` is under `years` years old on `on`."""
    had_birthday = (on.month, on.day) >= (born.month, born.day)
    return on.year - born.year - (0 if had_birthday else 1) < years


def apply_step(state: Mapping[str, Any] | None, body: Mapping[str, Any]) -> dict[str, Any]:
    """The chain's state after one more step; the same steps in any order and number give one state.

    State: kind, province, `steps` (sorted names), `status`, `started_ms` (the registration step's
    time), `ended_ms` (the final or failing step's time), `detail` of a failure.
    """
    new: dict[str, Any] = dict(state) if state else {"steps": [], "status": "in_progress"}
    new["kind"], new["province"] = body["kind"], body["province"]
    name, at = str(body["step"]), int(body["at_ms"])
    new["steps"] = sorted({*new["steps"], name})
    if name == "registered":
        # A replayed registration reports a later time: the chain started at the earliest.
        new["started_ms"] = min(at, new.get("started_ms", at))
    terminal = not body.get("ok", True) or name in FINAL_STEPS
    if terminal:
        status = "completed" if body.get("ok", True) else "stalled"
        # A failure is final: a chain that stalled stays stalled even if a later step succeeded.
        if new["status"] != "stalled":
            new["status"] = status
            if not body.get("ok", True):
                new["detail"] = body.get("detail")
        new["ended_ms"] = min(at, new.get("ended_ms", at))
    return new


def duration_ms(state: Mapping[str, Any]) -> int | None:
    """How long a finished chain took, registration to its final step (None if not both known)."""
    if state.get("status") == "in_progress" or "started_ms" not in state or "ended_ms" not in state:
        return None
    return max(0, int(state["ended_ms"]) - int(state["started_ms"]))
