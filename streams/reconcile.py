"""The reconcile agents: sector records in, one outcome per record out, duplicates tracked in a table."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from schemas.citizen import Citizen
from schemas.fuzzy_rules import judge_names
from schemas.name_match import NameMatch
from schemas.outcomes import Outcome
from schemas.provinces import ProvinceMap
from schemas.records import Record, Rejected, parse_line
from schemas.rules import Decision, decide, lookup_key
from streams.chain_steps import card_reconciled_step
from streams.counting import digest_partition
from streams.exceptions import ConfigurationError
from streams.holders import FirstHolders
from streams.messages import (
    HEADER_CHAIN,
    HEADER_ENVELOPE,
    HEADER_PUBLISHED_MS,
    HEADER_REQUEST_ID,
    HEADER_SEQ,
    HEADER_SEQS,
    HEADER_VERSION,
    dead_letter_body,
    decode_headers,
    dumps,
    envelope_lines,
    int_header,
    now_ms,
    result_key,
)
from streams.metrics import BatchTally, WorkerMetrics
from streams.ndxp_client import NdxpClient
from streams.produce import Batches
from streams.stats import WorkerStats
from streams.tasks import correction_task, task_lookup_key
from streams.topics import TopicNames

__all__ = ["Item", "Outgoing", "Reconciler", "Verdict", "unpack"]

log = logging.getLogger(__name__)

# Records decided per NDXP call by default (its limit is 1,000 IDs; STREAMS_BATCH_SIZE sets it); the next
# chunk's look-up runs while this one's rules and results run, so neither the worker nor the NDXP waits.
CHUNK = 1000
# Chunks per slice: what is decided, then sent, at a time (see `process_safely`).
SLICE_CHUNKS = 4
# A message a batch sends once every record is decided: topic, key, value, partition (None: by key).
Outgoing = tuple[str, bytes | None, bytes, int | None]
# Results per outcome digest message (one digest per batch and digest partition, split beyond this).
DIGEST_RESULTS = 2000


@dataclass(frozen=True, slots=True)
class Verdict:
    """A record's decision, the citizen its correction task may quote, and extra result fields."""

    decision: Decision
    citizen: Citizen | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The 12-digit ID the NPD issued or resolved (civil status): for the chain services, not the result.
    personal_id: str | None = None
    # `matching: fuzzy`: the name's score; its explanation goes in the result, its reading in the task.
    name_match: NameMatch | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One record's message value and what its message says of it (an envelope's records share most)."""

    value: bytes
    partition: int
    origin: str  # topic:partition:offset, and #index within an envelope
    seq: int
    published_ms: int
    version: int = 1
    chain: str | None = None
    request_id: str | None = None


def unpack(events: Sequence[Any]) -> list[Item]:
    """The records of a batch of messages: an envelope's in its order, any other message as one record."""
    items: list[Item] = []
    for event in events:
        message = event.message
        headers = decode_headers(message.headers)
        published = int_header(headers, HEADER_PUBLISHED_MS, int(message.timestamp * 1000))
        origin = f"{message.topic}:{message.partition}:{message.offset}"
        value = bytes(event.value or b"")
        request_id = headers.get(HEADER_REQUEST_ID)
        count = int_header(headers, HEADER_ENVELOPE, 0)
        lines = envelope_lines(value, count) if count > 1 else [value]
        if count > 0 and len(lines) == count:
            seqs = _seqs(headers.get(HEADER_SEQS, ""), count)
            for index, line in enumerate(lines):
                items.append(
                    Item(
                        line,
                        message.partition,
                        f"{origin}#{index}",
                        seqs[index],
                        published,
                        1,
                        None,
                        request_id,
                    )
                )
            continue
        items.append(
            Item(
                value,
                message.partition,
                origin,
                int_header(headers, HEADER_SEQ, -1),
                published,
                int_header(headers, HEADER_VERSION, 1),
                headers.get(HEADER_CHAIN),
                request_id,
            )
        )
    return items


def _seqs(text: str, count: int) -> list[int]:
    parts = text.split(",")
    if len(parts) != count or not all(p.isascii() and p.isdigit() and len(p) < 19 for p in parts):
        return [-1] * count
    return [int(p) for p in parts]


class Reconciler:
    """Decides a batch of records: NDXP look-ups by chunk, the pure rules, then results and state writes.

    Delivery underneath is at-least-once. What makes re-processing harmless:
    - the outcome rules are a pure function of (record, citizen, first holder);
    - the first holders keep the *record_id* of the first record of a source that got past step 6 for a
      personal ID, so re-deciding that record finds itself and is not a duplicate;
    - results are keyed by (sector, province, record_id): a replayed result is the same fact again, and
      the counting agent keeps each record's latest outcome (a set) from the digests.
    Every message of a batch, state included, is sent before the batch's offsets can be committed.
    """

    # Whether the next chunk's NDXP call may start before this chunk is decided (a pure read may; a call
    # that changes the NPD must follow the one before it).
    prefetch = True

    def __init__(
        self,
        app: faust.App,
        topics: TopicNames,
        client: NdxpClient,
        holders: FirstHolders,
        stats: WorkerStats,
        metrics: WorkerMetrics | None = None,
        *,
        partitions: int = 6,
        chunk: int = CHUNK,
        matching: str = "exact",
        provinces: ProvinceMap = ProvinceMap.LEGACY,
    ) -> None:
        self.app = app
        self.topics = topics
        self.client = client
        self.holders = holders
        self.stats = stats
        self.metrics = metrics
        self.partitions = partitions  # of the digest topic
        self.rejected = 0  # messages this agent sent to the dead-letter topic
        self.chunk = chunk
        self.fuzzy = matching == "fuzzy"  # rules 10–12 judge names by schemas.fuzzy_rules
        self.provinces = provinces  # the map rule 9 compares residences by (STREAMS_AS_OF)

    async def process_safely(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        """`process`, with no record able to stop the agent: no input may stop a run (CONTRACT.md).

        The records are decided a slice at a time (`SLICE_CHUNKS` NDXP chunks): a take of many envelopes
        sends its first results within a slice's time, not the whole take's, and holds one slice in memory.
        A slice that raises is decided again record by record (re-deciding is harmless, see the class
        docstring); a record that still raises goes to the dead-letter topic with the exception's type.
        The log names the type only: an exception's text may quote a citizen's data.
        """
        items = unpack(events)
        size = self.chunk * SLICE_CHUNKS
        for start in range(0, len(items), size):
            await self._slice_safely(items[start : start + size])

    async def _slice_safely(self, items: Sequence[Item]) -> None:
        try:
            await self.process_items(items)
            return
        except (ConfigurationError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.error("%d records raised %s; deciding them one by one", len(items), type(exc).__name__)
        for item in items:
            try:
                await self.process_items([item])
            except (ConfigurationError, asyncio.CancelledError):
                raise
            except Exception as exc:
                rejected = Rejected(f"the worker could not decide this message ({type(exc).__name__})")
                topic, key, value, partition = self._dead_letter(rejected, item)
                await (await self.app.producer.send(topic, key, value, partition, None, None))

    async def process(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        await self.process_items(unpack(events))

    async def process_items(self, items: Sequence[Item]) -> None:
        """Decide `items` and send what they produce; nothing is sent unless every record was decided.

        All or nothing, so that `process_safely` can decide a failed batch again record by record without
        a record ending with both a result and a dead letter.
        """
        started = time.perf_counter()
        parsed = [parse_line(item.value) for item in items]
        request_id = items[0].request_id if items and items[0].request_id else uuid.uuid4().hex
        out: list[Outgoing] = []
        batches = Batches(self.app)  # the results, by the partition of their digest
        digests: dict[int, list[dict[str, Any]]] = {}
        tally = BatchTally()  # metrics are applied once per batch, after the acks
        size = self.chunk
        starts = list(range(0, len(items), size))
        lookups: list[asyncio.Future[Any] | None] = [None] * len(starts)

        def start(i: int) -> asyncio.Future[Any]:
            chunk = parsed[starts[i] : starts[i] + size]
            future = lookups[i] = asyncio.ensure_future(self.lookup(chunk, request_id))
            return future

        try:
            for i, first in enumerate(starts):
                looked_up = await (lookups[i] or start(i))
                if self.prefetch and i + 1 < len(starts):
                    start(i + 1)
                chunk_items = items[first : first + size]
                chunk_parsed = parsed[first : first + size]
                verdicts = self.verdicts(chunk_items, chunk_parsed, looked_up)
                self._emit(chunk_items, chunk_parsed, verdicts, out, batches, digests, tally)
        finally:
            for future in lookups:
                if future is not None and not future.done():
                    future.cancel()
        decided = time.perf_counter()
        producer = self.app.producer
        pending = [
            await producer.send(topic, key, value, partition, None, None)
            for topic, key, value, partition in out
        ]
        for partition, results in digests.items():
            for at in range(0, len(results), DIGEST_RESULTS):
                body = orjson.dumps({"results": results[at : at + DIGEST_RESULTS]})
                batches.add(self.topics.outcomes, partition, None, body)
        pending += await batches.send()
        self.holders.write()
        # Wait for every message to be acknowledged before the batch's offsets can be committed.
        sent = time.perf_counter()
        await asyncio.gather(*pending)
        if self.metrics is not None:
            self.metrics.apply(tally)
        log.debug(
            "batch of %d: parse+NDXP+decide %.1f ms, send %.1f ms, acks %.1f ms",
            len(items),
            (decided - started) * 1e3,
            (sent - decided) * 1e3,
            (time.perf_counter() - sent) * 1e3,
        )

    def _emit(
        self,
        items: Sequence[Item],
        parsed: Sequence[Record | Rejected | None],
        verdicts: Sequence[Verdict | Rejected | None],
        out: list[Outgoing],
        batches: Batches,
        digests: dict[int, list[dict[str, Any]]],
        tally: BatchTally,
    ) -> None:
        """Each decided record's result, correction, task and follow-ups; a dead letter for the rest."""
        decided_ms = now_ms()
        for item, record, verdict in zip(items, parsed, verdicts, strict=True):
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
                out.append(self._dead_letter(rejected, item))
                tally.rejected += 1
                continue
            decision = verdict.decision
            result = {
                "record_id": record.record_id,
                "sector": record.sector,
                "province": record.province,
                "outcome": decision.outcome.value,
                "fields": list(decision.fields),
                "seq": item.seq,
                "published_ms": item.published_ms,
                "decided_ms": decided_ms,
                "version": item.version,
                **verdict.extra,
            }
            if item.chain:  # made by a linked procedure (a child's card)
                result["chain"] = item.chain
            if decision.corrections:
                result["corrected"] = sorted(decision.corrections)
            key = result_key(record.sector, record.province, record.record_id)
            rkey = key.encode()
            # Results and digests share a partition (crc32 of the key): every version of a record meets there.
            partition = digest_partition(key, self.partitions)
            batches.add(self.topics.results, partition, rkey, dumps(result))
            digests.setdefault(partition, []).append(result)
            if decision.outcome is Outcome.CORRECTED:
                correction = {**result, "corrections": dict(decision.corrections)}
                out.append((self.topics.corrections, rkey, dumps(correction), None))
            task = correction_task(
                record,
                decision,
                verdict.citizen,
                version=item.version,
                decided_ms=decided_ms,
                name_match=verdict.name_match,
            )
            if task is not None:
                out.append((self.topics.tasks(record.sector), rkey, dumps(task), None))
            out.extend(self.after(record, verdict, item, decided_ms))
            lag_ms = decided_ms - item.published_ms
            self.stats.observe(decision.outcome.value, lag_ms)
            tally.add(record.sector, record.province, decision.outcome.value, lag_ms / 1e3)

    def message(self, topic: str, key: bytes, body: Mapping[str, Any]) -> Outgoing:
        """A message to send with the batch's results."""
        return (topic, key, dumps(body), None)

    async def lookup(self, parsed: Sequence[Record | Rejected | None], request_id: str) -> Any:
        """The NDXP's answer for a chunk: the citizens its records name (12-digit or legacy ID)."""
        records = [p for p in parsed if isinstance(p, Record)]
        # Records missing fields are looked up too when they carry an ID: their correction task
        # gives the province the NPD's values.
        ids = [i for i in (lookup_key(p) or task_lookup_key(p) for p in records) if i]
        return await self.client.lookup_many(ids, request_id=request_id)

    def verdicts(
        self,
        items: Sequence[Item],
        parsed: Sequence[Record | Rejected | None],
        looked_up: Any,
    ) -> list[Verdict | Rejected | None]:
        """One verdict per parsed record (None for rejected/empty): the pure rules over the look-up.

        A subclass may answer a parsed record with a `Rejected` (its reason goes to the dead-letter topic).
        """
        citizens: Mapping[str, Citizen] = looked_up
        holders = self.holders
        verdicts: list[Verdict | Rejected | None] = []
        for item, record in zip(items, parsed, strict=True):
            if not isinstance(record, Record):
                verdicts.append(None)
                continue
            key = lookup_key(record)
            holder_key = f"{record.sector}|{record.province}|{key}" if key else None
            holder = holders.get(holder_key) if holder_key else None
            citizen = citizens.get(key) if key else None
            decision = decide(record, citizen, holder, provinces=self.provinces)
            match: NameMatch | None = None
            if self.fuzzy:
                decision, match = judge_names(record, citizen, decision)
            if decision.passed_identity and holder is None and holder_key:
                holders.hold(item.partition, holder_key, record.record_id, item.origin)
            extra: dict[str, Any] = {}
            if key is not None and len(key) == 9:  # a legacy identity-card number
                extra["legacy_id"] = True
            if match is not None:  # no name text in it: results are read by dashboards and reports
                extra["name_match"] = match.explanation()
            task_citizen = citizen if citizen is not None else citizens.get(task_lookup_key(record) or "")
            verdicts.append(Verdict(decision, task_citizen, extra, name_match=match))
        return verdicts

    def after(self, record: Record, verdict: Verdict, item: Item, decided_ms: int) -> list[Outgoing]:
        """Messages a decided record triggers beyond its result (a chain's card step)."""
        if not item.chain:
            return []
        step = card_reconciled_step(item.chain, record, verdict.decision.outcome, decided_ms)
        return [self.message(self.topics.chain_steps, item.chain.encode(), step)]

    def _dead_letter(self, rejected: Rejected, item: Item) -> Outgoing:
        body = dead_letter_body(
            rejected.reason, item.origin, item.value, rejected.record_id, rejected.sector, rejected.province
        )
        self.rejected += 1
        # The first ones one by one, then one line a thousand: a flood of bad messages must not flood the log.
        if self.rejected <= 20:
            log.warning("rejected a message at %s: %s", item.origin, rejected.reason)
        elif self.rejected % 1000 == 0:
            log.warning(
                "%d messages rejected so far (each on the dead-letter topic with its reason)", self.rejected
            )
        self.stats.observe(Outcome.REJECTED.value, None)
        return (self.topics.deadletter, item.origin.encode(), dumps(body), None)
