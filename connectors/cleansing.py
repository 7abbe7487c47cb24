"""The province side of the cleansing loop: correction tasks in, fixed records re-published after a delay.

A worker sends every unsynced record back to its province as a task (`streams/tasks.py`). A scenario
source's `cleansing:` block says which share of each fixable kind the province fixes and how long that
takes; `CleansingLoop` plays the province: it reads the tasks, picks the records to fix (exactly the
planned ones for a generated source; a stable share by record_id for a file source), waits, and
re-publishes each fixed record with the same `record_id` and the next version, which supersedes the
first outcome.

A fix takes each named field from the NPD's value in the task where there is one, else from what the
province finds at source (for a generated source: the citizen the record was made from, and the record's
own insurance code). A record that cannot be completed that way is counted `unfixable`, never guessed.
Only `missing_fields` and `mismatch` are fixable by re-publishing: the other kinds need the NPD or C06
to act (a malformed or unknown ID), or the record to be withdrawn (deceased, moved, duplicate).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.exceptions import ConnectorError
from connectors.lgsp import LgspConnector
from schemas.citizen import Citizen
from streams.kafka_security import KafkaSecurity, get_kafka_security
from streams.topics import TopicNames

__all__ = ["FIXABLE", "CleansingLoop", "CleansingRule", "CleansingSpec", "FixPlan", "plan_for_generated"]

log = logging.getLogger(__name__)

FIXABLE: tuple[str, ...] = ("missing_fields", "mismatch")
_WHY_NOT = {
    "malformed_id": "a malformed ID is cancelled and re-issued by C06, not by the province",
    "not_found": "an ID the NPD does not hold needs the citizen registered first",
    "deceased": "a deceased citizen's record is withdrawn, not re-published",
    "moved": "a citizen who moved is handed to the new province",
    "duplicate": "a duplicate is withdrawn, not re-published",
    "ineligible": "a registration the law forbids is refused, not re-published",
}
_CODE = re.compile(r"[0-9]{10}")  # a readable social-insurance code (CONTRACT.md)


class CleansingRule(BaseModel):
    """The province fixes `share` of one unsynced kind, `after_s` seconds after the task arrives."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    share: float = Field(ge=0.0, le=1.0)
    after_s: float = Field(default=1.0, ge=0.0, le=3600.0)


class CleansingSpec(BaseModel):
    """A source's `cleansing:` block: a rule per fixable unsynced kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    missing_fields: CleansingRule | None = None
    mismatch: CleansingRule | None = None

    @model_validator(mode="before")
    @classmethod
    def _fixable_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in _WHY_NOT:
                    raise ValueError(
                        f"{key} cannot be fixed by re-publishing ({_WHY_NOT[key]}); "
                        f"fixable kinds: {', '.join(FIXABLE)}"
                    )
                if key not in FIXABLE:
                    raise ValueError(f"unknown key {key!r} in cleansing; allowed keys: {', '.join(FIXABLE)}")
        return data

    def rules(self) -> dict[str, CleansingRule]:
        """`unsynced/<kind>` → its rule, for the kinds the block names."""
        return {f"unsynced/{k}": r for k in FIXABLE if (r := getattr(self, k)) is not None}


def _exact_share(share: float, n: int) -> int:
    """`share` of `n` records, rounded half up: a person's reading of "half of 7"."""
    return int((Decimal(str(share)) * n).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _stable_fraction(seed: int, record_id: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class FixPlan:
    """Which records of one source the province fixes, and what it knows at source to fix them."""

    sector: str
    province: str
    rules: dict[str, CleansingRule]
    seed: int = 0
    # Generated sources: exactly these record_ids are fixed, from these reference values.
    chosen: set[str] | None = None
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rule(self, task: Mapping[str, Any]) -> CleansingRule | None:
        """The rule that fixes this task's record, or None when the province leaves it."""
        rule = self.rules.get(str(task.get("outcome")))
        if rule is None:
            return None
        record_id = str(task.get("record_id"))
        if self.chosen is not None:
            return rule if record_id in self.chosen else None
        return rule if _stable_fraction(self.seed, record_id) < rule.share else None

    def fix(self, task: Mapping[str, Any]) -> dict[str, Any] | None:
        """The fixed record, or None when a named field has no value to take (unfixable)."""
        record = dict(task["record"])
        npd: Mapping[str, Any] = task.get("npd") or {}
        known = self.reference.get(str(task["record_id"]), {})
        for name in task.get("fields") or ():
            value = npd.get(name, known.get(name))
            if value is None:
                return None
            record[name] = value
        return record


def plan_for_generated(
    spec: CleansingSpec,
    *,
    sector: str,
    province: str,
    records: Sequence[Mapping[str, Any]],
    kinds: Sequence[str],
    truth: Sequence[Citizen | None],
    seed: int,
) -> FixPlan:
    """Pick exactly `share` (half up) of each fixable kind's records, by a seeded draw."""
    rng = random.Random(f"{seed}:{sector}:{province}:cleansing")
    rules = spec.rules()
    chosen: set[str] = set()
    reference: dict[str, dict[str, Any]] = {}
    for outcome, rule in rules.items():
        positions = [n for n, k in enumerate(kinds) if f"unsynced/{k}" == outcome]
        for n in sorted(rng.sample(positions, _exact_share(rule.share, len(positions)))):
            record, citizen = records[n], truth[n]
            chosen.add(record["record_id"])
            if citizen is not None:
                reference[record["record_id"]] = _reference(record, citizen)
    return FixPlan(sector, province, rules, seed, chosen, reference)


def _reference(record: Mapping[str, Any], citizen: Citizen) -> dict[str, Any]:
    """What the province finds at source: the citizen's identity, and its own insurance code."""
    values: dict[str, Any] = {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth.isoformat(),
        "gender": citizen.gender,
    }
    code = record.get("insurance_code")
    if record.get("sector") == "insurance" and not (isinstance(code, str) and _CODE.fullmatch(code.strip())):
        # The spoilt code was the record's own; the insurance system still has it.
        values["insurance_code"] = _insurance_code(str(record["record_id"]))
    return values


def _insurance_code(record_id: str) -> str:
    digest = hashlib.blake2b(record_id.encode(), digest_size=8).digest()
    return f"{int.from_bytes(digest, 'big') % 10**10:010d}"


@dataclass
class CleansingStats:
    """What the loop did, per source (sector, province) and unsynced kind."""

    tasks: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    republished: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    unfixable: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    republished_keys: set[str] = field(default_factory=set)


class CleansingLoop:
    """Reads the tasks topics from the start and re-publishes the planned fixes; a background thread."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: TopicNames,
        plans: Iterable[FixPlan],
        *,
        connector: LgspConnector | None = None,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.topics = topics
        self.plans = {(p.sector, p.province): p for p in plans}
        self.stats = CleansingStats()
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        security = security if security is not None else get_kafka_security()
        self._connector = connector or LgspConnector(
            bootstrap_servers, topics, client_id="popsync-cleansing", security=security
        )
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="popsync-cleansing",
            **security.kafka_python_config(),
        )
        # (due at, tie-break, result key, outcome fixed, fixed record, its version)
        self._due: list[tuple[float, int, str, str, dict[str, Any], int]] = []
        self._in_flight = 0  # popped from `_due`, not yet confirmed by the broker
        self._handled: set[tuple[str, int]] = set()  # (result key, task version): a replayed task is one
        self._caught_up = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="popsync-cleansing", daemon=True)

    def add_plan(self, plan: FixPlan) -> None:
        """Fix this source's records from now on (call before its first record is published)."""
        with self.lock:
            self.plans[(plan.sector, plan.province)] = plan

    def start(self) -> CleansingLoop:
        parts = [
            TopicPartition(t, p)
            for t in self.topics.task_topics
            for p in sorted(self._consumer.partitions_for_topic(t) or ())
        ]
        self._consumer.assign(parts)
        self._consumer.seek_to_beginning(*parts)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._consumer.close()
        self._connector.close()

    def check(self) -> None:
        if self.error is not None:
            raise ConnectorError(f"the cleansing loop failed: {self.error!r}") from self.error

    def settled(self) -> bool:
        """Every task in the topics so far is read and every planned fix is published and confirmed."""
        with self.lock:
            return self._caught_up and not self._due and not self._in_flight

    def _run(self) -> None:
        try:
            last_check = 0.0
            while not self._stop.is_set():
                batch = self._consumer.poll(timeout_ms=100, max_records=5000)
                for messages in batch.values():
                    for message in messages:
                        self._task(message.key.decode(), json.loads(message.value))
                self._publish_due()
                now = time.monotonic()
                if now - last_check > 0.5:
                    last_check = now
                    self._check_caught_up(bool(batch))
        except BaseException as exc:  # reported by the waiting thread
            self.error = exc

    def _check_caught_up(self, got_some: bool) -> None:
        assigned = self._consumer.assignment()
        ends = self._consumer.end_offsets(list(assigned))
        caught_up = not got_some and all(self._consumer.position(tp) >= ends[tp] for tp in assigned)
        with self.lock:
            self._caught_up = caught_up

    def _task(self, key: str, task: dict[str, Any]) -> None:
        version = int(task.get("version", 1))
        if (key, version) in self._handled:
            return
        self._handled.add((key, version))
        source = (str(task.get("sector")), str(task.get("province")))
        kind = (*source, str(task.get("outcome")))
        with self.lock:
            self.stats.tasks[kind] += 1
            plan = self.plans.get(source)
        # One round of fixes: a re-published record that is still unsynced stays for the next report.
        rule = plan.rule(task) if plan is not None and version == 1 else None
        if plan is None or rule is None:
            return
        fixed = plan.fix(task)
        with self.lock:
            if fixed is None:
                self.stats.unfixable[kind] += 1
                return
            at = time.monotonic() + rule.after_s
            heapq.heappush(self._due, (at, len(self._handled), key, kind[2], fixed, version + 1))

    def _publish_due(self) -> None:
        now = time.monotonic()
        sent: list[tuple[str, str, dict[str, Any]]] = []
        while True:
            with self.lock:
                if not self._due or self._due[0][0] > now:
                    break
                _, _, key, outcome, record, version = heapq.heappop(self._due)
                self._in_flight += 1
            self._connector.republish(record, version)
            sent.append((key, outcome, record))
        if sent:
            self._connector.flush()  # confirmed before they count as re-published
            with self.lock:
                self._in_flight -= len(sent)
                for key, outcome, record in sent:
                    self.stats.republished[(record["sector"], record["province"], outcome)] += 1
                    self.stats.republished_keys.add(key)
