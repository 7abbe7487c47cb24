"""The broker of a run as something to watch: where it is, whether it runs or answers, how it comes back."""

# `run_broker()` (in the package) yields one of these. A broker popsync started (`LocalBroker`,
# `DockerBroker`) has a process to watch and is restarted on its own data and port, so clients reconnect to
# the address they know; a broker popsync was given (a plain `RunBroker`) can only be checked for answering.

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from popsync.broker.errors import KafkaStartError
from popsync.broker.probe import await_ready, describe_exit

if TYPE_CHECKING:
    from popsync.broker.cluster import LocalCluster
    from popsync.broker.local import LocalKafka

__all__ = ["ClusterBroker", "DockerBroker", "LocalBroker", "RunBroker"]


class RunBroker:
    """A run's broker given by its address (--bootstrap-servers, POPSYNC_BOOTSTRAP_SERVERS): popsync did not
    start it, so it can only check that it answers. The subclasses are brokers popsync started."""

    started_here = False
    stopped_on_purpose = False  # popsync stops its broker after its watchers, never while they watch

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    @property
    def log_path(self) -> Path | None:
        return None

    @property
    def name(self) -> str:
        return f"the Kafka broker at {self.bootstrap_servers} (not started by popsync)"

    @property
    def pid(self) -> int | None:
        return None

    def alive(self) -> bool:
        """Whether its process runs: unknowable here, so it counts as running (see `reachable`)."""
        return True

    def reachable(self, timeout: float = 1.0) -> bool:
        """True if a TCP connection to any of its bootstrap servers opens within `timeout` seconds."""
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def restart(self, timeout: float = 25.0) -> None:
        raise KafkaStartError(f"{self.name} cannot be restarted by popsync")

    def members(self) -> list[RunBroker]:
        """What to watch one by one: this broker, or each node of a cluster popsync started."""
        return [self]

    def log_tail(self, lines: int = 20) -> str:
        return ""

    def exit_status(self) -> str:
        return "unreachable"


class LocalBroker(RunBroker):
    """The Java KRaft broker popsync started for this run (`LocalKafka`)."""

    started_here = True

    def __init__(self, broker: LocalKafka) -> None:
        super().__init__(broker.bootstrap_servers)
        self.broker = broker

    @property
    def name(self) -> str:
        return f"the Kafka broker popsync started ({self.bootstrap_servers})"

    @property
    def pid(self) -> int | None:
        return self.broker.pid

    @property
    def log_path(self) -> Path | None:
        return self.broker.log_file

    def alive(self) -> bool:
        return self.broker.running()

    def restart(self, timeout: float = 25.0) -> None:
        self.broker.restart(timeout=timeout)

    def log_tail(self, lines: int = 20) -> str:
        path = self.broker.log_file
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""
        except OSError:
            return ""

    def exit_status(self) -> str:
        return describe_exit(self.broker.returncode)


class ClusterBroker(RunBroker):
    """The local KRaft cluster popsync started for this run (`LocalCluster`): each node is watched, and
    restarted on its own data and ports, on its own (`members`); the cluster lives while any node does."""

    started_here = True

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(cluster.bootstrap_servers)
        self.cluster = cluster
        self._members: list[RunBroker] = [LocalBroker(node) for node in cluster.nodes]

    @property
    def name(self) -> str:
        return f"the Kafka cluster popsync started ({self.bootstrap_servers})"

    def alive(self) -> bool:
        return any(member.alive() for member in self._members)

    def members(self) -> list[RunBroker]:
        return list(self._members)

    def exit_status(self) -> str:
        return ", ".join(f"{m.bootstrap_servers}: {m.exit_status()}" for m in self._members)


class DockerBroker(RunBroker):
    """The `apache/kafka` container popsync started; a restart starts the same container (its data stays)."""

    started_here = True

    def __init__(self, bootstrap_servers: str, container: Any) -> None:
        super().__init__(bootstrap_servers)
        self.container = container  # testcontainers' DockerContainer

    @property
    def name(self) -> str:
        return f"the Kafka broker popsync started in Docker ({self.bootstrap_servers})"

    def _wrapped(self) -> Any:
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()  # `status` is a cached attribute until reloaded
        return wrapped

    def alive(self) -> bool:
        try:
            return self._wrapped().status in ("created", "running", "restarting")
        except Exception:  # the engine does not answer: the container is as good as gone
            return False

    def restart(self, timeout: float = 25.0) -> None:
        self._wrapped().start()
        await_ready(self.bootstrap_servers, timeout, self.alive, self.log_tail)

    def log_tail(self, lines: int = 20) -> str:
        try:
            out, err = self.container.get_logs()
        except Exception:
            return ""
        return "\n".join((out + err).decode(errors="replace").splitlines()[-lines:])

    def exit_status(self) -> str:
        try:
            return describe_exit(int(self._wrapped().attrs["State"]["ExitCode"]))
        except Exception:
            return "gone"
