"""The configs under deploy/: the monitoring ones checked by Prometheus's own promtool and against the metric
contract, the compose file against its README and the settings of the NDXP and the workers.

promtool comes from Debian's `prometheus` package (scripts/install-promtool.sh). Without it the promtool
tests skip, except under CI (env CI set), where they fail and say how to install it. The compose checks
run the README's `.env` recipe with bash and interpolate the compose file the way compose does (`${VAR}`,
`${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `$$`); they need no Docker engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import COMPOSE_VARIABLE, interpolate, run_env_recipe

from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.scopes import AUDIT_READ
from popsync.simulate import STREAMS_SCOPES
from streams.config import StreamsSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
ALERTS_YML = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST_YML = PROMETHEUS_DIR / "alerts_test.yml"
DASHBOARD_JSON = ROOT / "deploy" / "grafana" / "popsync-dashboard.json"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
COMPOSE_YML = ROOT / "deploy" / "docker-compose.yml"
DEPLOY_README = ROOT / "deploy" / "README.md"

# The metric names the workers, connectors, NDXP mock and lag monitor export (the contract of issue 5).
HISTOGRAMS = {
    "popsync_sync_lag_seconds",
    "popsync_ndxp_call_seconds",
    "popsync_ndxp_batch_size",
    "popsync_publish_seconds",
    "ndxp_request_seconds",
}
CONTRACT_METRICS = {
    "popsync_records_reconciled_total",
    "popsync_progress_records",
    "popsync_ndxp_retries_total",
    "popsync_ndxp_errors_total",
    "popsync_deadletter_total",
    "popsync_worker_info",
    "popsync_records_published_total",
    "ndxp_requests_total",
    "ndxp_disclosures_total",
    "ndxp_faults_injected_total",
    "popsync_consumer_lag_offsets",
    "popsync_consumer_lag_seconds",
    "popsync_consumer_status",
    "popsync_consumer_group_status",
} | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
METRIC_NAME = re.compile(r"\b(?:popsync|ndxp)_[a-z0-9_]+\b")

# Labels an alert may print: all of them name systems, places or partitions, never a citizen.
SAFE_LABELS = {"sector", "province", "outcome", "group", "topic", "partition", "status", "stage", "kind"}
SAFE_LABELS |= {"job", "instance", "route"}

# Grafana's built-in interval variables, with a duration promtool accepts in their place.
GRAFANA_DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of promtool; skip without it, unless under CI, where its absence is a failure."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed: run scripts/install-promtool.sh (as root)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def promtool_output(promtool: str, *args: str | Path) -> tuple[int, str]:
    """Exit code and output (stdout, then stderr) of one promtool run."""
    command = [promtool, *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def run_promtool(promtool: str, *args: str | Path) -> str:
    """Run promtool and return its output; fail the test with that output when it exits non-zero."""
    returncode, output = promtool_output(promtool, *args)
    assert returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS_YML)["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    with DASHBOARD_JSON.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of the dashboard."""
    data = dashboard()
    for panel in walk_panels(data["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['id']} {panel['title']!r} target {target['refId']}", target["expr"]
    for variable in data["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            # label_values(SELECTOR, label) is Grafana's, not PromQL: its selector is what Prometheus runs.
            match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            yield f"variable {variable['name']}", match.group(1) if match else query


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by values Prometheus can parse."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        # template variables only ever stand inside a quoted regex matcher, where `.*` (All) fits
        return GRAFANA_DURATIONS.get(name, ".*")

    return GRAFANA_VARIABLE.sub(value, expr)


# --------------------------------------------------------------------------- promtool


def test_prometheus_config_is_valid(promtool: str) -> None:
    output = run_promtool(promtool, "check", "config", PROMETHEUS_YML)
    assert "SUCCESS" in output


def test_alert_rules_are_valid(promtool: str) -> None:
    output = run_promtool(promtool, "check", "rules", "--lint-fatal", ALERTS_YML)
    assert f"SUCCESS: {len(alert_rules())} rules found" in output


def test_alert_rules_unit_tests_pass(promtool: str) -> None:
    output = run_promtool(promtool, "test", "rules", ALERTS_TEST_YML)
    assert "SUCCESS" in output and "FAILED" not in output


def test_every_dashboard_query_parses_as_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule: a PromQL syntax error fails `check rules`."""
    queries = list(dashboard_queries())
    rules = [
        {"record": f"grafana:query_{i}:check", "expr": as_promql(expr)} for i, (_, expr) in enumerate(queries)
    ]
    rules_file = tmp_path / "dashboard-promql.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}), encoding="utf-8")
    returncode, output = promtool_output(promtool, "check", "rules", rules_file)
    if returncode != 0:
        listing = "\n".join(f"  query_{i}: {where}: {expr}" for i, (where, expr) in enumerate(queries))
        pytest.fail(f"promtool rejects a dashboard query:\n{output}\nqueries:\n{listing}")
    assert f"SUCCESS: {len(rules)} rules found" in output


def test_grafana_variables_are_replaced_for_promtool() -> None:
    assert (
        as_promql('sum(rate(x{province=~"$province",sector=~"${sector:regex}"}[$__rate_interval]))')
        == 'sum(rate(x{province=~".*",sector=~".*"}[5m]))'
    )
    assert as_promql("increase(x[$__range])") == "increase(x[1h])"


# --------------------------------------------------------------------------- metric contract, alert hygiene


def test_alerts_and_dashboard_use_only_contract_metrics() -> None:
    used = {name: "alerts.yml" for rule in alert_rules() for name in METRIC_NAME.findall(rule["expr"])}
    used |= {name: where for where, expr in dashboard_queries() for name in METRIC_NAME.findall(expr)}
    unknown = {name: where for name, where in used.items() if name not in CONTRACT_METRICS}
    assert not unknown, f"metric names outside the contract: {unknown}"


def test_every_alert_has_severity_and_safe_annotations() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules), "duplicate alert names"
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        text = " ".join([*rule["annotations"].values(), *rule["labels"].values()])
        printed = set(re.findall(r"\$labels\.(\w+)", text))
        assert printed <= SAFE_LABELS, f"{rule['alert']} prints labels {printed - SAFE_LABELS}"
        assert not re.search(r"personal_id|full_name|date_of_birth|legacy_id", text), rule["alert"]


def test_every_alert_is_tested_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for test in load_yaml(ALERTS_TEST_YML)["tests"]:
        for case in test.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


def test_prometheus_scrapes_every_component_and_loads_the_alerts() -> None:
    config = load_yaml(PROMETHEUS_YML)
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"popsync-worker", "ndxp", "popsync-lag-monitor"} <= jobs
    assert [PROMETHEUS_DIR / f for f in config["rule_files"]] == [ALERTS_YML]


# --------------------------------------------------------------------------- Grafana dashboard


def test_dashboard_is_a_grafana_dashboard_with_datasource_and_filters() -> None:
    data = dashboard()
    assert data["uid"] and data["title"]
    assert data["schemaVersion"] >= 39
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("province", "sector"):
        assert variables[name]["type"] == "query"
        assert variables[name]["multi"] and variables[name]["includeAll"]


def test_dashboard_panels_use_the_datasource_variable_and_fit_the_grid() -> None:
    data = dashboard()
    panels = list(walk_panels(data["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    panels = [p for p in walk_panels(dashboard()["panels"]) if p["type"] != "row"]
    kinds = {p["type"] for p in panels}
    assert {"bargauge", "timeseries", "table", "stat"} <= kinds
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for needle in (
        'outcome=~"cleaned|corrected"',  # synced / total progress bars
        "rate(popsync_records_reconciled_total",  # throughput
        "rate(popsync_records_published_total",
        "histogram_quantile(0.99, sum by (le) (rate(popsync_sync_lag_seconds_bucket",  # lag p99
        "popsync_consumer_lag_offsets",
        "popsync_consumer_lag_seconds",
        "popsync_consumer_status",
        "ndxp_request_seconds_bucket",
        "popsync_ndxp_errors_total",
        "popsync_deadletter_total",
    ):
        assert needle in exprs, needle
    stacked = [
        p
        for p in panels
        if p["fieldConfig"]["defaults"].get("custom", {}).get("stacking", {}).get("mode") == "normal"
    ]
    assert any("outcome" in t["expr"] for p in stacked for t in p["targets"]), "no stacked outcome panel"
    filtered = [t["expr"] for p in panels for t in p["targets"] if "popsync_progress_records" in t["expr"]]
    assert all('province=~"$province"' in e and 'sector=~"$sector"' in e for e in filtered)


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    datasource = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")
    assert [d["type"] for d in datasource["datasources"]] == ["prometheus"]
    provider = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "popsync.yml")
    assert provider["providers"][0]["type"] == "file"


# --------------------------------------------------------------------------- docker compose


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_YML)
    return data


def service_env(service: str, env: dict[str, str]) -> dict[str, str]:
    """The environment compose gives `service`, with `env` as deploy/.env."""
    raw = compose()["services"][service]["environment"]
    return {name: interpolate(str(value), env) for name, value in raw.items()}


def compose_variables() -> dict[str, str | None]:
    """Every variable the compose file reads (environment or .env): name → its operator (`:?`, `-`, …)."""
    found: dict[str, str | None] = {}
    for match in COMPOSE_VARIABLE.finditer(COMPOSE_YML.read_text(encoding="utf-8")):
        name = match.group(1) or match.group(4)
        if name:
            found[name] = found.get(name) or match.group(2)
    return found


@pytest.fixture(scope="module")
def documented_deploy(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """deploy/.env as the README's recipe writes it (run with bash), and the directory it wrote."""
    return run_env_recipe(tmp_path_factory.mktemp("compose"))


@pytest.fixture(scope="module")
def documented_env(documented_deploy: tuple[dict[str, str], Path]) -> dict[str, str]:
    return documented_deploy[0]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No NDXP_/STREAMS_/POPSYNC_ variable of the test's own environment reaches the settings."""
    for name in list(os.environ):
        if name.startswith(("NDXP_", "STREAMS_", "POPSYNC_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:?m} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $$HOME $SET", env) == "x d d  $HOME x"
    with pytest.raises(pytest.fail.Exception, match="UNSET is missing a value: say so"):
        interpolate("${UNSET:?say so}", env)


def test_compose_requires_exactly_the_secrets_the_readme_recipe_writes(
    documented_env: dict[str, str],
) -> None:
    required = {name for name, op in compose_variables().items() if op in ("?", ":?")}
    assert required == set(documented_env), "compose's required variables and the README's .env differ"
    assert {"NDXP_CLIENTS", "NDXP_TOKEN_SECRET", "STREAMS_NDXP_CLIENT_SECRET"} <= required


def test_every_compose_variable_is_in_the_readme_settings_table() -> None:
    text = DEPLOY_README.read_text(encoding="utf-8")
    section = text.split("### Settings (environment or `deploy/.env`)", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"`(\w+)`", section))
    assert set(compose_variables()) - documented == set(), "compose variables missing from the README's table"


def test_compose_uses_oauth_clients_not_api_keys() -> None:
    services = compose()["services"]
    worker, ndxp = services["worker"]["environment"], services["ndxp-1"]["environment"]
    assert "STREAMS_NDXP_API_KEY" not in worker
    assert {"STREAMS_NDXP_CLIENT_ID", "STREAMS_NDXP_CLIENT_SECRET"} <= set(worker)
    # Unset, the deprecated keys would be the built-in development ones: production refuses those.
    assert ndxp["NDXP_API_KEYS"] == ndxp["NDXP_AUDITOR_KEYS"] == "{}"
    assert "STREAMS_NDXP_API_KEY" not in compose_variables()


def test_documented_env_is_accepted_by_the_ndxp_and_the_workers(
    documented_env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    ndxp_env, worker_env = service_env("ndxp-1", documented_env), service_env("worker", documented_env)
    # The PostgreSQL URL is test_deploy_compose.py's to check (it waits for the PostgreSQL stores).
    ndxp_env["NDXP_DATABASE_URL"] = "sqlite:///unused.sqlite3"
    for name, value in ndxp_env.items():
        clean_env.setenv(name, value)
    ndxp = NdxpSettings()
    for name in ndxp_env:
        clean_env.delenv(name)
    for name, value in worker_env.items():
        clean_env.setenv(name, value)
    worker = StreamsSettings()

    assert ndxp.environment == "production"
    assert not ndxp.api_keys and not ndxp.auditor_keys
    client = ndxp.oauth_clients[worker.ndxp_client_id]
    assert client.secret.get_secret_value() == worker.ndxp_client_secret.get_secret_value()
    missing = set(STREAMS_SCOPES) - set(client.scopes)
    assert not missing, f"the workers' client {worker.ndxp_client_id!r} lacks the scopes {sorted(missing)}"
    asked = set(worker.ndxp_scope.split())
    assert set(STREAMS_SCOPES) <= asked <= set(client.scopes), "the workers would ask for scopes not granted"
    auditors = {agency for agency, c in ndxp.oauth_clients.items() if AUDIT_READ in c.scopes}
    assert auditors and all(ndxp.oauth_clients[a].scopes == (AUDIT_READ,) for a in auditors)
    assert not worker.ndxp_api_key.get_secret_value()
