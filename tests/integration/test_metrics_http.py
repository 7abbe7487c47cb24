"""The /metrics endpoints on real sockets: the NDXP server, a worker process on a real broker, a connector."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from connectors.generate import GenerateSpec, generate_records
from connectors.lgsp import LgspConnector
from connectors.metrics import ConnectorMetrics, serve_metrics
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.population import generate_population
from mocks.ndxp.server import NdxpServer
from popsync.services import ManagedProcess, free_port, popsync_command
from schemas.citizen import Citizen
from schemas.records import Record, parse_object
from schemas.rules import decide, holder_key, lookup_key
from streams.topics import TopicNames, ensure_topics

pytestmark = pytest.mark.integration

AGENCY, KEY = "popsync-streams", "integration-metrics-key"
ID_RUN = re.compile(r"[0-9]{9,12}")


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """`GET url` parsed: sample name → {sorted label pairs: value}."""
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by(samples: dict[tuple[tuple[str, str], ...], float], *names: str) -> Counter[tuple[str, ...]]:
    """Sum of samples grouped by the values of the label `names`."""
    out: Counter[tuple[str, ...]] = Counter()
    for labels, value in samples.items():
        d = dict(labels)
        out[tuple(d[n] for n in names)] += int(value)
    return out


def assert_no_personal_data(url: str, citizens: list[Citizen]) -> None:
    text = httpx.get(url, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for value in sample.labels.values():
                assert not ID_RUN.search(value), f"{sample.name} has a label value like an ID"
    for c in citizens:
        assert c.full_name not in text


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)  # polling a condition over HTTP: the process gives no other signal
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    return list(generate_population(23, {"008": 400}))


@pytest.fixture(scope="module")
def ndxp(tmp_path_factory: pytest.TempPathFactory, population: list[Citizen]) -> Iterator[NdxpServer]:
    path = tmp_path_factory.mktemp("ndxp-metrics") / "npd.sqlite3"
    db = PopulationDB.create(path)
    try:
        db.load(population)
    finally:
        db.close()
    settings = NdxpSettings(
        database_url=f"sqlite:///{path}", api_keys={AGENCY: KEY}, access_log=False, log_level="warning"
    )
    with NdxpServer(settings) as server:
        yield server


def test_ndxp_serves_its_metrics_without_a_key(ndxp: NdxpServer, population: list[Citizen]) -> None:
    with httpx.Client(base_url=ndxp.base_url, headers={"X-API-Key": KEY}, timeout=30) as client:
        ids = [c.personal_id for c in population[:50]]
        assert client.post("/v1/citizens/verify-batch", json={"ids": ids, "purpose": "t"}).status_code == 200
        one = population[0].personal_id
        assert client.get(f"/v1/citizens/{one}", params={"purpose": "t"}).status_code == 200
        assert client.get("/v1/citizens/008190999999", params={"purpose": "t"}).status_code == 404
    response = httpx.get(f"{ndxp.base_url}/metrics", timeout=5)  # no X-API-Key
    assert response.status_code == 200
    for family in ("ndxp_requests_total", "ndxp_request_seconds", "ndxp_disclosures_total"):
        assert family in response.text
    assert "ndxp_faults_injected_total" in response.text
    metrics = scrape(f"{ndxp.base_url}/metrics")
    requests = by(metrics["ndxp_requests_total"], "route", "status")
    assert requests[("/v1/citizens/verify-batch", "200")] >= 1
    assert requests[("/v1/citizens/{personal_id}", "200")] >= 1
    assert requests[("/v1/citizens/{personal_id}", "404")] >= 1
    assert by(metrics["ndxp_disclosures_total"], "agency")[(AGENCY,)] >= 51
    assert_no_personal_data(f"{ndxp.base_url}/metrics", population)


def expected_outcomes(records: list[dict[str, Any]], population: list[Citizen]) -> Counter[tuple[str, ...]]:
    """The pure rules in publish order: (outcome, province, sector) → count."""
    npd: dict[str, Citizen] = {c.personal_id: c for c in population}
    npd.update({c.legacy_id: c for c in population if c.legacy_id})
    holders: dict[tuple[str, str, str], str] = {}
    out: Counter[tuple[str, ...]] = Counter()
    for raw in records:
        record = parse_object(raw)
        assert isinstance(record, Record)
        key, hkey = lookup_key(record), holder_key(record)
        first = holders.get(hkey) if hkey else None
        decision = decide(record, npd.get(key) if key else None, first)
        if decision.passed_identity and first is None and hkey:
            holders[hkey] = record.record_id
        out[(decision.outcome.value, record.province, record.sector)] += 1
    return out


def test_worker_metrics_over_http_match_what_was_published(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    ndxp: NdxpServer,
    population: list[Citizen],
    tmp_path: Path,
) -> None:
    topics = TopicNames(unique_name("popsync.metrics"))
    ensure_topics(kafka_bootstrap, topics.all(), 3)
    spec = GenerateSpec.model_validate(
        {
            "records": 150,
            "unsynced": {"mismatch": 3, "not_found": 2, "malformed_id": 2, "missing_fields": 2,
                         "deceased": 1, "duplicate": 2},
            "corrected": {"no_diacritics": 2, "legacy_id": 1},
        }
    )  # fmt: skip
    records = generate_records(spec, sector="insurance", province="008", citizens=population, seed=4)
    expected = expected_outcomes(records, population)

    port = free_port()
    env = {
        "POPSYNC_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAMS_APP_ID": unique_name("popsync-metrics"),
        "STREAMS_TOPIC_PREFIX": topics.prefix,
        "STREAMS_PARTITIONS": "3",
        "STREAMS_NDXP_URL": ndxp.base_url,
        "STREAMS_NDXP_API_KEY": KEY,
        "STREAMS_WORKER_ID": "worker-m1",
        "STREAMS_DATA_DIR": str(tmp_path / "worker"),
        "STREAMS_METRICS_PORT": str(port),
    }
    worker = ManagedProcess("worker-m1", popsync_command("worker"), env, tmp_path / "worker.log").start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        worker.wait_ready(lambda: httpx.get(url, timeout=1).status_code == 200, timeout=60)
        info = scrape(url)["popsync_worker_info"]
        assert info == {(("app_id", env["STREAMS_APP_ID"]), ("worker_id", "worker-m1")): 1.0}

        connector_metrics = ConnectorMetrics()
        connector_port = serve_metrics(connector_metrics.registry, 0)
        with LgspConnector(kafka_bootstrap, topics, metrics=connector_metrics) as connector:
            report = connector.publish_records([*records, {"sector": "insurance"}], "metrics-test")
        assert report.published == 150 and report.rejected == 1
        # A message that reaches the records topic without a connector, and is not a record.
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        producer.send(topics.records("insurance"), key=b"stray", value=b"{not a record").get(timeout=30)
        producer.close()

        def progress() -> int:
            return int(sum(scrape(url).get("popsync_progress_records", {}).values()))

        wait_for(lambda: progress() >= 150, 180, f"the worker's progress to reach 150 ({worker.log_tail()})")
        time.sleep(1.5)  # one more snapshot interval: nothing beyond the records may appear
        metrics = scrape(url)
        assert by(metrics["popsync_progress_records"], "outcome", "province", "sector") == expected
        # One worker, no crash: every record decided once.
        assert by(metrics["popsync_records_reconciled_total"], "outcome", "province", "sector") == expected
        lag = dict(metrics["popsync_sync_lag_seconds_count"])
        assert lag == {(("province", "008"), ("sector", "insurance")): 150.0}
        assert by(metrics["popsync_deadletter_total"], "stage") == {("worker",): 1}
        assert sum(metrics["popsync_ndxp_batch_size_count"].values()) >= 1
        assert sum(metrics["popsync_ndxp_call_seconds_count"].values()) >= 1
        assert_no_personal_data(url, population)

        published = scrape(f"http://127.0.0.1:{connector_port}/metrics")
        assert by(published["popsync_records_published_total"], "sector", "province") == {
            ("insurance", "008"): 150
        }
        assert by(published["popsync_deadletter_total"], "stage") == {("connector",): 1}
        assert sum(published["popsync_publish_seconds_count"].values()) == 1
    finally:
        worker.stop()
    assert "Traceback" not in worker.log_path.read_text(errors="replace"), worker.log_tail(40)


def test_worker_refuses_a_metrics_port_in_use(tmp_path: Path) -> None:
    taken = serve_metrics(ConnectorMetrics().registry, 0)
    env = {
        "POPSYNC_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # never reached: the port check comes first
        "STREAMS_NDXP_API_KEY": KEY,
        "STREAMS_DATA_DIR": str(tmp_path / "worker"),
        "STREAMS_METRICS_PORT": str(taken),
    }
    worker = ManagedProcess("worker-busy", popsync_command("worker"), env, tmp_path / "busy.log").start()
    try:
        assert worker.proc is not None
        assert worker.proc.wait(timeout=60) != 0
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert f"cannot serve metrics on 127.0.0.1:{taken}" in log, log[-2000:]
    assert "STREAMS_METRICS_PORT" in log
