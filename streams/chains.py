"""The linked-procedure services and the chain tracker (a choreography: no service calls the next one).

- residence: on a registered birth, registers the child's permanent residence; on a registered death,
  ends the deceased's (NDXP residence endpoints, idempotent by the chain's reference); publishes the
  outcome on `<prefix>.residence.events`.
- health-insurance card: on a child's residence registered, issues the card of a child under 6 as an
  insurance record published to the insurance topic like any LGSP's, which the insurance agent then
  reconciles (its outcome is the chain's last step); a child of 6 or more needs no card.
- funeral allowance: on a residence ended, checks with the NPD that the death is recorded, then grants.
- tracker: every step lands on `<prefix>.chains.steps`; a table holds each chain's state
  (`streams.chain_steps.apply_step`), counts per province, kind and status are derived from it and
  published on `<prefix>.chains.progress`, as the outcome counts are.

Every service is at-least-once and idempotent: a step re-done after a crash repeats a fact.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any

import faust

from schemas.citizen import mask_id
from streams.chain_steps import apply_step, duration_ms, step, under_age
from streams.config import StreamsSettings
from streams.exceptions import ConfigurationError
from streams.messages import (
    HEADER_CHAIN,
    HEADER_PROVINCE,
    HEADER_PUBLISHED_MS,
    HEADER_REQUEST_ID,
    HEADER_SECTOR,
    dumps,
    now_ms,
)
from streams.metrics import WorkerMetrics
from streams.ndxp_client import NdxpClient
from streams.topics import TopicNames, replicated_configs

__all__ = ["ChainServices", "ChainTracker", "attach_chains", "card_record"]

log = logging.getLogger(__name__)


def card_record(event: dict[str, Any]) -> dict[str, Any]:
    """The child's health-insurance card as an insurance record (CONTRACT.md), one per birth chain.

    The code is derived from the chain (two province digits, then eight), so a re-issue after a crash
    is the same record with the same `record_id`, which the counts then take once.
    """
    chain, province = str(event["chain_id"]), str(event["province"])
    digest = int.from_bytes(hashlib.blake2b(chain.encode(), digest_size=8).digest(), "big")
    return {
        "record_id": f"BHYT-TE-{chain.replace('|', '-')}",
        "sector": "insurance",
        "province": province,
        "personal_id": event["personal_id"],
        "full_name": event["full_name"],
        "date_of_birth": event["date_of_birth"],
        "gender": event["gender"],
        "insurance_code": f"{province[1:]}{digest % 10**8:08d}",
    }


class ChainServices:
    """The three services' handlers; each is its own agent on its own input topic."""

    def __init__(self, app: faust.App, topics: TopicNames, client: NdxpClient) -> None:
        self.app = app
        self.topics = topics
        self.client = client

    async def _send(self, topic: str, key: str, body: dict[str, Any], headers: Any = None) -> Any:
        return await self.app.producer.send(topic, key.encode(), dumps(body), None, None, headers)

    async def residence(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        """Register (birth) or end (death) the permanent residence, then tell the next services."""
        pending: list[Awaitable[Any]] = []
        for ev in events:
            event = json.loads(ev.value)
            chain, kind, province = event["chain_id"], event["kind"], event["province"]
            reference = f"chain:{chain}:residence"
            on = event.get("event_date") or date.today().isoformat()
            if kind == "birth":
                answer = await self.client.register_residence(
                    event["personal_id"], province, on, reference, request_id=reference
                )
                name = "residence_registered"
            else:
                answer = await self.client.end_residence(
                    event["personal_id"], on, reference, request_id=reference
                )
                name = "residence_ended"
            at = now_ms()
            if not answer.ok:
                log.warning(
                    "chain %s stalled: residence change for %s refused (%s)",
                    chain,
                    mask_id(event["personal_id"]),
                    answer.detail,
                )
                body = step(chain, kind, province, name, at, ok=False, detail=answer.detail)
                pending.append(await self._send(self.topics.chain_steps, chain, body))
                continue
            pending.append(await self._send(self.topics.residence_events, chain, {**event, "step": name}))
            pending.append(
                await self._send(self.topics.chain_steps, chain, step(chain, kind, province, name, at))
            )
        await asyncio.gather(*pending)

    async def card(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        """Issue the health-insurance card of a child under 6 (as an insurance record to reconcile)."""
        pending: list[Awaitable[Any]] = []
        for ev in events:
            event = json.loads(ev.value)
            if event["kind"] != "birth":
                continue
            chain, province = event["chain_id"], event["province"]
            born = date.fromisoformat(event["date_of_birth"])
            on = date.fromisoformat(event["event_date"]) if event.get("event_date") else born
            at = now_ms()
            if not under_age(born, on):
                body = step(chain, "birth", province, "no_card_needed", at)
                pending.append(await self._send(self.topics.chain_steps, chain, body))
                continue
            record = card_record(event)
            headers = [
                (HEADER_PROVINCE, province.encode()),
                (HEADER_SECTOR, b"insurance"),
                (HEADER_PUBLISHED_MS, str(at).encode()),
                (HEADER_REQUEST_ID, f"chain:{chain}:card".encode()),
                (HEADER_CHAIN, chain.encode()),
            ]
            # Keyed by the child's ID, as the LGSP connector keys insurance records.
            pending.append(
                await self._send(self.topics.records("insurance"), record["personal_id"], record, headers)
            )
            body = step(chain, "birth", province, "card_issued", at)
            pending.append(await self._send(self.topics.chain_steps, chain, body))
        await asyncio.gather(*pending)

    async def allowance(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        """Grant the funeral allowance once the NPD shows the death (a step of its own)."""
        deaths = [json.loads(ev.value) for ev in events]
        deaths = [d for d in deaths if d["kind"] == "death"]
        if not deaths:
            return
        found = await self.client.lookup_many(
            [d["personal_id"] for d in deaths], request_id=f"chain:{deaths[0]['chain_id']}:allowance"
        )
        pending: list[Awaitable[Any]] = []
        for death in deaths:
            chain, province = death["chain_id"], death["province"]
            citizen = found.get(death["personal_id"])
            ok = citizen is not None and citizen.deceased
            detail = None if ok else "the NPD does not record the death"
            body = step(chain, "death", province, "allowance_granted", now_ms(), ok=ok, detail=detail)
            pending.append(await self._send(self.topics.chain_steps, chain, body))
        await asyncio.gather(*pending)


class ChainTracker:
    """Each chain's state in a table; counts per (province, kind, status) derived from it, per partition.

    Like `streams.counting.OutcomeCounter`: replays re-apply facts, counts are rebuilt after recovery,
    and only owned partitions are reported.
    """

    def __init__(
        self,
        app: faust.App,
        topics: TopicNames,
        table: Any,
        worker_id: str,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.app = app
        self.topics = topics
        self.table = table  # faust Table: chain_id -> state (streams.chain_steps.apply_step)
        self.worker_id = worker_id
        self.metrics = metrics
        self.counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.partition_of: dict[str, int] = {}

    async def process(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        store = self.table.data
        for ev in events:
            body = json.loads(ev.value)
            chain, partition = str(body["chain_id"]), ev.message.partition
            previous = store.get(chain)
            state = {**apply_step(previous, body), "partition": partition}
            if previous == state:
                continue  # a replayed step
            if previous is not None:
                self.counts[partition][_label(previous)] -= 1
            elif self.metrics is not None:
                self.metrics.chain_started(state["province"], state["kind"])
            store[chain] = state
            self.table.send_changelog(partition, chain, state)
            self.counts[partition][_label(state)] += 1
            took = duration_ms(state)
            if self.metrics is not None and took is not None and duration_ms(previous or {}) is None:
                self.metrics.chain_finished(state["province"], state["kind"], state["status"], took / 1e3)

    async def rebuild(self) -> None:
        counts: defaultdict[int, Counter[str]] = defaultdict(Counter)
        for state in self.table.data.values():
            counts[int(state["partition"])][_label(state)] += 1
        self.counts = counts
        log.info("chain counts rebuilt from %d chains", sum(sum(c.values()) for c in counts.values()))

    def active_partitions(self) -> list[int]:
        return sorted(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.topics.chain_steps
        )

    async def snapshot(self) -> None:
        partitions = self.active_partitions()
        body = {
            "worker": self.worker_id,
            "ts_ms": now_ms(),
            "partitions": {str(p): {k: v for k, v in self.counts[p].items() if v} for p in partitions},
        }
        await self.app.producer.send(
            self.topics.chain_progress, self.worker_id.encode(), dumps(body), None, None, None
        )


def _label(state: dict[str, Any]) -> str:
    return f"{state['province']}|{state['kind']}|{state['status']}"


def attach_chains(
    app: faust.App,
    topics: TopicNames,
    settings: StreamsSettings,
    client: Callable[[], NdxpClient],
    metrics: WorkerMetrics | None,
) -> ChainTracker:
    """Add the three services, the tracker and its snapshot timer to a worker app."""
    partitions = settings.partitions
    services: dict[str, ChainServices] = {}

    def the_services() -> ChainServices:
        # Built lazily inside the running loop, like the reconcilers (httpx binds to its first loop).
        if "s" not in services:
            services["s"] = ChainServices(app, topics, client())
        return services["s"]

    def agent(topic_name: str, name: str, handle: Callable[[ChainServices, Any], Awaitable[None]]) -> None:
        topic = app.topic(topic_name, partitions=partitions, key_type=bytes, value_type=bytes)

        async def run(stream: Any) -> None:
            try:
                async for events in stream.take_events(200, within=0.2):
                    await handle(the_services(), events)
            except ConfigurationError as exc:
                log.error("stopping the worker: %s", exc)
                await app.crash(exc)
                raise

        app.agent(topic, name=name)(run)

    agent(topics.civil_events, "chain-residence", ChainServices.residence)
    agent(topics.residence_events, "chain-health-insurance-card", ChainServices.card)
    agent(topics.residence_events, "chain-funeral-allowance", ChainServices.allowance)

    table = app.Table(
        "chains", partitions=partitions, extra_topic_configs=replicated_configs(settings.replication_factor)
    )
    tracker = ChainTracker(app, topics, table, settings.worker_id, metrics)
    table.on_recover(tracker.rebuild)
    steps = app.topic(topics.chain_steps, partitions=partitions, key_type=bytes, value_type=bytes)

    async def track(stream: Any) -> None:
        async for events in stream.take_events(2000, within=0.2):
            await tracker.process(events)

    app.agent(steps, name="chain-tracker")(track)
    app.timer(settings.progress_interval_s)(tracker.snapshot)
    return tracker
