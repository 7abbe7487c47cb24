"""`LocalKafka`: the official Kafka jars run on Java 17+ as a KRaft node (broker and controller), free ports.

Alone it is a single-node cluster; `LocalCluster` (`cluster`) runs several, each a voter of the same quorum.

Listeners, by default: `PLAINTEXT` (clients and the broker itself) and `CONTROLLER` (KRaft). With
`scram_users`, clients get a `SASL_PLAINTEXT` listener with SCRAM (`bootstrap_servers` points at it) and
`PLAINTEXT` stays for the broker's own traffic and the readiness probe (`internal_bootstrap_servers`);
the users are written into the storage at format time (`kafka-storage format --add-scram`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from popsync.broker import lifetime
from popsync.broker.errors import KafkaStartError
from popsync.broker.jars import KAFKA_VERSION, Log, fetch_kafka_jars, require_java
from popsync.broker.probe import await_ready, free_port

__all__ = ["ClusterNode", "LocalKafka", "new_cluster_id"]

_ERROR_LINE = re.compile(r"\] (ERROR|FATAL) |^[\w.$]+(Exception|Error)\b")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# `--add-scram 'SCRAM-SHA-512=[name=N,password=P]'` is parsed by Kafka's own little grammar: keep names and
# passwords to characters it cannot misread (no separators, quotes, brackets or spaces).
_SCRAM_WORD = re.compile(r"[A-Za-z0-9_.@+\-]{1,128}")
_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """A node's place in a local cluster: its id and ports, the quorum's voters, the cluster's id and size."""

    node_id: int
    port: int
    controller_port: int
    voters: str  # controller.quorum.voters: "1@127.0.0.1:p1,2@127.0.0.1:p2,..."
    cluster_id: str
    nodes: int


def _tail(path: Path, lines: int = 25) -> str:
    """The first errors of a broker log (the cause; shutdown noise follows it) and its last lines."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    errors = [line for line in text if _ERROR_LINE.search(line)][:8]
    head = [f"({path}, first errors:)", *errors, "(…last lines:)"] if errors else [f"({path})"]
    return "\n".join([*head, *text[-lines:]])


def new_cluster_id() -> str:
    # What `kafka-storage random-uuid` prints: 16 random bytes, URL-safe base64, no padding, not "-"-led.
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _another_free_port(taken: set[int]) -> int:
    """A free port not in `taken` (which it joins)."""
    port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


class LocalKafka:
    """A single-node KRaft broker of the official Kafka jars, run with Java on free 127.0.0.1 ports.

    Start it from the main thread (or a long-lived one): `PR_SET_PDEATHSIG` fires when the *thread* that
    started the JVM ends, so starting it from a short-lived worker thread would kill the broker with it.

    `scram_users` (name → password) are for tests and local runs: the passwords pass on the command line
    of the one-off `StorageTool format` process (visible to `ps` for that second), never in a file.
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
        scram_users: Mapping[str, str] | None = None,
        scram_mechanism: str = "SCRAM-SHA-512",
        node: ClusterNode | None = None,
    ) -> None:
        """`node`: its place in a `LocalCluster` (its id, ports, the quorum); None: a cluster of one."""
        self.node = node
        self.version, self.cache_dir, self.port, self.partitions = version, cache_dir, port, partitions
        self.keep_data, self.detached, self.heap = keep_data, detached, heap
        self.scram_users = dict(scram_users or {})
        self.scram_mechanism = scram_mechanism
        if scram_mechanism not in SCRAM_MECHANISMS:
            raise ValueError(
                f"scram_mechanism must be one of {', '.join(SCRAM_MECHANISMS)}, not {scram_mechanism!r}"
            )
        for name, password in self.scram_users.items():
            if not (_SCRAM_WORD.fullmatch(name) and _SCRAM_WORD.fullmatch(password)):
                raise ValueError(
                    f"SCRAM user {name!r}: names and passwords of the local broker may only hold letters, "
                    "digits and _.@+- (1-128 characters)"
                )
        self._log = log or _logger.info
        self._given_data_dir = Path(data_dir) if data_dir is not None else None
        self.data_dir: Path | None = None
        self.bootstrap_servers = ""  # where clients connect: the SASL listener when there are SCRAM users
        self.internal_bootstrap_servers = ""  # the PLAINTEXT listener (the same as the above without SCRAM)
        self._proc: subprocess.Popen[bytes] | None = None
        # What a restart re-uses: the Java and jars found at start, and the ports (client, controller,
        # internal), so clients reconnect to the address they know.
        self._java: tuple[str, Path] | None = None
        self._ports: tuple[int, int, int] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_file(self) -> Path | None:
        return self.data_dir / "broker.log" if self.data_dir else None

    @property
    def returncode(self) -> int | None:
        """The JVM's exit status once it ended (negative: the signal that killed it); None while it runs."""
        return self._proc.poll() if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 120.0, *, wait: bool = True) -> str:
        """Fetch the jars if needed, format storage, start the JVM, wait until it answers; the bootstrap.

        `wait=False` returns once the JVM runs (then call `wait_ready`): a node of a cluster cannot answer
        before a majority of the quorum runs, so a cluster starts every node first and then waits.
        """
        if self.running():
            return self.bootstrap_servers
        java = require_java()
        libs = fetch_kafka_jars(self.version, self.cache_dir, self._log)
        lifetime.remove_stale_data_dirs()
        if self._given_data_dir is not None:
            self.data_dir = self._given_data_dir
            self.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix=lifetime.DATA_PREFIX))
        started = time.monotonic()
        attempts = 1 if self.port else 3  # a free port can be taken by someone else before the JVM binds it
        self._java = (java, libs)
        try:
            for attempt in range(1, attempts + 1):
                try:
                    self._start_once(java, libs, timeout, wait=wait)
                    break
                except KafkaStartError:
                    lost_port = "Address already in use" in _tail(self.data_dir / "broker.log", 200)
                    self._kill()
                    if not lost_port or attempt == attempts:
                        raise
        except BaseException:
            self.stop()
            raise
        if wait:
            self._say_ready(started)
        return self.bootstrap_servers

    def wait_ready(self, timeout: float = 120.0, started: float | None = None) -> str:
        """Wait until a node started with `wait=False` answers; `KafkaStartError` with its log tail if not."""
        assert self.data_dir is not None
        log_file = self.data_dir / "broker.log"
        try:
            await_ready(self.internal_bootstrap_servers, timeout, self.running, lambda: _tail(log_file))
        except BaseException:
            self.stop()
            raise
        self._say_ready(started)
        return self.bootstrap_servers

    def _say_ready(self, started: float | None) -> None:
        took = f" in {time.monotonic() - started:.1f} s" if started is not None else ""
        self._log(
            f"Kafka {self.version} ready on {self.bootstrap_servers}{took} "
            f"(pid {self.pid}, data {self.data_dir})"
        )

    def restart(self, timeout: float = 25.0) -> str:
        """Start the JVM again after it died, on the same data dir and ports; the bootstrap.

        What the broker had acknowledged is in its log dir, so topics, offsets and consumer groups survive,
        and its clients reconnect to the address they know. `KafkaStartError` (with the log tail) if it
        cannot: its data dir is gone, a port was taken meanwhile, it did not answer within `timeout`.
        """
        if self.running():
            return self.bootstrap_servers
        if self._java is None or self._ports is None or self.data_dir is None:
            raise KafkaStartError("the Kafka broker cannot be restarted: it was never started")
        meta = self.data_dir / "logs" / "meta.properties"
        if not meta.is_file():  # a restart would format an empty broker: no topics, no offsets
            raise KafkaStartError(f"its data is gone: {meta}")
        self._kill()  # reaps the dead JVM (and its process group, should a child of it linger)
        try:
            self._start_once(*self._java, timeout, ports=self._ports)
        except BaseException:
            self._kill()  # never a half-started JVM: the caller gives up on this broker
            raise
        self._log(f"Kafka {self.version} restarted on {self.bootstrap_servers} (pid {self.pid})")
        return self.bootstrap_servers

    def _start_once(
        self,
        java: str,
        libs: Path,
        timeout: float,
        ports: tuple[int, int, int] | None = None,
        *,
        wait: bool = True,
    ) -> None:
        assert self.data_dir is not None
        if ports is not None:
            port, controller, internal = ports
        elif self.node is not None:  # the cluster chose every node's ports: the quorum lists them all
            port, controller, internal = self.node.port, self.node.controller_port, self.node.port
        else:
            port = self.port or free_port()
            taken = {port}
            controller = _another_free_port(taken)
            internal = _another_free_port(taken) if self.scram_users else port
        self._ports = (port, controller, internal)
        self.bootstrap_servers = f"127.0.0.1:{port}"
        self.internal_bootstrap_servers = f"127.0.0.1:{internal}"
        props = self.data_dir / "server.properties"
        props.write_text(self._properties(port, controller, internal))
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
        preexec = None if self.detached else lifetime.die_with_parent(os.getpid())
        if ports is None:  # a restart finds its storage formatted: no second JVM start for nothing
            self._format(jvm, props, preexec)
        if not self.detached:
            lifetime.install_hooks()
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
            lifetime.track(self)
        self._write_run_file(jvm_pid=self._proc.pid)
        if not wait:
            return
        log_file = self.data_dir / "broker.log"
        # The probe has no credentials: it asks the PLAINTEXT listener, which starts with the SASL one.
        await_ready(self.internal_bootstrap_servers, timeout, self.running, lambda: _tail(log_file))

    def _format(self, jvm: list[str], props: Path, preexec: Callable[[], None] | None) -> None:
        """`kafka-storage format` of the data dir (kept as it is when already formatted)."""
        fmt = subprocess.run(  # noqa: S603 - our java, our arguments, no shell
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                self.node.cluster_id if self.node is not None else new_cluster_id(),
                "-c",
                str(props),
                *self._scram_arguments(),
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

    def _scram_arguments(self) -> list[str]:
        """`--add-scram` arguments of `kafka-storage format`: SCRAM users are KRaft metadata records."""
        return [
            arg
            for name, password in self.scram_users.items()
            for arg in ("--add-scram", f"{self.scram_mechanism}=[name={name},password={password}]")
        ]

    def _listeners(self, port: int, controller: int, internal: int) -> dict[str, object]:
        if not self.scram_users:
            return {
                "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            }
        # Clients on SASL_PLAINTEXT; the broker itself (and the probe) on a loopback PLAINTEXT listener.
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "listeners": (
                f"SASL_PLAINTEXT://127.0.0.1:{port},PLAINTEXT://127.0.0.1:{internal},"
                f"CONTROLLER://127.0.0.1:{controller}"
            ),
            "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},PLAINTEXT://127.0.0.1:{internal}",
            "listener.security.protocol.map": (
                "SASL_PLAINTEXT:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "sasl.enabled.mechanisms": self.scram_mechanism,
            f"listener.name.sasl_plaintext.{self.scram_mechanism.lower()}.sasl.jaas.config": jaas,
        }

    def _properties(self, port: int, controller: int, internal: int) -> str:
        assert self.data_dir is not None
        node = self.node or ClusterNode(1, port, controller, f"1@127.0.0.1:{controller}", "", 1)
        # Every topic, the internal ones too, as replicated as the cluster allows; with three copies a write
        # needs two (acks=all), so one broker may die without losing an acknowledged record or stopping
        # the producers. Replicas = min(3, nodes): more copies only cost disk and network.
        replicas = min(3, node.nodes)
        min_isr = 2 if replicas >= 3 else 1
        settings: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": node.voters,  # static: a restart keeps its ports
            **self._listeners(port, controller, internal),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self.data_dir / "logs",
            "num.partitions": self.partitions,
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 10,  # 50 by default: slow first group join on a laptop
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": 10,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": 0,
            # A restarted broker cannot register until the session of its previous life expires: with the
            # default 9 s, a restart after a crash took 12 s; heartbeats stay in-process (combined mode).
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 4000,
            "auto.create.topics.enable": "true",
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _write_run_file(self, jvm_pid: int | None) -> None:
        assert self.data_dir is not None
        keep = self.keep_data or self.detached or self._given_data_dir is not None
        run = {"owner_pid": None if self.detached else os.getpid(), "jvm_pid": jvm_pid, "keep": keep}
        (self.data_dir / lifetime.RUN_FILE).write_text(json.dumps(run))

    def _kill(self) -> None:
        """SIGTERM the JVM's process group, SIGKILL it if still there after a grace period."""
        proc, self._proc = self._proc, None
        lifetime.untrack(self)
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
            lifetime.keep_detached(self._proc)
        self._proc = None
        lifetime.untrack(self)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
