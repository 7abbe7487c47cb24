"""The live dashboard: served locally, and read in headless Chromium while a scenario runs on real Kafka.

Chromium is Debian's (/usr/bin/chromium, `scripts/install-chromium.sh`), driven by Playwright through
`executable_path`: no browser is ever downloaded. The screenshot is kept in test-artifacts/dashboard.png.
The scenario has a civil-status source (its births and deaths start linked procedures, whose children's
cards make a source nobody published) and a labour source with a cleansing loop, so the page's chain and
cleansing panels are checked against the summary too.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from popsync.collector import RecordResult
from popsync.dashboard import DashboardServer, RunView
from popsync.report import report_line, seconds, vn_int, vn_percent
from popsync.simulate import Run, RunOptions, run_scenario

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Without the background-networking flags Chromium reaches out to Google's services, which a closed
# network refuses; the page itself needs nothing but the dashboard's own server.
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SCENARIO = """\
name: dashboard
seed: 7
partitions: 3
population:
  generate: {"008": 3000, "052": 2400, "019": 6000}
sources:
  - sector: insurance
    province: "008"
    rate: 600
    generate:
      records: 2400
      unsynced: {mismatch: 30, not_found: 20, malformed_id: 12, missing_fields: 10, deceased: 8, duplicate: 6}
      corrected: {no_diacritics: 40, legacy_id: 10}
  - sector: labour
    province: "052"
    rate: 600
    generate:
      records: 1800
      unsynced: {mismatch: 15, not_found: 10, moved: 25, deceased: 5, missing_fields: 12}
      corrected: {no_diacritics: 20}
    cleansing:
      missing_fields: {share: 1.0, after_s: 0.5}
      mismatch: {share: 0.5, after_s: 1}
  - sector: civil_status
    province: "019"
    rate: 20
    generate:
      births: 30
      deaths: 10
      marriages: 4
      unsynced: {missing_fields: 2, duplicate: 2}
"""
PUBLISHED = {("insurance", "008"): 2400, ("labour", "052"): 1800}
CARDS = "insurance-019"  # the children's cards the birth chains of 019 make: a total not known in advance

# Every source card's figures as the page shows them.
READ_FIGURES = """() => Array.from(document.querySelectorAll('[data-source]')).map((card) => {
  const text = (id) => card.querySelector(`[data-testid="${id}"]`).textContent;
  const outcomes = {};
  for (const row of card.querySelectorAll('tr[data-outcome]')) {
    outcomes[row.dataset.outcome] = row.querySelector('[data-testid="outcome-count"]').textContent;
  }
  return {
    id: card.dataset.source, reconciled: text('reconciled'), synced: text('synced'),
    unsynced: text('unsynced'), ratio: text('ratio'), percent: text('percent'),
    report_line: text('report-line'), outcomes,
  };
})"""
RUN_RECONCILED = "Number(document.querySelector('[data-testid=\"run-reconciled\"]').dataset.value || 0)"
# The linked procedures and the cleansing loops as the page shows them.
READ_PANELS = """() => {
  const text = (card, id) => card.querySelector(`[data-testid="${id}"]`).textContent;
  const read = (card, ids) => Object.fromEntries(ids.map((id) => [id, text(card, id)]));
  const chains = Array.from(document.querySelectorAll('[data-chain]')).map((card) => ({
    id: card.dataset.chain, name: card.querySelector('h3').firstChild.textContent.trim(),
    ...read(card, ['chain-started', 'chain-completed', 'chain-stalled', 'chain-in-progress', 'chain-median']),
  }));
  const cleansing = Array.from(document.querySelectorAll('[data-cleansing]')).map((card) => ({
    id: card.dataset.cleansing,
    ...read(card, ['cleansing-tasks', 'cleansing-republished', 'cleansing-fixed']),
    kinds: Object.fromEntries(Array.from(card.querySelectorAll('[data-testid="cleansing-kind"]')).map(
      (row) => [row.dataset.outcome, row.querySelector('[data-testid="kind-fixed"]').textContent])),
  }));
  const bars = Object.fromEntries(Array.from(document.querySelectorAll('[data-source]')).map((card) => [
    card.dataset.source, !card.querySelector('[data-testid="progress"]').hidden]));
  return {chains, cleansing, bars};
}"""
CHAIN_NAMES = {
    "birth": "“Đăng ký khai sinh - Đăng ký thường trú - Cấp thẻ BHYT cho trẻ em dưới 6 tuổi”",
    "death": "“Đăng ký khai tử - Xóa đăng ký thường trú - Trợ cấp mai táng phí”",
}


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium.sh (as root) before the tests")
    pytest.skip(f"{CHROMIUM} is missing; scripts/install-chromium.sh installs Debian's chromium")


def expected_figures(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """What the page must show for each source once the run is over: the summary in the seeds' format."""
    return sorted(
        [
            {
                "id": f"{t['sector']}-{t['province']}",
                "reconciled": vn_int(t["total"]),
                "synced": vn_int(t["synced"]),
                "unsynced": vn_int(t["unsynced"]),
                "ratio": f"{vn_int(t['synced'])}/{vn_int(t['total'])}",
                "percent": vn_percent(t["synced"], t["total"]),
                "report_line": report_line(t),
                "outcomes": {name: vn_int(n) for name, n in t["outcomes"].items()},
            }
            for t in [*summary["totals"], *_card_totals(summary)]
        ],
        key=lambda f: f["id"],
    )


def _card_totals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The children's cards (the summary's `chain_cards`, kept out of its totals) as the page's sources."""
    return [
        {
            "sector": "insurance",
            "province": c["province"],
            "total": c["cards"],
            "synced": c["cards_synced"],
            "unsynced": c["cards"] - c["cards_synced"],
            "outcomes": c["outcomes"],
        }
        for c in summary.get("chain_cards", [])
    ]


def expected_panels(summary: dict[str, Any]) -> dict[str, Any]:
    """The chain and cleansing panels the page must show: the summary's `chains` and `cleansing`."""
    chains = [
        {
            "id": f"{c['province']}-{c['kind']}",
            "name": CHAIN_NAMES[c["kind"]],
            "chain-started": vn_int(c["started"]),
            "chain-completed": vn_int(c["completed"]),
            "chain-stalled": vn_int(c["stalled"]),
            "chain-in-progress": vn_int(c["in_progress"]),
            "chain-median": f"{seconds(c['duration_s']['p50'])} giây" if c["completed"] else "—",
        }
        for c in summary.get("chains", [])
    ]
    cleansing = [
        {
            "id": f"{e['sector']}-{e['province']}",
            "cleansing-tasks": vn_int(e["tasks"]),
            "cleansing-republished": vn_int(e["republished"]),
            "cleansing-fixed": vn_int(e["fixed"]),
            "kinds": {
                k: f"{vn_int(n)}/{vn_int(e['tasks_by_outcome'][k])}"
                for k, n in e["fixed_by_outcome"].items()
                if n > 0
            },
        }
        for e in summary.get("cleansing", [])
    ]
    bars = {
        f"{t['sector']}-{t['province']}": f"{t['sector']}-{t['province']}" != CARDS
        for t in [*summary["totals"], *_card_totals(summary)]
    }
    return {"chains": chains, "cleansing": cleansing, "bars": bars}


class BrowserDriver(threading.Thread):
    """Chromium on the dashboard during the run (Playwright's sync API stays on this one thread).

    Launches first, then waits for the URL (given by the run's `on_running` hook), watches the figures
    appear and change, then waits for the summary's figures (given once `run_scenario` returns).
    """

    def __init__(self, screenshot: Path) -> None:
        super().__init__(name="dashboard-browser", daemon=True)
        self.screenshot = screenshot
        self.url: queue.Queue[str | None] = queue.Queue()
        self.expected: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.live: list[int] = []  # run-wide reconciled counts seen while the run went on
        self.final: dict[str, Any] = {}
        self.consumer_rows = 0
        self.same_page = False
        self.page_errors: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._drive()
        except BaseException as exc:  # raised again by the test's thread
            self.error = exc

    def _drive(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
                url = self.url.get(timeout=600)
                if url is None:
                    return
                page.goto(url)
                page.evaluate("window.popsyncMarker = 'loaded once'")
                # live: the figures appear, then move on without a reload
                page.wait_for_function(f"() => {RUN_RECONCILED} > 0", timeout=300_000)
                first = page.evaluate(f"() => {RUN_RECONCILED}")
                page.wait_for_function(f"(first) => {RUN_RECONCILED} > first", arg=first, timeout=300_000)
                self.live = [first, page.evaluate(f"() => {RUN_RECONCILED}")]
                expected = self.expected.get(timeout=600)
                if expected is None:
                    return
                total = sum(int(e["reconciled"].replace(".", "")) for e in expected["sources"])
                page.wait_for_function(
                    f"(total) => {RUN_RECONCILED} === total"
                    " && document.querySelector('[data-testid=\"run-status\"]').dataset.status === 'done'",
                    arg=total,
                    timeout=60_000,
                )
                # The last fixes and chain steps may reach the page a refresh after the totals did.
                deadline = time.monotonic() + 30
                while True:
                    self.final = {"sources": sorted(page.evaluate(READ_FIGURES), key=lambda f: f["id"])}
                    self.final.update(page.evaluate(READ_PANELS))
                    if self.final == expected or time.monotonic() > deadline:
                        break
                    time.sleep(0.25)
                self.same_page = page.evaluate("window.popsyncMarker") == "loaded once"
                self.consumer_rows = page.locator('[data-testid="consumers"] tbody tr').count()
                self.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(self.screenshot), full_page=True)
            finally:
                browser.close()


def test_dashboard_shows_a_live_run_and_its_final_figures(kafka_bootstrap: str, tmp_path: Path) -> None:
    _require_chromium()
    from popsync.lagwatch import LagMonitor

    scenario = tmp_path / "dashboard.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    driver = BrowserDriver(ARTIFACTS / "dashboard.png")
    driver.start()
    started: list[Any] = []

    def open_dashboard(run: Run) -> None:
        # The published totals are known once the run has published (as simulate's own bars learn them).
        monitor = LagMonitor(
            run.bootstrap_servers, group_prefix=f"popsync-{run.topics.prefix}", interval_s=1.0
        )
        monitor.start()
        started.append(monitor)
        scenario_sources = run.scenario.sources
        view = RunView(
            run.collector,
            totals=lambda: run.published_by_source,
            lag_monitor=monitor,
            sources=[(s.sector.value, s.province) for s in scenario_sources],
            cleansing=[(s.sector.value, s.province) for s in scenario_sources if s.cleansing is not None],
        )
        server = DashboardServer(view)
        started.append(server)
        driver.url.put(server.start())

    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        on_running=open_dashboard,
        summary=tmp_path / "summary.json",
        timeout_s=600,
    )
    try:
        outcome = run_scenario(scenario, options, Console(file=io.StringIO(), width=120))
        driver.expected.put(
            {"sources": expected_figures(outcome.summary), **expected_panels(outcome.summary)}
        )
        driver.join(timeout=180)
    finally:
        driver.url.put(None)
        driver.expected.put(None)
        for part in reversed(started):
            part.stop()
    if driver.error is not None:
        raise driver.error
    assert not driver.is_alive(), "the browser did not finish"
    assert driver.page_errors == []
    summary = outcome.summary
    assert outcome.problems == []
    totals = {(t["sector"], t["province"]): t["total"] for t in summary["totals"]}
    assert {s: totals[s] for s in PUBLISHED} == PUBLISHED
    assert set(totals) == {*PUBLISHED, ("civil_status", "019")}  # the cards are in `chain_cards`
    assert [c["province"] for c in summary["chain_cards"]] == ["019"]
    chains = {(c["province"], c["kind"]): c for c in summary["chains"]}
    assert set(chains) == {("019", "birth"), ("019", "death")}
    assert all(c["completed"] > 0 and c["in_progress"] == 0 for c in chains.values())
    (loop,) = summary["cleansing"]
    assert (loop["sector"], loop["province"], loop["fixed"]) == ("labour", "052", 12 + 8)
    first, later = driver.live
    assert 0 < first < later, "the page's figures moved while the run went on"
    assert first < sum(totals.values()), "the page was read before the run was over"
    assert driver.same_page, "the figures updated without a page reload"
    assert driver.final["sources"] == expected_figures(summary)
    assert driver.final["chains"] == expected_panels(summary)["chains"]
    assert driver.final["cleansing"] == expected_panels(summary)["cleansing"]
    assert driver.final["bars"] == expected_panels(summary)["bars"], "no progress bar for the cards"
    assert driver.consumer_rows > 0, "the workers' consumer group is in the status table"
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


class _StillCollector:
    """A collector that holds a finished run's results (no broker needed to serve the page)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results = {f"insurance|008|r{i}": RecordResult("cleaned", (), 120) for i in range(30)}
        self.results["insurance|008|r30"] = RecordResult("unsynced/deceased", (), 150)
        self.per_source = Counter({("insurance", "008"): 31})
        self.synced_per_source = Counter({("insurance", "008"): 30})
        self.rejected: dict[str, Any] = {}


def test_server_serves_the_page_its_files_and_the_state_locally() -> None:
    view = RunView(_StillCollector(), totals=lambda: {("insurance", "008"): 31})
    with DashboardServer(view) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        url = server.url
        assert client.get("/health").json() == {"status": "ok"}
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert "/static/app.js" in assets and "/static/style.css" in assets
        assert [a for a in assets if a.startswith(("http:", "https:", "//"))] == [], "works offline"
        for asset in ("/static/app.js", "/static/style.css"):
            assert client.get(asset).status_code == 200
        state = client.get("/api/state")
        assert state.headers["cache-control"] == "no-store"
        (source,) = state.json()["sources"]
        assert source["texts"]["report_line"] == (
            "Bảo hiểm (008): 30/31 bản ghi đã làm sạch, đạt 96,77%; chưa đồng bộ 1 (3,23%)"
        )
        assert state.json()["status"] == "done"
        assert client.get("/static/missing.js").status_code == 404
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}health", timeout=1)


# `popsync dashboard` as its own program: the command `register` adds, on a Typer app of its own
# (popsync/cli.py wires it into `popsync`).
COMMAND = """
import sys, typer
from popsync.dashboard.cli import register
app = typer.Typer()
@app.callback()
def main() -> None: pass
register(app)
try:
    app()
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_dashboard_command_serves_a_deployments_results(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    import json as _json

    from kafka import KafkaProducer

    from streams.topics import TopicNames, ensure_topics

    topics = TopicNames(unique_name("dash"))
    ensure_topics(kafka_bootstrap, topics.all(), 2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i, outcome in enumerate(["cleaned", "cleaned", "corrected", "unsynced/moved"]):
        body = {"sector": "labour", "province": "052", "outcome": outcome, "fields": [],
                "published_ms": 1_000, "decided_ms": 1_250}  # fmt: skip
        producer.send(topics.results, key=f"labour|052|R-{i}".encode(), value=_json.dumps(body).encode())
    producer.flush(timeout=30)
    producer.close()

    command = [sys.executable, "-c", COMMAND, "dashboard", "--topic-prefix", topics.prefix, "--port", "0"]
    env = {**os.environ, "POPSYNC_BOOTSTRAP_SERVERS": kafka_bootstrap}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        assert match, f"no URL in {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        url = match.group(1)
        deadline = time.monotonic() + 60
        state = httpx.get(f"{url}api/state", timeout=5).json()
        while not state["sources"] and time.monotonic() < deadline:
            time.sleep(0.2)  # the page's own cadence: one snapshot a second
            state = httpx.get(f"{url}api/state", timeout=5).json()
        (source,) = state["sources"]
        assert source["texts"]["report_line"] == (
            "Người lao động (052): 3/4 bản ghi đã làm sạch, đạt 75,00%; chưa đồng bộ 1 (25,00%)"
        )
        assert state["consumers"]["available"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dashboard_command_names_a_wrong_prefix(kafka_bootstrap: str) -> None:
    command = [sys.executable, "-c", COMMAND, "dashboard", "--topic-prefix", "no-such-prefix"]
    env = {**os.environ, "POPSYNC_BOOTSTRAP_SERVERS": kafka_bootstrap}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode != 0
    assert "no topic no-such-prefix.results" in done.stderr
