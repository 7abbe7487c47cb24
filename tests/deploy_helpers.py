"""What the deployment tests share: popsync's own CLI parser applied to the commands a deployment runs,
the settings classes that read each service's environment, and which command serves /metrics where.

Nothing here keeps a hand list of popsync's commands or flags: a command line is checked by parsing it
with the click command typer builds from `popsync.cli.app` (exactly what `popsync … --help` shows), and a
variable by looking it up in the pydantic settings classes the command reads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer
from dotenv import dotenv_values
from pydantic_settings import BaseSettings

import connectors.vneid
from mocks.ndxp.api.routes import health as ndxp_health
from mocks.ndxp.config import NdxpSettings
from mocks.ndxp.metrics import router as ndxp_metrics_router
from mocks.vneid.api.routes import health as vneid_health
from mocks.vneid.config import VneidSettings
from popsync.cli import app
from streams.config import StreamsSettings
from streams.kafka_security import KafkaSecurity

try:  # typer 0.29 builds its commands on a click of its own; earlier ones on click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - an older typer
    from click.exceptions import ClickException  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DEPLOY_README = ROOT / "deploy" / "README.md"
COMPOSE_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")

# The settings each deployable reads, by its command (the first words of its command line).
SETTINGS: dict[tuple[str, ...], tuple[type[BaseSettings], ...]] = {
    ("popsync", "worker"): (StreamsSettings, KafkaSecurity),
    ("popsync", "ndxp", "serve"): (NdxpSettings,),
    ("popsync", "population", "load"): (NdxpSettings,),
    ("popsync", "vneid", "serve"): (VneidSettings,),
    ("popsync", "lag"): (KafkaSecurity,),
    ("popsync", "publish"): (KafkaSecurity,),
    ("popsync", "simulate"): (StreamsSettings, KafkaSecurity),
    ("python", "-m", "connectors.vneid"): (KafkaSecurity,),
}


# Programs of the popsync image (python:3.11-slim) a container's shell script may call besides popsync and
# python; any other is refused by run_recorded.
IMAGE_UTILITIES = ("cat", "hostname", "touch")
RECORDER = '#!/bin/sh\n{ printf "%s\\037" "${0##*/}" "$@"; printf "\\036"; } >> "$RECORD_FILE"\n'


class CommandError(AssertionError):
    """A command line a deployment runs that its program would refuse."""


@dataclass
class Invocation:
    """One program started by a deployment: its argv, and what its parser made of it."""

    argv: list[str]
    env: dict[str, str]
    command: tuple[str, ...] = ()  # e.g. ("popsync", "ndxp", "serve")
    params: dict[str, Any] = field(default_factory=dict)
    envvars: set[str] = field(default_factory=set)  # variables the parsed command's options read

    def reads(self) -> set[str]:
        """Every variable this program reads: its options' and its settings classes'."""
        names = set(self.envvars)
        for cls in SETTINGS.get(self.command, ()):
            names |= settings_env_names(cls)
        return names


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a pydantic-settings class reads (upper case)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ as a container would have it: `env` alone, for option defaults read from variables."""
    with mock.patch.dict(os.environ, clear=True):
        os.environ.update(env)
        yield


def parse_popsync(args: Sequence[str], env: Mapping[str, str]) -> Invocation:
    """`popsync ARGS` through popsync's own parser (no command runs); CommandError when it refuses.

    typer (0.29) builds its commands on a click of its own (`typer._click`): its exceptions are caught here.
    """
    command: Any = typer.main.get_command(app)
    words = ["popsync"]
    envvars: set[str] = set()
    try:
        with environment(env), contextlib.redirect_stdout(io.StringIO()):  # --help prints
            ctx = command.make_context("popsync", list(args))
            while hasattr(command, "resolve_command"):  # a group: on to its subcommand
                rest = [*ctx._protected_args, *ctx.args]
                if not rest:
                    break
                name, sub, rest = command.resolve_command(ctx, rest)
                assert name is not None and sub is not None
                words.append(name)
                command = sub
                ctx = command.make_context(name, rest, parent=ctx)
    except typer.Exit as exc:  # --help
        if exc.exit_code != 0:
            raise CommandError(f"popsync {' '.join(args)}: exits {exc.exit_code}") from None
        return Invocation(["popsync", *args], dict(env), tuple(words))
    except ClickException as exc:
        raise CommandError(f"popsync {' '.join(args)}: {exc.format_message()}") from None
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        if envvar:
            envvars |= {envvar} if isinstance(envvar, str) else set(envvar)
    if hasattr(command, "resolve_command"):
        return Invocation(["popsync", *args], dict(env), tuple(words))  # a group alone: its help
    return Invocation(["popsync", *args], dict(env), tuple(words), dict(ctx.params), envvars)


class _Parsed(Exception):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args_ = args


def parse_vneid_relay(args: Sequence[str], env: Mapping[str, str]) -> Invocation:
    """`python -m connectors.vneid ARGS` through that module's own argparse parser (it stops right after
    parsing: opening the outbox is replaced by a stop)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def stop(url: str) -> None:
        raise _Parsed(argparse.Namespace(database_url=url))

    parsed: dict[str, Any] = {}
    original = argparse.ArgumentParser.parse_args

    def keep(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        namespace = original(self, *a, **k)
        parsed.update(vars(namespace))
        return namespace

    try:
        with (
            environment(env),
            mock.patch.object(connectors.vneid.Outbox, "open", side_effect=stop),
            mock.patch.object(argparse.ArgumentParser, "parse_args", keep),
            contextlib.redirect_stderr(io.StringIO()),  # argparse explains a refusal on stderr
        ):
            connectors.vneid.main(list(args))
    except _Parsed:
        pass
    except SystemExit as exc:
        raise CommandError(
            f"python -m connectors.vneid {' '.join(args)}: refused (exit {exc.code})"
        ) from None
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    envvars = (
        {"POPSYNC_BOOTSTRAP_SERVERS"}
        if parsed.get("bootstrap_servers") == env.get("POPSYNC_BOOTSTRAP_SERVERS")
        else set()
    )
    command = ("python", "-m", "connectors.vneid")
    return Invocation(["python", "-m", "connectors.vneid", *args], dict(env), command, parsed, envvars)


def parse(argv: Sequence[str], env: Mapping[str, str]) -> Invocation:
    """A popsync image's program line through its own parser."""
    if argv[:1] == ["popsync"]:
        return parse_popsync(argv[1:], env)
    if list(argv[:3]) == ["python", "-m", "connectors.vneid"]:
        return parse_vneid_relay(argv[3:], env)
    raise CommandError(f"{' '.join(argv)}: not a popsync program")


def run_recorded(argv: list[str], env: Mapping[str, str], where: Path) -> list[list[str]]:
    """The programs `argv` starts: itself, or, for `sh -c SCRIPT`, what the script runs (by the real sh,
    with stand-ins that record their arguments as the only programs on PATH)."""
    if argv[:2] != ["sh", "-c"]:
        return [argv]
    bin_dir = where / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("popsync", "python", *IMAGE_UTILITIES):
        (bin_dir / name).write_text(RECORDER, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    record = where / "record"
    record.write_bytes(b"")
    done = subprocess.run(
        ["/bin/sh", *argv[1:]],
        env={**env, "PATH": str(bin_dir), "RECORD_FILE": str(record), "HOSTNAME": "container-1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"the script fails under sh: {done.stderr}\n{argv[2]}"
    return [entry.split("\x1f")[:-1] for entry in record.read_text(encoding="utf-8").split("\x1e")[:-1]]


def served_paths(invocation: Invocation) -> set[tuple[str, int]]:
    """(path, port) of the HTTP endpoints this program serves that probes and Prometheus use."""
    served: set[tuple[str, int]] = set()
    endpoint = metrics_endpoint(invocation)
    if endpoint is not None:
        served.add(("/metrics", endpoint[1]))
    if invocation.command in (("popsync", "ndxp", "serve"), ("popsync", "vneid", "serve")):
        assert all(any(r.path == "/health" for r in m.router.routes) for m in (ndxp_health, vneid_health))
        served.add(("/health", int(invocation.params["port"])))
    return served


def metrics_endpoint(invocation: Invocation) -> tuple[str, int] | None:
    """(host, port) where this program serves Prometheus's /metrics, or None."""
    command, params, env = invocation.command, invocation.params, invocation.env
    if command == ("popsync", "worker"):
        port = int(env.get("STREAMS_METRICS_PORT", "0"))
        return (env.get("STREAMS_METRICS_HOST", "127.0.0.1"), port) if port else None
    if command == ("popsync", "lag") and params.get("metrics_port") is not None:
        return str(params["metrics_host"]), int(params["metrics_port"])
    if command == ("popsync", "ndxp", "serve"):
        assert any(getattr(r, "path", None) == "/metrics" for r in ndxp_metrics_router.routes)
        return str(params["host"]), int(params["port"])
    return None


def image_entrypoint() -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of deploy/Dockerfile (exec form)."""
    import json

    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("ENTRYPOINT "):
            entrypoint = json.loads(line.removeprefix("ENTRYPOINT "))
        elif line.startswith("CMD "):
            cmd = json.loads(line.removeprefix("CMD "))
    return entrypoint, cmd


# --------------------------------------------------------------------------- compose's .env


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """`value` with compose's variable syntax resolved against `env`; a missing required one fails."""

    def resolve(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1) or match.group(4), match.group(2), match.group(3) or ""
        current = env.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in ("?", ":?") and unset:
            pytest.fail(f"compose would stop: required variable {name} is missing a value: {arg}")
        if op in ("-", ":-") and unset:
            return arg
        return current or ""

    return COMPOSE_VARIABLE.sub(resolve, value)


def env_recipe() -> str:
    """The deploy README's bash block that writes deploy/.env (and deploy/secrets/)."""
    blocks = re.findall(r"^```bash\n(.*?)^```", DEPLOY_README.read_text(encoding="utf-8"), re.M | re.S)
    recipes: list[str] = [block for block in blocks if "cat > .env" in block]
    assert len(recipes) == 1, "deploy/README.md should have exactly one bash block writing .env"
    return recipes[0]


def run_env_recipe(where: Path) -> tuple[dict[str, str], Path]:
    """Run the README's recipe with bash in `where` (the test's Python as python3); deploy/.env as compose
    reads it, and the deploy directory it was written in."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    (where / "deploy").mkdir()
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(
        [bash, "-euc", env_recipe()],
        cwd=where,
        env={"PATH": path, "HOME": str(where)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"the README's .env recipe failed:\n{done.stdout}{done.stderr}"
    values = dotenv_values(where / "deploy" / ".env", interpolate=False)  # compose's reading of single quotes
    assert all(value for value in values.values()), f"empty values in the documented .env: {values.keys()}"
    return {name: value for name, value in values.items() if value is not None}, where / "deploy"
