"""The reconcile agents: sector records in, one outcome per record out, duplicates tracked in a table."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from schemas.citizen import Citizen
from schemas.outcomes import Outcome
from schemas.records import Record, Rejected, parse_line
from schemas.rules import Decision, decide, lookup_key
from streams.chain_steps import card_reconciled_step
from streams.exceptions import ConfigurationError
from streams.messages import (
    HEADER_CHAIN,
    HEADER_PUBLISHED_MS,
    HEADER_REQUEST_ID,
    HEADER_SEQ,
    HEADER_VERSION,
    dead_letter_body,
    decode_headers,
    dumps,
    int_header,
    now_ms,
    result_key,
)
from streams.metrics import BatchTally, WorkerMetrics
from streams.ndxp_client import NdxpClient
from streams.stats import WorkerStats
from streams.tasks import correction_task, task_lookup_key
from streams.topics import TopicNames

__all__ = ["Reconciler", "Verdict"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A record's decision, the citizen its correction task may quote, and extra result fields."""

    decision: Decision
    citizen: Citizen | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The 12-digit ID the NPD issued or resolved (civil status): for the chain services, not the result.
    personal_id: str | None = None


class Reconciler:
    """Decides a batch of records: one NDXP call, the pure rules, then results and table writes.

    Delivery underneath is at-least-once. What makes re-processing harmless:
    - the outcome rules are a pure function of (record, citizen, first holder);
    - the duplicate table stores the *record_id* of the first record of a source that got past step 6
      for a personal ID, so re-deciding that record finds itself and is not a duplicate;
    - results are keyed by (sector, province, record_id): a replayed result is the same fact again.
    """

    def __init__(
        self,
        app: faust.App,
        topics: TopicNames,
        client: NdxpClient,
        holders: Any,
        stats: WorkerStats,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.app = app
        self.topics = topics
        self.client = client
        self.holders = holders  # faust Table: "sector|province|personal_id" -> record_id of the first holder
        self.stats = stats
        self.metrics = metrics

    async def process_safely(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        """`process`, with no record able to stop the agent: no input may stop a run (CONTRACT.md).

        A batch that raises is decided again record by record (re-deciding is harmless, see the class
        docstring); a record that still raises goes to the dead-letter topic with the exception's type.
        The log names the type only: an exception's text may quote a citizen's data.
        """
        try:
            await self.process(events)
            return
        except (ConfigurationError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.error(
                "a batch of %d raised %s; deciding its records one by one", len(events), type(exc).__name__
            )
        for event in events:
            try:
                await self.process([event])
            except (ConfigurationError, asyncio.CancelledError):
                raise
            except Exception as exc:
                message = event.message
                headers = decode_headers(message.headers)
                rejected = Rejected(f"the worker could not decide this message ({type(exc).__name__})")
                self.stats.observe(Outcome.REJECTED.value, None)
                await (await self._dead_letter(rejected, message, headers))

    async def process(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        started = time.perf_counter()
        parsed = [parse_line(ev.value or b"") for ev in events]
        request_id = decode_headers(events[0].message.headers).get(HEADER_REQUEST_ID) or uuid.uuid4().hex
        decided = await self.decide_batch(events, parsed, request_id)
        looked_up = time.perf_counter()
        pending: list[Awaitable[Any]] = []
        decided_ms = now_ms()
        tally = BatchTally()  # metrics are applied once per batch, after the acks
        for event, record, verdict in zip(events, parsed, decided, strict=True):
            message = event.message
            headers = decode_headers(message.headers)
            if record is None:  # an empty value is not a record and carries nothing to reject
                continue
            if isinstance(record, Rejected) or not isinstance(verdict, Verdict):
                # Rule 1's reason, the deciding service's (a `Rejected` verdict), or none to give.
                rejected = (
                    record
                    if isinstance(record, Rejected)
                    else verdict
                    if isinstance(verdict, Rejected)
                    else Rejected("not a record")
                )
                self.stats.observe(Outcome.REJECTED.value, None)
                pending.append(await self._dead_letter(rejected, message, headers))
                tally.rejected += 1
                continue
            decision = verdict.decision
            published_ms = int_header(headers, HEADER_PUBLISHED_MS, int(message.timestamp * 1000))
            version = int_header(headers, HEADER_VERSION, 1)
            result = {
                "record_id": record.record_id,
                "sector": record.sector,
                "province": record.province,
                "outcome": decision.outcome.value,
                "fields": list(decision.fields),
                "seq": int_header(headers, HEADER_SEQ, -1),
                "published_ms": published_ms,
                "decided_ms": decided_ms,
                "version": version,
                **verdict.extra,
            }
            if chain := headers.get(HEADER_CHAIN):  # made by a linked procedure (a child's card)
                result["chain"] = chain
            if decision.corrections:
                result["corrected"] = sorted(decision.corrections)
            rkey = result_key(record.sector, record.province, record.record_id).encode()
            pending.append(await self.send(self.topics.results, rkey, result))
            if decision.outcome is Outcome.CORRECTED:
                correction = {**result, "corrections": dict(decision.corrections)}
                pending.append(await self.send(self.topics.corrections, rkey, correction))
            task = correction_task(record, decision, verdict.citizen, version=version, decided_ms=decided_ms)
            if task is not None:
                pending.append(await self.send(self.topics.tasks(record.sector), rkey, task))
            pending.extend(await self.after(record, verdict, headers, decided_ms))
            self.stats.observe(decision.outcome.value, decided_ms - published_ms)
            tally.add(
                record.sector, record.province, decision.outcome.value, (decided_ms - published_ms) / 1e3
            )
        # Wait for every result to be acknowledged before the batch's offsets can be committed.
        sent = time.perf_counter()
        await asyncio.gather(*pending)
        if self.metrics is not None:
            self.metrics.apply(tally)
        log.debug(
            "batch of %d: parse+NDXP %.1f ms, decide+send %.1f ms, acks %.1f ms",
            len(events),
            (looked_up - started) * 1e3,
            (sent - looked_up) * 1e3,
            (time.perf_counter() - sent) * 1e3,
        )

    async def send(self, topic: str, key: bytes, body: Mapping[str, Any]) -> Awaitable[Any]:
        """Queue one message; the returned future resolves when the broker has it."""
        return await self.app.producer.send(topic, key, dumps(body), None, None, None)

    async def decide_batch(
        self,
        events: Sequence[faust.types.EventT[Any]],
        parsed: Sequence[Record | Rejected | None],
        request_id: str,
    ) -> list[Verdict | Rejected | None]:
        """One verdict per parsed record (None for rejected/empty): one NDXP look-up, the pure rules.

        A subclass may answer a parsed record with a `Rejected` (its reason goes to the dead-letter topic).
        """
        records = [p for p in parsed if isinstance(p, Record)]
        # Records missing fields are looked up too when they carry an ID: their correction task
        # gives the province the NPD's values.
        ids = [lookup_key(p) or task_lookup_key(p) for p in records]
        citizens = await self.client.lookup_many([i for i in ids if i], request_id=request_id)
        store = self.holders.data
        verdicts: list[Verdict | Rejected | None] = []
        for event, record in zip(events, parsed, strict=True):
            if not isinstance(record, Record):
                verdicts.append(None)
                continue
            key = lookup_key(record)
            holder_key = f"{record.sector}|{record.province}|{key}" if key else None
            holder = store.get(holder_key) if holder_key else None
            citizen = citizens.get(key) if key else None
            decision = decide(record, citizen, holder)
            if decision.passed_identity and holder is None and holder_key:
                store[holder_key] = record.record_id
                self.holders.send_changelog(event.message.partition, holder_key, record.record_id)
            extra: dict[str, Any] = {}
            if key is not None and len(key) == 9:  # a legacy identity-card number
                extra["legacy_id"] = True
            task_citizen = citizen if citizen is not None else citizens.get(task_lookup_key(record) or "")
            verdicts.append(Verdict(decision, task_citizen, extra))
        return verdicts

    async def after(
        self, record: Record, verdict: Verdict, headers: Mapping[str, str], decided_ms: int
    ) -> list[Awaitable[Any]]:
        """Messages a decided record triggers beyond its result (a chain's card step); sent futures."""
        chain = headers.get(HEADER_CHAIN)
        if not chain:
            return []
        step = card_reconciled_step(chain, record, verdict.decision.outcome, decided_ms)
        return [await self.send(self.topics.chain_steps, chain.encode(), step)]

    async def _dead_letter(self, rejected: Rejected, message: Any, headers: dict[str, str]) -> Any:
        body = dead_letter_body(
            rejected.reason,
            f"{message.topic}:{message.partition}:{message.offset}",
            bytes(message.value or b""),
            rejected.record_id,
            rejected.sector,
            rejected.province,
        )
        log.warning("rejected a message at %s: %s", body["origin"], rejected.reason)
        key = str(body["origin"]).encode()
        return await self.app.producer.send(self.topics.deadletter, key, dumps(body), None, None, None)
