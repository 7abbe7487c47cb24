"""A local three-broker KRaft cluster: up/status/down, replicated topics, and one broker's death survived.

Faults: one of three brokers SIGKILLed mid-run (the active controller, so the quorum elects too), brought
back later. Expected: each record's outcome as the pure rules give it (tests/simulate_oracle.py), the same
as on one broker; no partition without a live leader longer than an election; no JVM left.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fault_runs import (
    Data,
    assert_exact,
    assert_none_left,
    await_true,
    generated_data,
    marked_environment,
    run_file_scenario,
    write_scenario,
)
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from simulate_oracle import read_results

from popsync.broker import ClusterBroker, LocalCluster, kafka_down, kafka_status, kafka_up
from popsync.broker.jars import find_java
from popsync.broker.probe import answers, process_alive
from popsync.simulate import Run, RunOutcome
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration

RECORDS = 3000
RATE = 150  # records/s: 20 s of publishing, so the kill and the restart land while records still arrive
# A partition led by the killed broker has no live leader until the controller sees the broker's session
# expire (broker.session.timeout.ms 4 s) and elects another from the ISR. When the killed one was the active
# controller, the quorum first notices (controller.quorum.fetch.timeout.ms, 2 s) and elects a new one (up
# to 2 x the 1 s election timeout), which then waits out the session: about 8 s at worst, measured 3.7-7.7 s.
# 12 s bounds that with room for the metadata's propagation, the 0.25 s polling and a busy machine.
ELECTION_S = 12.0
DOWN_S = 8.0  # how long the killed broker stays down before the test restarts it (given cluster)
MARK = "POPSYNC_CLUSTER_MARK"  # in the environment of every process this module starts


@pytest.fixture(scope="module", autouse=True)
def need_java() -> None:
    if find_java() is None:
        if os.environ.get("CI"):
            raise AssertionError("no Java 17+ here: the local cluster cannot run")
        pytest.skip("no Java 17+ here: the local cluster runs on Java")


@pytest.fixture(scope="module", autouse=True)
def cluster_mark(kafka_bootstrap: str) -> Iterator[str]:
    """Marks what this module starts, after the session's broker started (that one is not ours)."""
    yield from marked_environment(MARK)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return generated_data(
        tmp_path_factory.mktemp("cluster"),
        people=4500,
        population_seed=13,
        records=RECORDS,
        records_seed=5,
        defects={
            "unsynced": {
                "mismatch": 40,
                "not_found": 30,
                "malformed_id": 20,
                "deceased": 20,
                "duplicate": 40,
            },
            "corrected": {"no_diacritics": 30, "legacy_id": 15},
        },
    )


def _run(
    data: Data, tmp: Path, bootstrap: str | None, on_running: Callable[[Run], None], **options: Any
) -> tuple[RunOutcome, str]:
    return run_file_scenario(
        write_scenario(data, tmp, "cluster", RATE), tmp, bootstrap, on_running, **options
    )


def _per_record(tmp: Path) -> dict[str, tuple[str, list[str]]]:
    return {
        f"{r['sector']}|{r['province']}|{r['record_id']}": (r["outcome"], r["fields"])
        for r in read_results(tmp / "results.jsonl")
        if r["outcome"] != "rejected"
    }


@dataclass
class Leaders:
    """Polls the cluster's metadata (the admin client's) while a run lasts: for each partition, the longest
    stretch without a live leader (no leader, or the broker known dead)."""

    bootstrap: str
    dead: set[int] = field(default_factory=set)  # node ids killed and not yet back, set by the test
    longest: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    errors: list[str] = field(default_factory=list)
    _since: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Leaders:
        self._thread = threading.Thread(target=self._loop, name="leaders", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        now = time.monotonic()
        for key, since in self._since.items():
            self.longest[key] = max(self.longest.get(key, 0.0), now - since)

    def worst(self) -> float:
        return max(self.longest.values(), default=0.0)

    def _loop(self) -> None:
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap, client_id="leaders", request_timeout_ms=3000
        )
        try:
            while not self._stop.wait(0.25):
                try:
                    topics = admin.describe_topics()
                except Exception as exc:  # a broker of the bootstrap list is down: the next poll retries
                    self.errors.append(repr(exc))
                    continue
                self.polls += 1
                now = time.monotonic()
                for topic in topics:
                    for part in topic["partitions"]:
                        key = f"{topic['name']}/{part['partition_index']}"
                        leaderless = part["leader_id"] in (-1, None) or part["leader_id"] in self.dead
                        if leaderless:
                            self._since.setdefault(key, now)
                        elif key in self._since:
                            gap = now - self._since.pop(key)
                            self.longest[key] = max(self.longest.get(key, 0.0), gap)
        finally:
            admin.close()


def _replicas(bootstrap: str) -> dict[str, set[int]]:
    """topic → the numbers of replicas its partitions have."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="replicas")
    try:
        return {
            t["name"]: {len(p["replica_nodes"]) for p in t["partitions"]} for t in admin.describe_topics()
        }
    finally:
        admin.close()


def _controller(bootstrap: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="controller")
    try:
        return int(admin.describe_cluster()["controller_id"])
    finally:
        admin.close()


def test_kafka_up_three_brokers_status_down(tmp_path: Path) -> None:
    state_file = tmp_path / "cluster.json"
    started = time.monotonic()
    state = kafka_up(brokers=3, state_file=state_file, log=print)
    took = time.monotonic() - started
    try:
        nodes = state["nodes"]
        assert len(nodes) == 3
        assert len({n["pid"] for n in nodes}) == len({n["data_dir"] for n in nodes}) == 3
        assert len({n["bootstrap_servers"] for n in nodes}) == 3
        assert all(n["bootstrap_servers"].startswith("127.0.0.1:") for n in nodes)
        assert state["bootstrap_servers"] == ",".join(n["bootstrap_servers"] for n in nodes)
        status = kafka_status(state_file=state_file)
        assert status is not None and status["running"] and status["answers"]
        assert all(n["answers"] for n in status["nodes"])
        # Each node answers alone, and the cluster has three brokers.
        assert all(answers(n["bootstrap_servers"]) for n in nodes)
        # Topics popsync creates: 3 replicas, 2 in sync needed; heap as documented.
        topic = f"cluster-{uuid.uuid4().hex[:8]}"
        assert ensure_topics(state["bootstrap_servers"], [topic], 6) == 3
        admin = KafkaAdminClient(bootstrap_servers=state["bootstrap_servers"], client_id="check")
        try:
            assert len(admin.describe_cluster()["brokers"]) == 3
            (described,) = admin.describe_topics([topic])
            assert len(described["partitions"]) == 6
            assert all(len(p["replica_nodes"]) == 3 for p in described["partitions"])
            configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            (by_name,) = configs.values()  # {resource type: {name: {key: data}}}
            min_isr = by_name[topic]["min.insync.replicas"]
            assert (min_isr["value"] if isinstance(min_isr, dict) else min_isr) == "2", min_isr
        finally:
            admin.close()
        for node in nodes:
            cmdline = Path(f"/proc/{node['pid']}/cmdline").read_bytes().split(b"\0")
            assert b"-Xmx256m" in cmdline
    finally:
        assert kafka_down(state_file=state_file)
    assert not any(process_alive(int(n["pid"])) for n in state["nodes"])
    assert not any(Path(n["data_dir"]).exists() for n in state["nodes"])
    assert kafka_status(state_file=state_file) is None
    print(f"cluster: 3 nodes up in {took:.1f} s (cluster start {state['start_seconds']} s)")


@pytest.mark.slow
def test_given_cluster_one_broker_killed_then_restarted_same_results(
    data: Data, tmp_path: Path, kafka_bootstrap: str
) -> None:
    # The reference: the same scenario on the session's single broker, no fault.
    single = tmp_path / "single"
    single.mkdir()
    _run(data, single, kafka_bootstrap, lambda run: None)
    reference = _per_record(single)
    assert reference == data.expected

    events: list[str] = []
    errors: list[BaseException] = []
    with LocalCluster(3, log=print) as cluster:
        bootstrap = cluster.bootstrap_servers
        leaders = Leaders(bootstrap).start()
        victim_pids: list[int] = []

        def on_running(run: Run) -> None:
            def inject() -> None:
                try:
                    await_true(
                        lambda: len(run.collector.results) >= RECORDS // 5, 300, "a fifth of the results"
                    )
                    node_id = _controller(bootstrap)
                    node = cluster.nodes[node_id - 1]
                    assert node.pid is not None
                    victim_pids.append(node.pid)
                    leaders.dead.add(node_id)
                    os.kill(node.pid, signal.SIGKILL)
                    events.append(f"node {node_id} (controller) killed at {len(run.collector.results)}")
                    time.sleep(DOWN_S)  # the run goes on with two brokers
                    events.append(f"restarted at {len(run.collector.results)}")
                    node.restart(timeout=60)
                    leaders.dead.discard(node_id)
                    assert node.pid is not None
                    victim_pids.append(node.pid)
                except BaseException as exc:
                    errors.append(exc)

            threading.Thread(target=inject, name="chaos", daemon=True).start()

        clustered = tmp_path / "cluster"
        clustered.mkdir()
        try:
            outcome, printed = _run(data, clustered, bootstrap, on_running)
        finally:
            leaders.stop()
        assert errors == [], errors
        assert len(events) == 2, events
        # Killed mid-run, and back while records still arrived.
        assert int(events[0].rsplit(" ", 1)[1]) < int(events[1].rsplit(" ", 1)[1]) < RECORDS, events
        assert_exact(outcome, clustered, data)
        assert _per_record(clustered) == reference
        assert leaders.polls > 20
        assert leaders.worst() <= ELECTION_S, sorted(leaders.longest.items(), key=lambda kv: -kv[1])[:5]
        assert "Traceback" not in printed
        pids = [n.pid for n in cluster.nodes]
    assert not any(process_alive(p) for p in [*victim_pids, *pids] if p)
    print(
        f"cluster: {events}; worst leaderless partition {leaders.worst():.1f} s over "
        f"{len(leaders.longest)} partitions led by it; {RECORDS} records exact, as on one broker"
    )


@pytest.mark.slow
def test_simulate_brokers_3_restarts_a_killed_broker(
    data: Data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POPSYNC_BOOTSTRAP_SERVERS", raising=False)  # simulate starts its own cluster
    runs: list[Run] = []
    jvms: list[int] = []
    errors: list[BaseException] = []
    replicas: dict[str, set[int]] = {}

    def on_running(run: Run) -> None:
        runs.append(run)
        broker = run.broker
        assert isinstance(broker, ClusterBroker) and len(broker.members()) == 3

        def inject() -> None:
            try:
                await_true(lambda: len(run.collector.results) >= RECORDS // 3, 300, "a third of the results")
                # The worker has created its changelogs by now (results flow): all three brokers answer.
                replicas.update(_replicas(run.bootstrap_servers))
                member = broker.members()[1]
                pid = member.pid
                assert pid is not None
                jvms.append(pid)
                os.kill(pid, signal.SIGKILL)
                await_true(lambda: member.alive() and member.pid != pid, 90, "the broker restarted")
                assert member.pid is not None
                jvms.append(member.pid)
            except BaseException as exc:
                errors.append(exc)

        threading.Thread(target=inject, name="chaos", daemon=True).start()

    outcome, printed = _run(data, tmp_path, None, on_running, brokers=3)
    assert errors == [], errors
    assert_exact(outcome, tmp_path, data)
    broker = runs[0].broker
    assert isinstance(broker, ClusterBroker)
    killed = broker.members()[1]
    assert runs[0].supervisor is not None
    restarts = {name: n for name, n in runs[0].supervisor.restarts().items() if n}
    assert restarts == {killed.name: 1}
    assert f"{killed.name} died (killed by SIGKILL); restarting it (1 of 5)" in printed
    assert printed.count("Kafka 4") >= 4  # three nodes ready, one restarted
    assert "Traceback" not in printed
    # Every topic of the run, faust's changelogs and the consumer offsets too, has three copies.
    prefix = runs[0].topics.prefix
    ours = {t: n for t, n in replicas.items() if prefix in t or t == "__consumer_offsets"}
    assert any(t.endswith("-changelog") for t in ours), sorted(ours)
    assert {t: n for t, n in ours.items() if n != {3}} == {}
    all_jvms = [*jvms, *(m.pid for m in broker.members() if m.pid)]
    assert [p for p in all_jvms if process_alive(p)] == []
    data_dirs = [node.data_dir for node in broker.cluster.nodes]
    assert not any(d is not None and d.exists() for d in data_dirs)
    print(f"cluster: simulate --brokers 3, node 2 SIGKILLed and restarted; {RECORDS} records exact")


def test_no_process_of_the_module_is_left(cluster_mark: str) -> None:
    """Last of the module: nothing the tests above started (marked by its environment) still runs."""
    assert_none_left(MARK, cluster_mark)
