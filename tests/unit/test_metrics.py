"""Prometheus metrics of the worker, the connector and the NDXP mock, driven without sockets.

The worker's agents run with fake faust parts (producer, tables, assignor) over a generated workload;
the NDXP app runs in-process behind httpx's ASGI transport (no socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.generate import GenerateSpec, generate_records
from connectors.lgsp import LgspConnector
from connectors.metrics import ConnectorMetrics
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.main import create_app
from mocks.ndxp.metrics import RouteTemplates
from mocks.ndxp.population import generate_population
from schemas.citizen import Citizen
from schemas.names import fold_diacritics
from streams.civil import CivilReconciler
from streams.counting import OutcomeCounter
from streams.holders import FirstHolders
from streams.messages import HEADER_PUBLISHED_MS, HEADER_SEQ, dumps, now_ms
from streams.metrics import BatchTally, WorkerMetrics
from streams.ndxp_client import CivilResult, NdxpClient
from streams.reconcile import Reconciler
from streams.stats import WorkerStats
from streams.topics import TopicNames
from tests.civil_helpers import BIRTH, DEATH

pytestmark = pytest.mark.unit

TOPICS = TopicNames("popsync.test")
PARTITIONS = 6
ID_RUN = re.compile(r"[0-9]{9,12}")


# --- fakes of the faust parts the agents touch ------------------------------------------------------


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.partitions: list[int | None] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None, *_: Any
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key or b"", value))
        self.partitions.append(partition)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def on(self, topic: str) -> list[tuple[bytes, dict[str, Any]]]:
        return [(k, json.loads(v)) for t, k, v in self.sent if t == topic]

    def sent_with_partitions(self) -> list[tuple[str, bytes, bytes, int | None]]:
        return [(t, k, v, p) for (t, k, v), p in zip(self.sent, self.partitions, strict=True)]


class FakeTable:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def send_changelog(self, partition: int, key: str, value: Any) -> None:
        pass


class FakeAssignor:
    def __init__(self, partitions: Iterable[int]) -> None:
        self.partitions = set(partitions)

    def assigned_actives(self) -> set[Any]:
        return {TP(TOPICS.outcomes, p) for p in self.partitions}


class FakeApp:
    def __init__(self, owned: Iterable[int] = range(PARTITIONS)) -> None:
        self.producer = FakeProducer()
        self.assignor = FakeAssignor(owned)


class FakeNdxp:
    """`NdxpClient.lookup_many` over an in-memory NPD (12-digit and legacy IDs)."""

    def __init__(self, citizens: Iterable[Citizen]) -> None:
        self.npd: dict[str, Citizen] = {}
        for c in citizens:
            self.npd[c.personal_id] = c
            if c.legacy_id:
                self.npd[c.legacy_id] = c

    async def lookup_many(self, ids: Sequence[str], request_id: str | None = None) -> dict[str, Citizen]:
        return {i: self.npd[i] for i in ids if i in self.npd}


def event(value: bytes, *, partition: int, offset: int, key: bytes = b"", published_ms: int = 0) -> Any:
    headers = [(HEADER_PUBLISHED_MS, str(published_ms).encode()), (HEADER_SEQ, str(offset).encode())]
    message = SimpleNamespace(
        value=value,
        key=key,
        headers=headers,
        partition=partition,
        offset=offset,
        topic="records",
        timestamp=published_ms / 1000,
    )
    return SimpleNamespace(value=value, message=message)


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def labels_of(registry: CollectorRegistry) -> Iterator[tuple[str, dict[str, str]]]:
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            yield sample.name, dict(sample.labels)


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    """Samples of `name` keyed by their label values, in the alphabetical order of the label names."""
    out: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(v for _, v in sorted(sample.labels.items()))] = sample.value
    return out


def assert_no_personal_data(registry: CollectorRegistry, citizens: Sequence[Citizen]) -> None:
    """No label value is a 9-12 digit run, and no citizen's name (any form) appears anywhere."""
    seen = 0
    for name, labels in labels_of(registry):
        for label, value in labels.items():
            assert not ID_RUN.search(value), f"{name}{{{label}={value!r}}} looks like a personal ID"
            seen += 1
    text = generate_latest(registry).decode()
    for c in citizens:
        for form in {c.full_name, fold_diacritics(c.full_name), c.full_name.upper()}:
            assert form not in text, "a citizen's name is in the metrics"
        assert c.personal_id not in text
    assert seen > 0  # the check looked at something


# --- a realistic workload ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    return list(generate_population(11, {"008": 500, "052": 300}))


@pytest.fixture(scope="module")
def workload(population: list[Citizen]) -> list[bytes]:
    """Insurance 008 and labour 052 records with every defect, and two lines that are not records."""
    residents_008 = [c for c in population if c.permanent_province == "008"]
    residents_052 = [c for c in population if c.permanent_province == "052"]
    insurance = generate_records(
        GenerateSpec.model_validate(
            {
                "records": 240,
                "unsynced": {"mismatch": 6, "not_found": 5, "malformed_id": 4, "missing_fields": 3,
                             "deceased": 2, "duplicate": 3},
                "corrected": {"no_diacritics": 5, "legacy_id": 4},
            }
        ),
        sector="insurance", province="008", citizens=residents_008, seed=1,
    )  # fmt: skip
    labour = generate_records(
        GenerateSpec.model_validate({"records": 120, "unsynced": {"moved": 4, "deceased": 2}}),
        sector="labour", province="052", citizens=residents_052, other_citizens=residents_008, seed=2,
    )  # fmt: skip
    lines = [dumps(r) for r in [*insurance, *labour]]
    lines.insert(17, b"{not json")
    lines.insert(99, b'{"sector": "insurance", "province": "008"}')
    return lines


def reconcile(
    lines: Sequence[bytes], population: Sequence[Citizen], metrics: WorkerMetrics | None, batch: int = 50
) -> FakeApp:
    app = FakeApp()
    reconciler = Reconciler(
        app,  # type: ignore[arg-type]  # a fake of the two things the agent uses
        TOPICS,
        FakeNdxp(population),  # type: ignore[arg-type]
        FirstHolders(FakeTable()),
        WorkerStats(),
        metrics,
        partitions=PARTITIONS,
    )
    published = now_ms() - 2_000  # every record waited ~2 s between publication and decision
    events = [event(v, partition=0, offset=i, published_ms=published) for i, v in enumerate(lines)]

    async def run() -> None:
        for chunk in batches(events, batch):
            await reconciler.process(chunk)

    asyncio.run(run())
    return app


class RejectingNdxp:
    """`NdxpClient.register_civil` of an NDXP that reads the second record differently (a version skew)."""

    async def register_civil(
        self, records: Sequence[Any], request_id: str | None = None
    ) -> list[CivilResult]:
        first, second = records
        return [
            CivilResult(first["record_id"], "unsynced/not_found", ("personal_id",)),
            CivilResult(second["record_id"], "rejected", detail="event_date: not a date"),
        ]


def test_a_civil_record_the_ndxp_rejects_goes_to_the_dead_letter_topic_with_the_ndxps_reason() -> None:
    app = FakeApp()
    reconciler = CivilReconciler(
        app,  # type: ignore[arg-type]  # a fake of the two things the agent uses
        TOPICS,
        RejectingNdxp(),  # type: ignore[arg-type]
        FirstHolders(FakeTable()),
        WorkerStats(),
        None,
    )
    lines = [dumps(DEATH), dumps(BIRTH)]
    asyncio.run(reconciler.process([event(v, partition=0, offset=i) for i, v in enumerate(lines)]))
    assert [r["record_id"] for _, r in app.producer.on(TOPICS.results)] == ["d1"]
    ((_, dead),) = app.producer.on(TOPICS.deadletter)
    assert (dead["record_id"], dead["sector"], dead["province"]) == ("b1", "civil_status", "008")
    assert dead["reason"] == "the NDXP rejected it: event_date: not a date"


def outcome_tally(results: Iterable[tuple[bytes, dict[str, Any]]]) -> Counter[tuple[str, str, str]]:
    return Counter((r["outcome"], r["province"], r["sector"]) for _, r in results)


# --- worker ----------------------------------------------------------------------------------------------


def test_reconciled_counts_every_decision_by_sector_province_outcome(
    workload: list[bytes], population: list[Citizen]
) -> None:
    metrics = WorkerMetrics("worker-1", "popsync-test")
    app = reconcile(workload, population, metrics)
    results = app.producer.on(TOPICS.results)
    expected = outcome_tally(results)
    assert len(results) == len(workload) - 2
    assert expected[("corrected", "008", "insurance")] == 9
    assert expected[("unsynced/moved", "052", "labour")] == 4
    assert samples(metrics.registry, "popsync_records_reconciled_total") == expected
    assert samples(metrics.registry, "popsync_deadletter_total") == {("worker",): 2}
    info = samples(metrics.registry, "popsync_worker_info")
    assert info == {("popsync-test", "worker-1"): 1.0}


def test_sync_lag_histogram_per_source(workload: list[bytes], population: list[Citizen]) -> None:
    metrics = WorkerMetrics("worker-1", "popsync-test")
    reconcile(workload, population, metrics)
    reg = metrics.registry
    for sector, province, n in (("insurance", "008", 240), ("labour", "052", 120)):
        source = {"sector": sector, "province": province}
        assert reg.get_sample_value("popsync_sync_lag_seconds_count", source) == n
        assert reg.get_sample_value("popsync_sync_lag_seconds_bucket", {**source, "le": "1.0"}) == 0
        assert reg.get_sample_value("popsync_sync_lag_seconds_bucket", {**source, "le": "5.0"}) == n
        assert reg.get_sample_value("popsync_sync_lag_seconds_bucket", {**source, "le": "1800.0"}) == n


def test_batch_tally_clamps_negative_lag_and_applies_once() -> None:
    metrics = WorkerMetrics("w", "a")
    tally = BatchTally()
    tally.add("insurance", "008", "cleaned", -0.004)  # a publisher's clock slightly ahead
    tally.add("insurance", "008", "cleaned", 0.2)
    tally.rejected = 3
    metrics.apply(tally)
    reg = metrics.registry
    assert (
        reg.get_sample_value(
            "popsync_records_reconciled_total",
            {"sector": "insurance", "province": "008", "outcome": "cleaned"},
        )
        == 2
    )
    lag = {"sector": "insurance", "province": "008"}
    assert reg.get_sample_value("popsync_sync_lag_seconds_bucket", {**lag, "le": "0.05"}) == 1
    assert reg.get_sample_value("popsync_sync_lag_seconds_sum", lag) == pytest.approx(0.2)
    assert reg.get_sample_value("popsync_deadletter_total", {"stage": "worker"}) == 3


def result_events(app: FakeApp, size: int = 25) -> list[Any]:
    """The outcome digests the reconciler sent, as the count agent sees them, cut into digests of `size`."""
    events = []
    for topic, _, value, partition in app.producer.sent_with_partitions():
        if topic != TOPICS.outcomes:
            continue
        results = json.loads(value)["results"]
        for at in range(0, len(results), size):
            body = json.dumps({"results": results[at : at + size]}).encode()
            events.append(event(body, partition=partition, offset=len(events)))
    return events


def test_progress_gauge_is_exact_after_replays_while_the_counter_counts_them_again(
    workload: list[bytes], population: list[Citizen]
) -> None:
    metrics = WorkerMetrics("worker-1", "popsync-test")
    app = reconcile(workload, population, metrics)
    results = app.producer.on(TOPICS.results)
    exact = outcome_tally(results)
    counter = OutcomeCounter(app, TOPICS, FakeTable(), WorkerStats(), "worker-1")  # type: ignore[arg-type]
    metrics.track_progress(counter.owned_totals)
    events = result_events(app)

    async def run() -> None:
        for chunk in batches(events, 70):
            await counter.process(chunk)
        await counter.snapshot()  # the timer: publishes a snapshot, refreshes the owned partitions
        # A crash replays the last 150 results, and a rebalance the whole lot, in other batches.
        for chunk in batches(events[-150:], 33):
            await counter.process(chunk)
        for chunk in batches(events, 200):
            await counter.process(chunk)

    asyncio.run(run())
    assert samples(metrics.registry, "popsync_progress_records") == exact
    # After recovery the counts are rebuilt from the table: still the same figures.
    asyncio.run(counter.rebuild())
    assert samples(metrics.registry, "popsync_progress_records") == exact

    # Replaying the records themselves decides them again: the decision counter counts each twice.
    again = reconcile(workload, population, metrics)
    assert outcome_tally(again.producer.on(TOPICS.results)) == exact
    doubled = {k: 2 * v for k, v in exact.items()}
    assert samples(metrics.registry, "popsync_records_reconciled_total") == doubled


def test_progress_gauge_covers_only_owned_partitions_and_workers_sum_to_the_total(
    workload: list[bytes], population: list[Citizen]
) -> None:
    reconciled = reconcile(workload, population, None)
    results = reconciled.producer.on(TOPICS.results)
    events = result_events(reconciled)
    workers = []
    for name, owned in (("worker-1", {0, 1, 2}), ("worker-2", {3, 4, 5})):
        app = FakeApp(owned)
        metrics = WorkerMetrics(name, "popsync-test")
        counter = OutcomeCounter(app, TOPICS, FakeTable(), WorkerStats(), name)  # type: ignore[arg-type]
        metrics.track_progress(counter.owned_totals)

        async def run(counter: OutcomeCounter = counter, owned: set[int] = owned) -> None:
            await counter.process([e for e in events if e.message.partition in owned])
            await counter.snapshot()

        asyncio.run(run())
        workers.append((counter, metrics))
    total: Counter[tuple[str, ...]] = Counter()
    for _, metrics in workers:
        total.update(samples(metrics.registry, "popsync_progress_records"))
    assert total == outcome_tally(results)

    # A revoked partition leaves this worker's gauge at once, before the next snapshot.
    counter, metrics = workers[0]
    counter.forget([0])
    after = sum(samples(metrics.registry, "popsync_progress_records").values())
    on_0 = sum(len(json.loads(e.value)["results"]) for e in events if e.message.partition == 0)
    assert after == sum(sum(counter.counts[p].values()) for p in (0, 1, 2)) - on_0


def test_progress_gauge_is_empty_before_the_first_snapshot() -> None:
    counter = OutcomeCounter(FakeApp(), TOPICS, FakeTable(), WorkerStats(), "w")  # type: ignore[arg-type]
    counter.counts[0]["insurance|008|cleaned"] = 5
    metrics = WorkerMetrics("w", "a")
    metrics.track_progress(counter.owned_totals)
    assert samples(metrics.registry, "popsync_progress_records") == {}


# --- the NDXP client -----------------------------------------------------------------------------------


def ndxp_client(responses: list[Any], metrics: WorkerMetrics) -> NdxpClient:
    """A client whose transport answers from `responses` in turn (an int: that status; else raise it)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        if step == 200:
            ids = json.loads(request.content)["ids"]
            return httpx.Response(200, json={"results": [{"query_id": i, "found": False} for i in ids]})
        return httpx.Response(step, json={"detail": "unavailable"})

    return NdxpClient(
        "http://ndxp.test", "key", max_backoff_s=0.01, transport=httpx.MockTransport(handler), metrics=metrics
    )


def test_ndxp_client_metrics_calls_retries_errors_by_kind() -> None:
    metrics = WorkerMetrics("w", "a")
    steps: list[Any] = [
        503,
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("reset"),
        429,
        200,
        200,  # the second batch
    ]
    client = ndxp_client(steps, metrics)
    ids = [f"008090{n:06d}" for n in range(1500)]  # two batches: 1000 and 500

    async def run() -> None:
        await client.lookup_many(ids)
        await client.aclose()

    asyncio.run(run())
    reg = metrics.registry
    assert samples(reg, "popsync_ndxp_errors_total") == {
        ("503",): 1,
        ("timeout",): 1,
        ("connect",): 1,
        ("transport",): 1,
        ("429",): 1,
    }
    assert reg.get_sample_value("popsync_ndxp_retries_total") == 5
    assert reg.get_sample_value("popsync_ndxp_call_seconds_count") == 7  # 6 attempts, then the 2nd batch
    assert reg.get_sample_value("popsync_ndxp_batch_size_count") == 2
    assert reg.get_sample_value("popsync_ndxp_batch_size_sum") == 1500
    assert reg.get_sample_value("popsync_ndxp_batch_size_bucket", {"le": "500.0"}) == 1
    assert reg.get_sample_value("popsync_ndxp_batch_size_bucket", {"le": "1000.0"}) == 2


# --- the connector ---------------------------------------------------------------------------------------


class FakeFuture:
    def add_errback(self, fn: Any) -> FakeFuture:
        return self


class FakeKafkaProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Any = None,
        partition: int | None = None,
    ) -> FakeFuture:
        self.sent.append((topic, key))
        return FakeFuture()

    def flush(self) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def publish(lines: Sequence[bytes], metrics: ConnectorMetrics | None = None) -> LgspConnector:
    records = [json.loads(line) for line in lines if line.startswith(b'{"')]
    connector = LgspConnector("unused:9092", TOPICS, producer=FakeKafkaProducer(), metrics=metrics)
    connector.publish_records(records[:150], "part-1")
    connector.publish_records([*records[150:], {"sector": "insurance"}], "part-2")
    return connector


def test_connector_counts_published_per_source_dead_letters_and_publications(
    workload: list[bytes],
) -> None:
    metrics = ConnectorMetrics()
    publish(workload, metrics)
    reg = metrics.registry
    assert samples(reg, "popsync_records_published_total") == {
        ("008", "insurance"): 240,
        ("052", "labour"): 120,
    }
    # The line without record_id, and the one of part-2 that is not a record.
    assert samples(reg, "popsync_deadletter_total") == {("connector",): 2}
    assert reg.get_sample_value("popsync_publish_seconds_count") == 2


def test_connector_counts_in_steps_during_a_long_publication(population: list[Citizen]) -> None:
    metrics = ConnectorMetrics()
    connector = LgspConnector("unused:9092", TOPICS, producer=FakeKafkaProducer(), metrics=metrics)
    seen: list[float | None] = []

    def on_progress(n: int) -> None:
        seen.append(metrics.registry.get_sample_value(
            "popsync_records_published_total", {"sector": "labour", "province": "052"}
        ))  # fmt: skip

    records = [{"record_id": f"L-{n}", "sector": "labour", "province": "052"} for n in range(2500)]
    connector.publish_records(records, "big", on_progress=on_progress)
    assert seen == [1000, 2000, 2500]


def test_connector_works_without_metrics_given(workload: list[bytes]) -> None:
    connector = publish(workload)
    reg = connector.metrics.registry
    assert reg.get_sample_value("popsync_records_published_total", {"sector": "labour", "province": "052"})


# --- the NDXP mock -------------------------------------------------------------------------------------

KEY = "unit-key-lgsp-008"


@pytest.fixture
def ndxp(tmp_path: Path, population: list[Citizen]) -> FastAPI:
    path = tmp_path / "npd.sqlite3"
    db = PopulationDB.create(path)
    try:
        db.load(population)
    finally:
        db.close()
    settings = NdxpSettings(
        database_url=f"sqlite:///{path}",
        api_keys={"lgsp-008": KEY, "lgsp-052": "unit-key-lgsp-052"},
        auditor_keys={"c06-audit": "unit-key-c06"},
        access_log=False,
    )
    return create_app(settings)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (its lifespan opens the database) and a client calling it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ndxp.test", headers={"X-API-Key": KEY}
        ) as client:
            yield client


async def ndxp_workload(app: FastAPI, population: list[Citizen]) -> None:
    """Every kind of request, with IDs in paths and bodies, some answered 404/401/422/503."""
    ids = [c.personal_id for c in population[:300]]
    one = population[0]
    legacy = next(c for c in population if c.legacy_id)
    body = {"id": one.personal_id, "full_name": one.full_name, "purpose": "p"}
    purpose = {"purpose": "p"}
    async with serving(app) as client:
        batch = {"ids": ids, "purpose": "p"}
        assert (await client.post("/v1/citizens/verify-batch", json=batch)).status_code == 200
        assert (await client.get(f"/v1/citizens/{one.personal_id}", params=purpose)).status_code == 200
        assert (await client.get("/v1/citizens/008090999999", params=purpose)).status_code == 404
        assert (await client.get(f"/v1/legacy/{legacy.legacy_id}", params=purpose)).status_code == 200
        assert (await client.post("/v1/citizens/verify", json=body)).status_code == 200
        other = {"X-API-Key": "unit-key-lgsp-052"}
        assert (await client.post("/v1/citizens/verify", json=body, headers=other)).status_code == 200
        wrong = {"X-API-Key": "nope"}
        assert (await client.get(f"/v1/citizens/{one.personal_id}", headers=wrong)).status_code == 401
        assert (await client.post("/v1/citizens/verify-batch", json={"ids": []})).status_code == 422
        assert (await client.get(f"/v1/nothing/{one.personal_id}")).status_code == 404
        app.state.faults.error_rate = 1.0
        for _ in range(3):
            assert (await client.post("/v1/citizens/verify-batch", json=batch)).status_code == 503
        app.state.faults.error_rate = 0.0
        assert (await client.get("/health")).status_code == 200


def test_ndxp_metrics_by_route_template_status_and_agency(ndxp: FastAPI, population: list[Citizen]) -> None:
    async def run() -> httpx.Response:
        await ndxp_workload(ndxp, population)
        async with serving(ndxp) as client:
            return await client.get("/metrics", headers={"X-API-Key": ""})  # no key needed

    response = asyncio.run(run())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    registry = ndxp.state.metrics.registry
    requests = samples(registry, "ndxp_requests_total")
    assert requests[("/v1/citizens/verify-batch", "200")] == 1
    assert requests[("/v1/citizens/verify-batch", "503")] == 3  # answered before routing: still templated
    assert requests[("/v1/citizens/verify-batch", "422")] == 1
    assert requests[("/v1/citizens/{personal_id}", "200")] == 1
    assert requests[("/v1/citizens/{personal_id}", "404")] == 1
    assert requests[("/v1/citizens/{personal_id}", "401")] == 1
    assert requests[("/v1/legacy/{legacy_id}", "200")] == 1
    assert requests[("/v1/citizens/verify", "200")] == 2
    assert requests[("unmatched", "404")] == 1
    assert requests[("/health", "200")] == 1
    assert "ndxp_requests_total" in response.text and "ndxp_disclosures_total" in response.text
    assert registry.get_sample_value("ndxp_faults_injected_total") == 3
    disclosures = samples(registry, "ndxp_disclosures_total")
    # 300 citizens in the batch, one read, one legacy resolution, one verify for each agency.
    assert disclosures == {("lgsp-008",): 300 + 1 + 1 + 1, ("lgsp-052",): 1}
    seconds = registry.get_sample_value("ndxp_request_seconds_count", {"route": "/v1/citizens/verify-batch"})
    assert seconds == 5


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("POST", "/v1/citizens/verify", "/v1/citizens/verify"),
        ("GET", "/v1/citizens/verify", "/v1/citizens/{personal_id}"),  # the router picks the same
        ("GET", "/v1/citizens/008090123456", "/v1/citizens/{personal_id}"),
        ("DELETE", "/v1/citizens/008090123456", "/v1/citizens/{personal_id}"),  # a 405, still templated
        ("GET", "/v1/legacy/123456789", "/v1/legacy/{legacy_id}"),
        ("GET", "/v1/audit", "/v1/audit"),
        ("HEAD", "/health", "/health"),
        ("GET", "/docs", "/docs"),
        ("GET", "/metrics", "/metrics"),
        ("GET", "/v1/citizens/008090123456/extra", "unmatched"),
        ("GET", "/008090123456", "unmatched"),
    ],
)
def test_route_templates_as_the_router_picks_them(
    ndxp: FastAPI, method: str, path: str, template: str
) -> None:
    assert RouteTemplates(ndxp)(method, path) == template


# --- privacy ---------------------------------------------------------------------------------------------


def test_no_label_carries_personal_data(
    workload: list[bytes], population: list[Citizen], ndxp: FastAPI
) -> None:
    worker = WorkerMetrics("worker-1", "popsync-test")
    app = reconcile(workload, population, worker)
    counter = OutcomeCounter(app, TOPICS, FakeTable(), WorkerStats(), "worker-1")  # type: ignore[arg-type]
    worker.track_progress(counter.owned_totals)
    client = ndxp_client([503, httpx.ConnectError("refused"), 200], worker)

    async def run() -> None:
        await counter.process(result_events(app))
        await counter.snapshot()
        await client.lookup_many([c.personal_id for c in population[:10]])
        await client.aclose()

    asyncio.run(run())
    assert samples(worker.registry, "popsync_progress_records")
    connector = ConnectorMetrics()
    publish(workload, connector)
    asyncio.run(ndxp_workload(ndxp, population))
    for registry in (worker.registry, connector.registry, ndxp.state.metrics.registry):
        assert_no_personal_data(registry, population)
