"""The Kafka jars: popsync's cache dir, one version's home, the Maven fetch, and the Java to run them."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from popsync.broker.errors import NO_KAFKA_HELP, KafkaFetchError, KafkaUnavailableError

__all__ = [
    "DEPLOY_DIR",
    "ENV_CACHE",
    "KAFKA_VERSION",
    "Log",
    "cache_root",
    "fetch_kafka_jars",
    "find_java",
    "kafka_home",
    "require_java",
]

KAFKA_VERSION = "4.1.2"  # keep equal to kafka.version in deploy/kafka/pom.xml and the Docker image tag
ENV_CACHE = "POPSYNC_CACHE_DIR"
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"  # <repo>/deploy/kafka

Log = Callable[[str], None]  # how the broker code reports progress: `print`, a logger method, a console
_logger = logging.getLogger(__name__)


def cache_root(cache_dir: Path | None = None) -> Path:
    """popsync's cache: `cache_dir`, else `$POPSYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/popsync` (~/.cache)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "popsync"


def find_java() -> str | None:
    """The `java` of $JAVA_HOME, else the one on PATH; None if there is none."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def require_java() -> str:
    """A `java` of version 17 or later, or `KafkaUnavailableError` saying what to install."""
    java = find_java()
    if java is None:
        raise KafkaUnavailableError(f"No `java` on PATH or in $JAVA_HOME to run Kafka: {NO_KAFKA_HELP}.")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2) or 0) if match and major == 1 else major  # "1.8.0" is Java 8
    if major < 17:
        raise KafkaUnavailableError(
            f"{java} is Java {major or '?'}; Kafka 4 needs Java 17+: {NO_KAFKA_HELP}."
        )
    return java


def kafka_home(version: str = KAFKA_VERSION, cache_dir: Path | None = None) -> Path:
    """Where one Kafka version's jars live: `<cache>/kafka/<version>/`."""
    return cache_root(cache_dir) / "kafka" / version


def fetch_kafka_jars(
    version: str = KAFKA_VERSION, cache_dir: Path | None = None, log: Log | None = None
) -> Path:
    """Kafka `version`'s jars and runtime dependencies, fetched once with Maven; returns the libs dir."""
    say = log or _logger.info
    home = kafka_home(version, cache_dir)
    libs = home / "libs"

    def cached() -> bool:
        return (home / ".complete").is_file() and (libs / f"kafka_2.13-{version}.jar").is_file()

    if not cached():
        home.parent.mkdir(parents=True, exist_ok=True)
        # A lock, so two processes fetching at once (parallel tests, CLI + tests) do it once.
        with (home.parent / f".{version}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not cached():
                _maven_fetch(version, home, say)
    log_config = DEPLOY_DIR / "log4j2.xml"
    if log_config.is_file() and (
        not (home / "log4j2.xml").exists() or (home / "log4j2.xml").read_bytes() != log_config.read_bytes()
    ):
        shutil.copyfile(log_config, home / "log4j2.xml")
    return libs


def _maven_fetch(version: str, home: Path, say: Log) -> None:
    pom, mvn = DEPLOY_DIR / "pom.xml", shutil.which("mvn")
    if not pom.is_file():
        raise KafkaFetchError(
            f"{pom} is missing; run popsync from its source tree, or pass --bootstrap-servers."
        )
    if mvn is None:
        raise KafkaUnavailableError(
            f"Kafka {version} is not cached in {home} and `mvn` is not on PATH to fetch it: install Maven "
            f"(`apt-get install maven`), or start a Docker engine, or pass --bootstrap-servers."
        )
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home.parent))
    cmd = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    say(
        f"Fetching Apache Kafka {version} jars from Maven Central into {home} "
        "(first run only; it can take a minute)…"
    )
    started = time.monotonic()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)  # noqa: S603
        if out.returncode != 0 or not (staging / f"kafka_2.13-{version}.jar").is_file():
            tail = "\n".join((out.stdout + out.stderr).splitlines()[-30:])
            raise KafkaFetchError(
                f"Maven could not fetch Kafka {version} (exit {out.returncode}); "
                "check the version exists on Maven "
                f"Central and the network/proxy (~/.m2/settings.xml).\nCommand: {' '.join(cmd)}\n{tail}"
            )
        home.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(home / "libs", ignore_errors=True)
        staging.rename(home / "libs")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - started
    (home / ".complete").write_text(json.dumps({"version": version, "fetch_seconds": round(seconds, 1)}))
    say(f"Fetched Kafka {version} in {seconds:.0f} s; cached in {home}.")
