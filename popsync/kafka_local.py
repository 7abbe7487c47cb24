"""A real Apache Kafka broker for popsync: given servers, a Docker container, or a local Java KRaft broker.

`kafka_broker()` picks, in this order: explicit bootstrap servers (argument or env
`POPSYNC_BOOTSTRAP_SERVERS`); an `apache/kafka:<KAFKA_VERSION>` container where a Docker engine answers;
otherwise `LocalKafka`, the official Kafka jars (fetched once from Maven Central with
`deploy/kafka/pom.xml`, cached under `~/.cache/popsync/kafka/<version>/` or `$POPSYNC_CACHE_DIR`) run on
Java 17+ as a single-node KRaft broker on free 127.0.0.1 ports.

The JVM never outlives popsync: it runs in its own process group (Ctrl-C reaches only Python, which stops
it in order), gets SIGKILL from the kernel if the forking thread dies (`PR_SET_PDEATHSIG`, so even a
SIGKILLed parent leaves no orphan), and is stopped by atexit and a SIGTERM handler. `kafka_up` is the
exception: a detached broker for `popsync kafka up|down|status`, tracked in a state file.

Errors (all `popsync.exceptions.PopsyncError`):
    KafkaLocalError
    ├── KafkaUnavailableError  neither Java 17+ nor Docker (nor Maven for the first fetch)
    ├── KafkaFetchError        Maven could not fetch the jars
    └── KafkaStartError        the broker died or did not answer in time (message has the log tail)
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from popsync.exceptions import PopsyncError

__all__ = [
    "KAFKA_VERSION",
    "KafkaFetchError",
    "KafkaLocalError",
    "KafkaStartError",
    "KafkaUnavailableError",
    "LocalKafka",
    "cache_root",
    "docker_available",
    "fetch_kafka_jars",
    "kafka_broker",
    "kafka_down",
    "kafka_status",
    "kafka_up",
    "process_alive",
    "remove_stale_data_dirs",
]

KAFKA_VERSION = "4.1.2"  # keep equal to kafka.version in deploy/kafka/pom.xml and the Docker image tag
ENV_BOOTSTRAP = "POPSYNC_BOOTSTRAP_SERVERS"
ENV_CACHE = "POPSYNC_CACHE_DIR"
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
_DATA_PREFIX = "popsync-kafka-"
_RUN_FILE = "popsync-run.json"
_PR_SET_PDEATHSIG = 1
_NO_KAFKA_HELP = (
    "install Java 17+ (e.g. `apt-get install openjdk-17-jre-headless`; Maven too for the first fetch), "
    "or start a Docker engine, "
    "or pass --bootstrap-servers / set POPSYNC_BOOTSTRAP_SERVERS to use a running broker"
)

_ERROR_LINE = re.compile(r"\] (ERROR|FATAL) |^[\w.$]+(Exception|Error)\b")
Log = Callable[[str], None]
_logger = logging.getLogger(__name__)


class KafkaLocalError(PopsyncError):
    """Root of the errors of popsync's own Kafka broker."""


class KafkaUnavailableError(KafkaLocalError):
    """No way to run a broker here: no Java 17+ (or Maven for the first fetch) and no Docker engine."""


class KafkaFetchError(KafkaLocalError):
    """Maven could not fetch the Kafka jars from Maven Central."""


class KafkaStartError(KafkaLocalError):
    """The broker exited during start-up or did not answer in time."""


def cache_root(cache_dir: Path | None = None) -> Path:
    """popsync's cache: `cache_dir`, else `$POPSYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/popsync` (~/.cache)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "popsync"


def process_alive(pid: int) -> bool:
    """True if `pid` runs; a zombie (dead, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        # The state letter follows the parenthesised command name, which may itself contain spaces.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


def docker_available(timeout: float = 3.0) -> bool:
    """True if a Docker engine answers a ping within `timeout` seconds."""
    try:
        import docker  # type: ignore[import-untyped]  # the docker SDK ships no type stubs

        client = docker.from_env(timeout=max(1, round(timeout)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure (no SDK, no socket, refused, timeout) means "no usable engine"
        return False


def _tail(path: Path, lines: int = 25) -> str:
    """The first errors of a broker log (the cause; shutdown noise follows it) and its last lines."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    errors = [line for line in text if _ERROR_LINE.search(line)][:8]
    head = [f"({path}, first errors:)", *errors, "(…last lines:)"] if errors else [f"({path})"]
    return "\n".join([*head, *text[-lines:]])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cluster_id() -> str:
    # What `kafka-storage random-uuid` prints: 16 random bytes, URL-safe base64, no padding, not "-"-led.
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _require_java() -> str:
    java = _find_java()
    if java is None:
        raise KafkaUnavailableError(f"No `java` on PATH or in $JAVA_HOME to run Kafka: {_NO_KAFKA_HELP}.")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2) or 0) if match and major == 1 else major  # "1.8.0" is Java 8
    if major < 17:
        raise KafkaUnavailableError(
            f"{java} is Java {major or '?'}; Kafka 4 needs Java 17+: {_NO_KAFKA_HELP}."
        )
    return java


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn: the kernel SIGKILLs the child when the thread that forked it dies, even by SIGKILL.

    None where there is no prctl (not Linux): there only atexit and the signal handler stop the JVM.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: no dlopen in the child
    except (AttributeError, OSError):
        return None

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


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


def _answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True if a Kafka metadata request to `bootstrap` succeeds (after a cheap TCP check)."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=min(timeout, 1.0)):
            pass
    except (OSError, ValueError):
        return False
    try:
        from kafka import KafkaAdminClient

        ms = int(timeout * 1000)
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="popsync-probe",
            bootstrap_timeout_ms=ms,
            request_timeout_ms=ms,
        )
        try:
            return bool(admin.describe_cluster().get("brokers"))
        finally:
            admin.close()
    except Exception:  # not ready yet, in whatever way kafka-python says it
        return False


def _await_ready(bootstrap: str, timeout: float, alive: Callable[[], bool], tail: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise KafkaStartError(
                f"The Kafka broker for {bootstrap} exited during start-up; log tail:\n{tail()}"
            )
        if _answers(bootstrap, timeout=min(5.0, max(0.5, deadline - time.monotonic()))):
            return
        if time.monotonic() > deadline:
            raise KafkaStartError(
                f"The Kafka broker did not answer on {bootstrap} within {timeout:.0f} s "
                f"(raise the timeout on a slow machine); log tail:\n{tail()}"
            )
        time.sleep(0.2)


def remove_stale_data_dirs() -> list[Path]:
    """Remove temp data dirs of brokers whose owner and JVM are both gone (e.g. after a SIGKILL)."""
    removed = []
    for run_file in Path(tempfile.gettempdir()).glob(f"{_DATA_PREFIX}*/{_RUN_FILE}"):
        with contextlib.suppress(OSError, ValueError, TypeError):
            run = json.loads(run_file.read_text())
            pids = [p for p in (run.get("owner_pid"), run.get("jvm_pid")) if p]
            if not run.get("keep") and not any(process_alive(int(p)) for p in pids):
                shutil.rmtree(run_file.parent, ignore_errors=True)
                removed.append(run_file.parent)
    return removed


_LIVE: set[LocalKafka] = set()
_DETACHED: list[subprocess.Popen[bytes]] = []  # kept so no ResourceWarning fires for a broker left running
_hooks_installed = False


def _stop_all() -> None:
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # die as SIGTERM would have, now that the broker is down


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all)
    # Only take SIGTERM if nobody else did (faust, uvicorn install their own and exit through atexit).
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


class LocalKafka:
    """A single-node KRaft broker of the official Kafka jars, run with Java on free 127.0.0.1 ports.

    Start it from the main thread (or a long-lived one): `PR_SET_PDEATHSIG` fires when the *thread* that
    started the JVM ends, so starting it from a short-lived worker thread would kill the broker with it.
    """

    def __init__(
        self,
        *,
        version: str = KAFKA_VERSION,
        cache_dir: Path | None = None,
        data_dir: Path | None = None,
        port: int | None = None,
        partitions: int = 6,
        log: Log | None = None,
        keep_data: bool = False,
        detached: bool = False,
        heap: str = "1g",
    ) -> None:
        self.version, self.cache_dir, self.port, self.partitions = version, cache_dir, port, partitions
        self.keep_data, self.detached, self.heap = keep_data, detached, heap
        self._log = log or _logger.info
        self._given_data_dir = Path(data_dir) if data_dir is not None else None
        self.data_dir: Path | None = None
        self.bootstrap_servers = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_file(self) -> Path | None:
        return self.data_dir / "broker.log" if self.data_dir else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 120.0) -> str:
        """Fetch the jars if needed, format storage, start the JVM, wait until it answers; the bootstrap."""
        if self.running():
            return self.bootstrap_servers
        java = _require_java()
        libs = fetch_kafka_jars(self.version, self.cache_dir, self._log)
        remove_stale_data_dirs()
        if self._given_data_dir is not None:
            self.data_dir = self._given_data_dir
            self.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix=_DATA_PREFIX))
        started = time.monotonic()
        attempts = 1 if self.port else 3  # a free port can be taken by someone else before the JVM binds it
        try:
            for attempt in range(1, attempts + 1):
                try:
                    self._start_once(java, libs, timeout)
                    break
                except KafkaStartError:
                    lost_port = "Address already in use" in _tail(self.data_dir / "broker.log", 200)
                    self._kill()
                    if not lost_port or attempt == attempts:
                        raise
        except BaseException:
            self.stop()
            raise
        self._log(
            f"Kafka {self.version} ready on {self.bootstrap_servers} in {time.monotonic() - started:.1f} s "
            f"(pid {self.pid}, data {self.data_dir})"
        )
        return self.bootstrap_servers

    def _start_once(self, java: str, libs: Path, timeout: float) -> None:
        assert self.data_dir is not None
        port, controller = self.port or _free_port(), _free_port()
        while controller == port:
            controller = _free_port()
        self.bootstrap_servers = f"127.0.0.1:{port}"
        props = self.data_dir / "server.properties"
        props.write_text(self._properties(port, controller))
        self._write_run_file(jvm_pid=None)
        jvm = [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={libs.parent / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",
        ]
        preexec = None if self.detached else _die_with_parent(os.getpid())
        fmt = subprocess.run(  # noqa: S603 - our java, our arguments, no shell
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                _cluster_id(),
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=preexec,
        )
        if fmt.returncode != 0:
            tail = "\n".join((fmt.stdout + fmt.stderr).splitlines()[-20:])
            raise KafkaStartError(f"Formatting Kafka storage in {self.data_dir} failed:\n{tail}")
        if not self.detached:
            _install_hooks()
        with (self.data_dir / "broker.log").open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603
                [*jvm, "kafka.Kafka", str(props)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=preexec,
            )
        if not self.detached:
            _LIVE.add(self)
        self._write_run_file(jvm_pid=self._proc.pid)
        log_file = self.data_dir / "broker.log"
        _await_ready(self.bootstrap_servers, timeout, self.running, lambda: _tail(log_file))

    def _properties(self, port: int, controller: int) -> str:
        assert self.data_dir is not None
        settings: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",  # static: restarts may change ports
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir / "logs",
            "num.partitions": self.partitions,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 10,  # 50 by default: slow first group join on a laptop
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 10,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true",
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _write_run_file(self, jvm_pid: int | None) -> None:
        assert self.data_dir is not None
        keep = self.keep_data or self.detached or self._given_data_dir is not None
        run = {"owner_pid": None if self.detached else os.getpid(), "jvm_pid": jvm_pid, "keep": keep}
        (self.data_dir / _RUN_FILE).write_text(json.dumps(run))

    def _kill(self) -> None:
        """SIGTERM the JVM's process group, SIGKILL it if still there after a grace period."""
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)

    def stop(self) -> None:
        """Stop the broker (idempotent) and remove its temp data dir unless asked to keep it."""
        pid, was_running = self.pid, self.running()
        self._kill()
        if self.data_dir is not None and self._given_data_dir is None and not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if was_running:
            self._log(f"Kafka broker {self.bootstrap_servers} stopped (pid {pid}).")

    def release(self) -> None:
        """Forget a detached broker without stopping it (it outlives this process; see `kafka_up`)."""
        if self._proc is not None:
            _DETACHED.append(self._proc)
        self._proc = None
        _LIVE.discard(self)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def _docker_kafka(version: str, partitions: int, log: Log, timeout: float = 180.0) -> Iterator[str]:
    # testcontainers' KafkaContainer drives Confluent images (/etc/confluent/docker scripts) and fails on
    # apache/kafka, so the official image is configured here through its KAFKA_* environment instead.
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.docker_client import DockerClient

    host = DockerClient().host()
    port = _free_port()  # the same port inside and outside, so the advertised address is reachable
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://127.0.0.1:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:9093",
        "KAFKA_NUM_PARTITIONS": str(partitions),
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
    }
    container = DockerContainer(f"apache/kafka:{version}").with_bind_ports(port, port)
    for key, value in env.items():
        container.with_env(key, value)
    bootstrap = f"{host}:{port}"
    log(f"Starting apache/kafka:{version} in Docker on {bootstrap} (the first run pulls the image)…")

    def alive() -> bool:
        wrapped = container.get_wrapped_container()
        wrapped.reload()  # `status` is a cached attribute until reloaded
        return wrapped.status in ("created", "running")

    def logs() -> str:
        out, err = container.get_logs()
        return "\n".join((out + err).decode(errors="replace").splitlines()[-40:])

    try:
        container.start()
        _await_ready(bootstrap, timeout, alive, logs)
        log(f"Kafka {version} ready in Docker on {bootstrap}.")
        yield bootstrap
    finally:
        container.stop()


@contextlib.contextmanager
def kafka_broker(
    bootstrap_servers: str | None = None,
    *,
    log: Log | None = None,
    version: str = KAFKA_VERSION,
    partitions: int = 6,
    cache_dir: Path | None = None,
) -> Iterator[str]:
    """A bootstrap for a broker: the given one, else Docker, else `LocalKafka`; stops what it started."""
    say = log or _logger.info
    servers = (bootstrap_servers or os.environ.get(ENV_BOOTSTRAP) or "").strip()
    if servers:
        yield servers
    elif docker_available():
        with _docker_kafka(version, partitions, say) as bootstrap:
            yield bootstrap
    elif _find_java() is None:
        raise KafkaUnavailableError(
            f"No Kafka broker: no Java 17+ and no Docker engine here; {_NO_KAFKA_HELP}."
        )
    else:
        with LocalKafka(version=version, partitions=partitions, cache_dir=cache_dir, log=say) as broker:
            yield broker.bootstrap_servers


def _state_path(state_file: Path | None) -> Path:
    return Path(state_file) if state_file is not None else cache_root() / "kafka" / "broker.json"


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _is_our_jvm(state: dict[str, Any]) -> bool:
    """The state's pid still runs *our* broker (and not a process that reused the pid)."""
    pid = int(state["pid"])
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the pid
    return (
        b"kafka.Kafka" in cmdline and str(Path(state["data_dir"]) / "server.properties").encode() in cmdline
    )


def kafka_up(
    *,
    version: str = KAFKA_VERSION,
    cache_dir: Path | None = None,
    data_dir: Path | None = None,
    port: int | None = None,
    partitions: int = 6,
    timeout: float = 120.0,
    log: Log | None = None,
    state_file: Path | None = None,
) -> dict[str, Any]:
    """Start a detached broker that outlives this process (or return the running one); its state."""
    path = _state_path(state_file)
    current = kafka_status(state_file=path)
    if current is not None and current["running"]:
        (log or _logger.info)(f"Kafka already up on {current['bootstrap_servers']} (pid {current['pid']}).")
        return current
    if _find_java() is None:
        raise KafkaUnavailableError(
            "`popsync kafka up` runs Kafka on Java and there is no `java` here: install Java 17+; or run "
            f"`docker run -d -p 9092:9092 apache/kafka:{version}` "
            "and pass --bootstrap-servers 127.0.0.1:9092."
        )
    if current is not None:
        kafka_down(state_file=path)  # stale state: clean it (and its data dir) before starting anew
    broker = LocalKafka(
        version=version,
        cache_dir=cache_dir,
        data_dir=data_dir,
        port=port,
        partitions=partitions,
        log=log,
        detached=True,
    )
    bootstrap = broker.start(timeout=timeout)
    assert broker.pid is not None and broker.data_dir is not None
    state = {
        "pid": broker.pid,
        "bootstrap_servers": bootstrap,
        "data_dir": str(broker.data_dir),
        "remove_data_dir": data_dir is None,
        "log_file": str(broker.log_file),
        "version": version,
        "started_at": time.time(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)
    broker.release()
    return {**state, "running": True, "answers": True}


def kafka_down(*, state_file: Path | None = None, timeout: float = 20.0, log: Log | None = None) -> bool:
    """Stop the detached broker (SIGTERM, SIGKILL after `timeout`) and drop its state; False if none ran."""
    path = _state_path(state_file)
    state = _read_state(path)
    if state is None:
        return False
    pid, stopped = int(state["pid"]), False
    if _is_our_jvm(state):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while process_alive(pid) and time.monotonic() < deadline + 10:
                time.sleep(0.1)
        stopped = True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if this very process started it (tests do)
    if state.get("remove_data_dir"):
        shutil.rmtree(state["data_dir"], ignore_errors=True)
    path.unlink(missing_ok=True)
    if stopped:
        (log or _logger.info)(f"Kafka broker {state.get('bootstrap_servers')} stopped (pid {pid}).")
    return stopped


def kafka_status(*, state_file: Path | None = None, timeout: float = 3.0) -> dict[str, Any] | None:
    """The detached broker's state, `running` (its JVM lives) and `answers` (metadata works); or None."""
    state = _read_state(_state_path(state_file))
    if state is None:
        return None
    running = _is_our_jvm(state)
    return {**state, "running": running, "answers": running and _answers(state["bootstrap_servers"], timeout)}
