"""A 10,000-line adversarial corpus through `simulate` on the real broker: it ends, every line accounted for.

The corpus (`connectors.adversarial`) mixes 6,000 generated records (insurance and labour, with defects of
every kind) with 4,000 hostile lines. The run must end (no timeout), every non-empty line must end as
exactly one outcome or one `rejected` with a reason, the outcomes must be those the pure rules give one
line at a time (a repeated record_id rejected, as the connector does), and nothing a citizen is known by
may reach the terminal, a log, a metrics scrape (connector and lag, NDXP, workers), a dead-letter reason
or the summary (issue "No input and no fault stops a run": the PII scan).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from rich.console import Console
from simulate_oracle import assert_matches_oracle, assert_no_personal_data, expected_outcomes, read_results

from connectors.adversarial import adversarial_lines, write_corpus
from connectors.generate import GenerateSpec, generate_records
from mocks.ndxp.population import generate_population, write_population
from popsync.simulate import Run, RunOptions, run_scenario

pytestmark = pytest.mark.integration

LINES = 10_000
INSURANCE = {
    "records": 4500,
    "unsynced": {
        "mismatch": 60,
        "not_found": 40,
        "malformed_id": 30,
        "missing_fields": 30,
        "deceased": 20,
        "duplicate": 30,
    },
    "corrected": {"no_diacritics": 40, "legacy_id": 20},
}
LABOUR = {
    "records": 1500,
    "unsynced": {"mismatch": 20, "not_found": 10, "missing_fields": 10, "deceased": 10, "moved": 20},
    "corrected": {"no_diacritics": 10, "legacy_id": 10},
}


@pytest.mark.timeout(900)
def test_an_adversarial_corpus_ends_with_every_line_accounted_for(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    citizens = list(generate_population(23, {"008": 9000, "052": 3000}))
    write_population(tmp_path / "population.jsonl", citizens)
    in_008 = [c for c in citizens if c.permanent_province == "008"]
    in_052 = [c for c in citizens if c.permanent_province == "052"]
    good = generate_records(
        GenerateSpec.model_validate(INSURANCE), sector="insurance", province="008", citizens=in_008, seed=5
    ) + generate_records(
        GenerateSpec.model_validate(LABOUR),
        sector="labour",
        province="052",
        citizens=in_052,
        other_citizens=in_008,
        seed=6,
    )
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus, adversarial_lines(good, LINES, seed=13))
    scenario = tmp_path / "adversarial.yaml"
    scenario.write_text(
        "name: adversarial\nseed: 3\npopulation:\n  file: population.jsonl\n"
        'sources:\n  - {sector: insurance, province: "008", file: corpus.jsonl}\n',
        encoding="utf-8",
    )
    expected = expected_outcomes(citizens, [corpus])
    non_empty = sum(
        1 for line in corpus.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.rstrip(b"\r")
    )
    assert expected.lines == non_empty
    assert len(expected.outcomes) + len(expected.rejected) == non_empty
    assert len(expected.outcomes) > len(good) and len(expected.rejected) > 1000  # hostile lines of both ends

    results, summary_path = tmp_path / "results.jsonl", tmp_path / "summary.json"
    scrapes: dict[str, str] = {}
    stop = threading.Event()

    def scrape(run: Run) -> None:
        # Every metrics endpoint of the run, read over and over while it runs: the last reading is kept.
        def loop() -> None:
            urls = {f"worker-{i}": f"http://127.0.0.1:{p}/metrics" for i, p in run.metrics_ports.items()}
            urls["ndxp"] = f"{run.ndxp_url}/metrics"
            while not stop.wait(0.5):
                for name, url in urls.items():
                    with contextlib.suppress(
                        httpx.HTTPError
                    ):  # a worker restarting: the next reading will do
                        scrapes[name] = httpx.get(url, timeout=5).text
                scrapes["connector"] = generate_latest(run.connector_metrics.registry).decode()
                if run.lag_monitor is not None:
                    scrapes["lag"] = generate_latest(run.lag_monitor.registry).decode()

        threading.Thread(target=loop, daemon=True).start()

    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=results,
        summary=summary_path,
        timeout_s=600,
        workdir=tmp_path / "run",
        on_running=scrape,
    )
    terminal = io.StringIO()
    try:
        with caplog.at_level(logging.INFO):
            outcome = run_scenario(scenario, options, Console(file=terminal, width=120))
    finally:
        stop.set()
    assert outcome.problems == []

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert_matches_oracle(summary, results, expected.outcomes, len(expected.rejected))
    rows = read_results(results)
    dead = [r for r in rows if r["outcome"] == "rejected"]
    assert sorted(r["origin"] for r in dead) == sorted(expected.rejected), (
        "each rejected line once, by its origin"
    )
    assert all(isinstance(r["reason"], str) and r["reason"] for r in dead), "every dead letter has a reason"
    assert sum(outcome.stream_counts.values()) == len(expected.outcomes), "the workers' own counts agree"
    assert {"worker-1", "ndxp", "connector", "lag"} <= set(scrapes), sorted(scrapes)
    assert_no_personal_data(
        [
            terminal.getvalue(),
            caplog.text,
            *(p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "run").glob("*.log")),
            *scrapes.values(),
            *(r["reason"] for r in dead),
            summary_path.read_text(encoding="utf-8"),
        ],
        citizens,
    )
