"""A local cluster's settings, without a JVM: each node's properties, topics' replication, producers' acks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from popsync.broker import ClusterBroker, KafkaUnavailableError, LocalKafka, RunBroker, run_broker
from popsync.broker.local import ClusterNode
from streams.topics import MAX_MESSAGE_BYTES, replicated_configs, replication_for


def _props(broker: LocalKafka, tmp_path: Path, port: int, controller: int) -> dict[str, str]:
    broker.data_dir = tmp_path
    text = broker._properties(port, controller, port)
    return dict(line.split("=", 1) for line in text.splitlines())


def test_a_node_of_three_is_a_voter_and_replicates_everything_three_times(tmp_path: Path) -> None:
    voters = "1@127.0.0.1:9001,2@127.0.0.1:9002,3@127.0.0.1:9003"
    node = LocalKafka(port=9102, node=ClusterNode(2, 9102, 9002, voters, "cid", 3))
    props = _props(node, tmp_path, 9102, 9002)
    assert props["node.id"] == "2"
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == voters
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9102,CONTROLLER://127.0.0.1:9002"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "3", key
    for key in (
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "2", key


@pytest.mark.parametrize(("nodes", "replicas", "min_isr"), [(1, "1", "1"), (2, "2", "1"), (5, "3", "2")])
def test_a_nodes_replication_follows_the_cluster_size(
    tmp_path: Path, nodes: int, replicas: str, min_isr: str
) -> None:
    node = LocalKafka(port=9101, node=ClusterNode(1, 9101, 9001, "1@127.0.0.1:9001", "cid", nodes))
    props = _props(node, tmp_path, 9101, 9001)
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == (replicas, min_isr)


def test_a_single_broker_stays_a_cluster_of_one(tmp_path: Path) -> None:
    props = _props(LocalKafka(), tmp_path, 9101, 9001)
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9001"
    assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


@pytest.mark.parametrize(("brokers", "factor"), [(0, 1), (1, 1), (2, 2), (3, 3), (7, 3)])
def test_topics_are_replicated_min_3_brokers(brokers: int, factor: int) -> None:
    assert replication_for(brokers) == factor


def test_three_copies_need_two_in_sync() -> None:
    assert replicated_configs(3) == {"max.message.bytes": str(MAX_MESSAGE_BYTES), "min.insync.replicas": "2"}
    assert replicated_configs(2) == replicated_configs(1) == {"max.message.bytes": str(MAX_MESSAGE_BYTES)}


class _Admin:
    """A KafkaAdminClient stand-in: a cluster of three brokers, no topics; records what was created."""

    created: ClassVar[list[Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        pass

    def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"broker_id": i} for i in (1, 2, 3)]}

    def list_topics(self) -> list[str]:
        return []

    def create_topics(self, topics: list[Any]) -> None:
        type(self).created.extend(topics)

    def close(self) -> None:
        pass


def test_ensure_topics_creates_three_replicas_on_three_brokers(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams import topics

    _Admin.created = []
    monkeypatch.setattr(topics, "KafkaAdminClient", _Admin)
    assert topics.ensure_topics("b:1", ["a", "b"], 6) == 3
    assert [(t.name, t.num_partitions, t.replication_factor) for t in _Admin.created] == [
        ("a", 6, 3),
        ("b", 6, 3),
    ]
    assert all(t.topic_configs["min.insync.replicas"] == "2" for t in _Admin.created)
    _Admin.created = []
    assert topics.ensure_topics("b:1", ["c"], 6, replication=1) == 1  # a setting wins
    assert "min.insync.replicas" not in _Admin.created[0].topic_configs


def test_faust_replicates_its_own_topics_and_waits_for_every_copy(tmp_path: Path) -> None:
    from streams.app import create_app
    from streams.config import StreamsSettings

    settings = StreamsSettings(bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, replication_factor=3)
    app = create_app(settings)
    assert app.conf.topic_replication_factor == 3
    assert app.conf.producer_acks == -1  # aiokafka's acks=all
    assert (
        create_app(settings.model_copy(update={"replication_factor": 0})).conf.topic_replication_factor == 1
    )


def test_the_connectors_producers_wait_for_every_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors import lgsp, vneid
    from streams.topics import TopicNames

    made: list[dict[str, Any]] = []

    def producer(*args: Any, **kwargs: Any) -> object:
        made.append(kwargs)
        return object()

    monkeypatch.setattr(lgsp, "KafkaProducer", producer)
    monkeypatch.setattr(vneid, "KafkaProducer", producer)
    lgsp.LgspConnector("b:1", TopicNames("p"))
    vneid.VneidEventConnector("b:1", "t", outbox=None)  # type: ignore[arg-type]  # not used before drain
    assert [(k["acks"], k["enable_idempotence"]) for k in made] == [("all", True), ("all", True)]


def test_a_cluster_needs_java(monkeypatch: pytest.MonkeyPatch) -> None:
    import popsync.broker as broker

    monkeypatch.delenv("POPSYNC_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setattr(broker, "find_java", lambda: None)
    with pytest.raises(KafkaUnavailableError, match="cluster of 3 brokers on Java 17"), run_broker(brokers=3):
        pass


def test_a_clusters_handle_watches_each_node() -> None:
    class _Cluster:
        def __init__(self) -> None:
            self.nodes = [LocalKafka(port=p) for p in (9101, 9102, 9103)]
            for node in self.nodes:
                node.bootstrap_servers = f"127.0.0.1:{node.port}"
            self.bootstrap_servers = ",".join(n.bootstrap_servers for n in self.nodes)

    handle = ClusterBroker(_Cluster())  # type: ignore[arg-type]  # the attributes it reads
    members = handle.members()
    assert [m.name for m in members] == [
        f"the Kafka broker popsync started (127.0.0.1:{p})" for p in (9101, 9102, 9103)
    ]
    assert not handle.alive() and handle.started_here
    assert RunBroker("x:1").members()[0].bootstrap_servers == "x:1"


def test_the_cli_asks_for_a_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import popsync.kafka_local
    import popsync.simulate
    from popsync.cli import app

    runs: list[Any] = []
    ups: list[dict[str, Any]] = []
    monkeypatch.setattr(popsync.simulate, "simulate", lambda path, options, console: runs.append(options))

    def up(**kwargs: Any) -> dict[str, Any]:
        ups.append(kwargs)
        nodes = [{"pid": 100 + i, "bootstrap_servers": f"127.0.0.1:{9100 + i}"} for i in (1, 2, 3)]
        return {"bootstrap_servers": ",".join(n["bootstrap_servers"] for n in nodes), "nodes": nodes}

    monkeypatch.setattr(popsync.kafka_local, "kafka_up", up)
    runner = CliRunner()
    assert runner.invoke(app, ["simulate", str(tmp_path / "s.yaml"), "--brokers", "3"]).exit_code == 0
    assert runner.invoke(app, ["simulate", str(tmp_path / "s.yaml")]).exit_code == 0
    assert [options.brokers for options in runs] == [3, 1]
    result = runner.invoke(app, ["kafka", "up", "--brokers", "3"])
    assert result.exit_code == 0, result.output
    assert ups[0]["brokers"] == 3
    assert (
        "127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103" in result.output and "101, 102, 103" in result.output
    )
    refused = runner.invoke(app, ["kafka", "up", "--brokers", "3", "--port", "9092"])
    assert refused.exit_code == 2 and len(ups) == 1
