"""deploy/k8s/ rendered by kustomize and checked offline: against the Kubernetes schemas
(kubernetes-validate, which bundles them), by checkov's policies, and against what the services accept.

The renderer is the kustomize command (scripts/install-kustomize.sh builds it from its Go module into
~/.cache/popsync/bin when neither it nor kubectl is installed) or `kubectl kustomize`; checkov lives in a
venv of its own (scripts/install-checkov.sh). Without them the tests skip, except under CI (env CI set),
where they fail and say which script installs them. Each popsync container's command runs as in
test_deploy_compose.py: shell scripts under the real sh with recording stand-ins, every popsync command
line through popsync's own parser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import (
    IMAGE_UTILITIES,
    CommandError,
    Invocation,
    metrics_endpoint,
    parse,
    run_recorded,
    served_paths,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DEPLOY_README = ROOT / "deploy" / "README.md"
TOOLS_BIN = Path.home() / ".cache" / "popsync" / "bin"
# The oldest Kubernetes still in support when this was written, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def missing(tool: str, script: str) -> None:
    message = f"{tool} is not installed: run scripts/{script}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def renderer() -> list[str] | None:
    """The command that renders a kustomization, or None."""
    for candidate in (TOOLS_BIN / "kustomize", shutil.which("kustomize")):
        if candidate and Path(candidate).is_file():
            return [str(candidate), "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        done = subprocess.run([kubectl, "kustomize", "--help"], capture_output=True, timeout=60, check=False)
        if done.returncode == 0:
            return [kubectl, "kustomize"]
    return None


@pytest.fixture(scope="module")
def rendered_text() -> str:
    command = renderer()
    if command is None:
        missing("kustomize (or kubectl)", "install-kustomize.sh")
    assert command is not None
    done = subprocess.run([*command, str(K8S)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(command)} {K8S} failed:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def resources(rendered_text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered_text) if doc]


def by_kind(resources: list[dict[str, Any]], *kinds: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] in kinds}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return spec


def expand(value: str, env: dict[str, str]) -> str:
    """`$(NAME)` replaced by the variable's value, as the kubelet does in env values, command and args."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def container_env(container: dict[str, Any], pod: str) -> dict[str, str]:
    """The container's environment as the kubelet makes it: a Secret's value stands in as a word,
    `$(NAME)` expands to an earlier variable."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            value = expand(str(item["value"]), env)
        elif "secretKeyRef" in item.get("valueFrom", {}):
            value = f"secret-{item['valueFrom']['secretKeyRef']['key'].lower()}"
        else:
            value = f"{pod}-7d9f8-abcde"  # fieldRef metadata.name
        env[item["name"]] = value
    return env


def is_popsync(container: dict[str, Any]) -> bool:
    return str(container["image"]).startswith("popsync:")


@pytest.fixture(scope="module")
def programs(
    resources: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[dict[str, str], list[Invocation]]]:
    """Per popsync workload: its container's environment and the programs it starts, parsed."""
    found = {}
    for name, workload in by_kind(resources, *WORKLOADS).items():
        for container in containers(workload):
            if not is_popsync(container):
                continue
            env = container_env(container, name)
            # The image's ENTRYPOINT is popsync: `command` replaces it, `args` its CMD.
            argv = [
                *container.get("command", ["popsync"]),
                *(expand(a, env) for a in container.get("args", [])),
            ]
            invocations = []
            for run in run_recorded(argv, env, tmp_path_factory.mktemp(name)):
                if run[0] in IMAGE_UTILITIES:
                    continue
                try:
                    invocations.append(parse(run, env))
                except CommandError as exc:
                    pytest.fail(f"{workload['kind']} {name}: {exc}")
            found[name] = (env, invocations)
    return found


# --------------------------------------------------------------------------- schemas and shape


def test_the_manifests_match_the_kubernetes_schemas(resources: list[dict[str, Any]]) -> None:
    assert len(resources) >= 15
    for version in KUBERNETES_VERSIONS:
        for resource in resources:
            where = f"{resource['kind']}/{resource['metadata']['name']} on Kubernetes {version}"
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where}: {exc.message} at {'.'.join(map(str, exc.path))}")


def test_a_schema_error_is_caught() -> None:
    """The check itself: a misspelt field of a Deployment is refused (strict) and a wrong type too."""
    path = K8S / "lag-monitor.yaml"
    deployment = yaml.safe_load(path.read_text(encoding="utf-8"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    deployment = yaml.safe_load(path.read_text(encoding="utf-8"))
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_the_cluster_has_every_part_of_issue_12(resources: list[dict[str, Any]]) -> None:
    statefulsets = by_kind(resources, "StatefulSet")
    deployments = by_kind(resources, "Deployment")
    assert statefulsets["kafka"]["spec"]["replicas"] == 3
    kafka_env = {e["name"]: e.get("value") for e in containers(statefulsets["kafka"])[0]["env"]}
    assert kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@kafka-") == 3
    assert kafka_env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert str(containers(statefulsets["postgres"])[0]["image"]).startswith("postgres:")
    assert deployments["ndxp"]["spec"]["replicas"] == 2
    assert deployments["worker"]["spec"]["replicas"] >= 2
    assert {"vneid", "vneid-relay", "lag-monitor"} <= set(deployments)
    assert "npd-seed" in by_kind(resources, "Job")
    assert all(r["metadata"].get("namespace") == "popsync" for r in resources if r["kind"] != "Namespace")


def test_every_popsync_container_runs_a_command_its_parser_accepts(
    programs: dict[str, tuple[dict[str, str], list[Invocation]]],
) -> None:
    commands = {name: [inv.command for inv in invocations] for name, (_, invocations) in programs.items()}
    assert commands == {
        "npd-seed": [("popsync", "population", "generate"), ("popsync", "population", "load")],
        "ndxp": [("popsync", "ndxp", "serve")],
        "vneid": [("popsync", "vneid", "serve")],
        "vneid-relay": [("python", "-m", "connectors.vneid")],
        "worker": [("popsync", "worker")],
        "lag-monitor": [("popsync", "lag")],
    }
    relay = programs["vneid-relay"][1][0]
    assert relay.params["database_url"] == "postgresql://popsync:secret-postgres_password@postgres:5432/vneid"


def test_every_variable_a_container_sets_is_read_by_its_program(
    resources: list[dict[str, Any]], programs: dict[str, tuple[dict[str, str], list[Invocation]]]
) -> None:
    workloads = by_kind(resources, *WORKLOADS)
    for name, (env, invocations) in programs.items():
        container = containers(workloads[name])[0]
        script = " ".join([*container.get("command", []), *container.get("args", [])])
        reads = set().union(*(inv.reads() for inv in invocations))
        reads |= set(re.findall(r"\$\{?(\w+)", script)) | set(
            re.findall(r"\$\((\w+)\)", json.dumps(container))
        )
        unread = {v for v in env if v.upper() not in reads}
        assert not unread, f"{name} sets variables none of its programs reads: {sorted(unread)}"


def named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in container["ports"] if p["name"] == port)


def test_probes_ask_the_endpoints_the_programs_serve(
    resources: list[dict[str, Any]], programs: dict[str, tuple[dict[str, str], list[Invocation]]]
) -> None:
    for name, workload in by_kind(resources, "Deployment", "StatefulSet").items():
        skipped = " ".join(workload["metadata"].get("annotations", {}).values())
        for container in containers(workload):
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    assert re.search(r"CKV_K8S_(8|9)=", skipped), f"{name} has no {probe}, and says not why"
                    continue
                http = container[probe].get("httpGet")
                if http is None or name not in programs:
                    continue
                served = set().union(*(served_paths(inv) for inv in programs[name][1]))
                asked = (http["path"], named_port(container, http["port"]))
                assert asked in served, f"{name}'s {probe} asks {asked}; it serves {sorted(served)}"
                if "ndxp" in name or "vneid" in name:
                    assert http["path"] == "/health", f"{name}'s {probe} should ask its health endpoint"


def test_scrape_annotations_match_the_metrics_served(
    resources: list[dict[str, Any]], programs: dict[str, tuple[dict[str, str], list[Invocation]]]
) -> None:
    for name, workload in by_kind(resources, *WORKLOADS).items():
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        endpoints = [e for inv in programs.get(name, ("", []))[1] if (e := metrics_endpoint(inv))]
        if not endpoints:
            assert "prometheus.io/scrape" not in annotations, f"{name} is scraped but serves no /metrics"
            continue
        ((host, port),) = endpoints
        assert host == "0.0.0.0", f"{name} serves /metrics on {host}: unreachable from Prometheus"
        assert annotations.get("prometheus.io/scrape") == "true", f"{name} serves /metrics but is not scraped"
        assert (
            int(annotations["prometheus.io/port"]) == port and annotations["prometheus.io/path"] == "/metrics"
        )


def test_pods_get_no_service_link_variables(resources: list[dict[str, Any]]) -> None:
    """Kubernetes would put KAFKA_PORT=tcp://… (from the Service `kafka`) into every pod, which the Kafka
    image reads as a broker setting, and NDXP_PORT, VNEID_SERVICE_HOST, … beside popsync's settings."""
    for name, workload in by_kind(resources, *WORKLOADS).items():
        assert workload["spec"]["template"]["spec"].get("enableServiceLinks") is False, name


def test_images_are_pinned(resources: list[dict[str, Any]]) -> None:
    for name, workload in by_kind(resources, *WORKLOADS).items():
        for container in containers(workload):
            image = str(container["image"])
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), (
                f"{name}: {image}"
            )


# --------------------------------------------------------------------------- policy scan


def checkov_path() -> Path | None:
    script = (ROOT / "scripts" / "install-checkov.sh").read_text(encoding="utf-8")
    version = re.search(r'CHECKOV_VERSION="\$\{CHECKOV_VERSION:-([\d.]+)\}"', script)
    assert version, "scripts/install-checkov.sh names no checkov version"
    venv = Path.home() / ".cache" / "popsync" / "tools" / f"checkov-{version.group(1)}"
    return venv / "bin" / "checkov" if (venv / ".complete").exists() else None


def test_checkov_finds_nothing_unjustified(rendered_text: str, tmp_path: Path) -> None:
    checkov = checkov_path()
    if checkov is None:
        missing("checkov", "install-checkov.sh")
    assert checkov is not None
    manifests = tmp_path / "popsync-k8s.yaml"
    manifests.write_text(rendered_text, encoding="utf-8")
    done = subprocess.run(
        [str(checkov), "-f", str(manifests), "--config-file", str(K8S / ".checkov.yaml"), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(done.stdout)
    results = report["results"]
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]]
    assert not failed, "checkov findings, neither fixed nor justified:\n" + "\n".join(failed)
    assert report["summary"]["passed"] > 500, "checkov ran almost no checks"
    skipped = {c["check_id"] for c in results["skipped_checks"]}
    config = yaml.safe_load((K8S / ".checkov.yaml").read_text(encoding="utf-8"))
    justified = DEPLOY_README.read_text(encoding="utf-8").split("### Policy scan", 1)[-1]
    for check in skipped | set(config["skip-check"]):
        assert f"`{check}`" in justified, f"{check} is skipped but not justified in deploy/README.md"
