"""The civil-status agent: registrations go to the NPD (through the NDXP), which decides and applies them.

Unlike a sector record, a civil-status record changes the NPD, so the NPD decides it inside the same
transaction that applies it (`schemas.civil`, `POST /v1/civil-status/registrations`), idempotently by
(province, registration number): a batch re-processed after a crash gets the stored answers back and
changes nothing twice. Every other output (result, correction, correction task, metrics) is the sector
agents' (`streams.reconcile.Reconciler`). A registered birth or death also starts its linked-procedure
chain: a message on `<prefix>.civil.events` for the residence service and the chain's first step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.outcomes import Outcome
from schemas.records import Record, Rejected, parse_date
from schemas.rules import Decision
from streams.chain_steps import chain_id, step
from streams.reconcile import Item, Outgoing, Reconciler, Verdict

__all__ = ["CivilReconciler"]


class CivilReconciler(Reconciler):
    """Decides civil-status records through the NPD's registration endpoint, one call per chunk."""

    # A registration changes the NPD: the next chunk is sent only once this one is answered, in order.
    prefetch = False

    async def lookup(self, parsed: Sequence[Record | Rejected | None], request_id: str) -> Any:
        """Register the chunk's records at the NDXP; its answers, one per record, in order."""
        records = [p for p in parsed if isinstance(p, Record)]
        return await self.client.register_civil([r.raw for r in records], request_id)

    def verdicts(
        self,
        items: Sequence[Item],
        parsed: Sequence[Record | Rejected | None],
        looked_up: Any,
    ) -> list[Verdict | Rejected | None]:
        answers = iter(looked_up)
        verdicts: list[Verdict | Rejected | None] = []
        for record in parsed:
            if not isinstance(record, Record):
                verdicts.append(None)
                continue
            answer = next(answers)
            if answer.outcome == Outcome.REJECTED.value:
                # The NDXP read the record differently from the worker: a version skew, not a record
                # to count; the dead-letter topic gets it with the NDXP's reason.
                reason = f"the NDXP rejected it: {answer.detail or 'no reason given'}"
                verdicts.append(Rejected(reason, record.record_id, record.sector, record.province))
                continue
            decision = Decision(
                Outcome(answer.outcome),
                tuple(answer.fields),
                passed_identity=answer.personal_id is not None,
                corrections=dict(answer.corrections),
            )
            extra: dict[str, Any] = {"event": record.event or ""}
            if isinstance(record.personal_id, str) and len(record.personal_id) == 9:
                extra["legacy_id"] = True
            verdicts.append(Verdict(decision, None, extra, answer.personal_id))
        return verdicts

    def after(self, record: Record, verdict: Verdict, item: Item, decided_ms: int) -> list[Outgoing]:
        """A synced birth or death starts its chain: the residence service's event and the first step."""
        decision = verdict.decision
        registration = record.raw.get("registration_no")
        pid = verdict.personal_id
        if not decision.outcome.synced or record.event not in ("birth", "death") or not pid:
            return []
        if not isinstance(registration, str):  # pragma: no cover - a synced registration has one
            return []
        chain = chain_id(record.province, registration)
        event = {
            "chain_id": chain,
            "kind": record.event,
            "province": record.province,
            "record_id": record.record_id,
            "personal_id": pid,
            "full_name": record.raw.get("full_name"),
            "date_of_birth": record.date_of_birth.isoformat() if record.date_of_birth else None,
            "gender": record.gender,
            "event_date": _iso(record.raw.get("event_date")),
            "registered_ms": decided_ms,
        }
        first = step(chain, record.event, record.province, "registered", decided_ms)
        key = chain.encode()
        return [
            self.message(self.topics.civil_events, key, event),
            self.message(self.topics.chain_steps, key, first),
        ]


def _iso(value: object) -> str | None:
    day = parse_date(value)
    return day.isoformat() if day is not None else None
