"""The local Kafka's shape: node ids, ports, directories and pid files, one node or three, and
each node's configuration. Issue 15, part 2 (the cluster itself runs in
tests/integration/test_kafka_cluster.py)."""

from pathlib import Path

import pytest

from infra.kafka_broker import kafka_nodes, server_properties
from infra.kafka_tls import BrokerTls
from infra.settings import KafkaSettingsError, Settings


def settings_of(home: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "RECTRACK_HOME": str(home),
            "RECTRACK_KAFKA_PORT": "19092",
            "RECTRACK_KAFKA_CONTROLLER_PORT": "19093",
            **env,
        }
    )


def properties(
    settings: Settings, node_id: int, tls: tuple[BrokerTls, str] | None = None
) -> dict[str, str]:
    text = server_properties(
        settings, Path(f"/data/{node_id}"), broker_password="pw-broker", tls=tls, node_id=node_id
    )
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_one_node_by_default_on_the_ports_and_layout_homes_had(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    assert settings.kafka_brokers == 1
    assert settings.kafka_node_ports == {1: (19092, 19093)}
    assert settings.bootstrap_servers == "localhost:19092"
    [node] = kafka_nodes(settings)
    assert (node.id, node.address, node.controller_port) == (1, "localhost:19092", 19093)
    assert node.dir == tmp_path / "kafka"
    assert node.config == tmp_path / "kafka" / "server.properties"
    assert node.data_dir == tmp_path / "kafka" / "data"
    assert node.pid_file == tmp_path / "run" / "kafka.pid"
    assert node.log_file == tmp_path / "logs" / "kafka.log"


def test_three_nodes_take_every_second_port_from_the_configured_ones(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, RECTRACK_KAFKA_BROKERS="3")
    assert settings.kafka_node_ports == {
        1: (19092, 19093),
        2: (19094, 19095),
        3: (19096, 19097),
    }
    # Clients bootstrap from every node, so losing any one loses nothing.
    assert settings.bootstrap_servers == "localhost:19092,localhost:19094,localhost:19096"
    nodes = kafka_nodes(settings)
    assert [n.id for n in nodes] == [1, 2, 3]
    assert [n.dir for n in nodes] == [tmp_path / "kafka" / f"node-{i}" for i in (1, 2, 3)]
    assert [n.pid_file.name for n in nodes] == ["kafka-1.pid", "kafka-2.pid", "kafka-3.pid"]
    assert [n.log_file.name for n in nodes] == ["kafka-1.log", "kafka-2.log", "kafka-3.log"]
    assert len({n.data_dir for n in nodes}) == 3
    # The defaults interleave: 9092/9093, 9094/9095, 9096/9097.
    defaults = Settings.from_env({"RECTRACK_HOME": str(tmp_path), "RECTRACK_KAFKA_BROKERS": "3"})
    assert list(defaults.kafka_node_ports.values()) == [(9092, 9093), (9094, 9095), (9096, 9097)]


def test_a_count_other_than_one_or_three_and_overlapping_ports_are_refused(
    tmp_path: Path,
) -> None:
    for count in ("2", "0", "many"):
        with pytest.raises(KafkaSettingsError, match="must be 1 or 3"):
            settings_of(tmp_path, RECTRACK_KAFKA_BROKERS=count)
    # Node 2's client port would be node 1's controller port.
    with pytest.raises(KafkaSettingsError, match="ports overlap"):
        settings_of(tmp_path, RECTRACK_KAFKA_BROKERS="3", RECTRACK_KAFKA_CONTROLLER_PORT="19094")
    # One node is free to use them.
    assert settings_of(tmp_path, RECTRACK_KAFKA_CONTROLLER_PORT="19094").kafka_brokers == 1


def test_a_home_remembers_its_nodes_and_refuses_another_count(tmp_path: Path) -> None:
    cluster_home, old_home = tmp_path / "cluster", tmp_path / "old"
    (cluster_home / "kafka").mkdir(parents=True)
    (cluster_home / "kafka" / "brokers").write_text("3\n")
    assert settings_of(cluster_home).kafka_brokers == 3
    assert settings_of(cluster_home, RECTRACK_KAFKA_BROKERS="3").kafka_brokers == 3
    with pytest.raises(KafkaSettingsError) as refused:
        settings_of(cluster_home, RECTRACK_KAFKA_BROKERS="1")
    assert str(cluster_home) in str(refused.value) and "3 node(s), not 1" in str(refused.value)
    # A home whose single node was made before clusters existed has no file: one node.
    (old_home / "kafka" / "data").mkdir(parents=True)
    assert settings_of(old_home).kafka_brokers == 1
    with pytest.raises(KafkaSettingsError, match="1 node"):
        settings_of(old_home, RECTRACK_KAFKA_BROKERS="3")
    # A file that says something else is refused rather than guessed at.
    (cluster_home / "kafka" / "brokers").write_text("2\n")
    with pytest.raises(KafkaSettingsError, match="should say 1 or 3"):
        settings_of(cluster_home)
    # A cluster of one's own starts nothing here: the home's number does not matter.
    external = settings_of(cluster_home, KAFKA_BOOTSTRAP_SERVERS="k:9092")
    assert external.bootstrap_servers == "k:9092"


def test_each_node_is_a_voter_of_one_quorum_naming_all_three(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, RECTRACK_KAFKA_BROKERS="3")
    configs = {n: properties(settings, n) for n in (1, 2, 3)}
    voters = "1@localhost:19093,2@localhost:19095,3@localhost:19097"
    for n, config in configs.items():
        client, controller = settings.kafka_node_ports[n]
        assert config["node.id"] == str(n)
        assert config["process.roles"] == "broker,controller"
        assert config["controller.quorum.voters"] == voters
        assert config["listeners"] == (
            f"CLIENT://localhost:{client},CONTROLLER://localhost:{controller}"
        )
        assert config["advertised.listeners"] == f"CLIENT://localhost:{client}"
        assert config["log.dirs"] == f"/data/{n}"
        # Internal topics on all three; a write to them needs two.
        assert config["offsets.topic.replication.factor"] == "3"
        assert config["transaction.state.log.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == "2"
        assert config["share.coordinator.state.topic.replication.factor"] == "3"
    # Apart from what names the node, its ports and its data, the nodes are configured alike:
    # the same authentication, authorizer, super users and topic rules.
    own = {"node.id", "listeners", "advertised.listeners", "log.dirs"}
    shared = [{k: v for k, v in c.items() if k not in own} for c in configs.values()]
    assert shared[0] == shared[1] == shared[2]
    assert shared[0]["authorizer.class.name"].endswith("StandardAuthorizer")
    assert shared[0]["allow.everyone.if.no.acl.found"] == "false"
    assert shared[0]["listener.security.protocol.map"] == (
        "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT"
    )


def test_a_single_node_is_a_quorum_of_one_with_unreplicated_internal_topics(
    tmp_path: Path,
) -> None:
    config = properties(settings_of(tmp_path), 1)
    assert config["node.id"] == "1"
    assert config["controller.quorum.voters"] == "1@localhost:19093"
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"


def test_with_tls_every_node_serves_the_one_localhost_certificate(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, RECTRACK_KAFKA_BROKERS="3", RECTRACK_KAFKA_TLS="1")
    tls = BrokerTls(tmp_path / "kafka" / "tls")
    for n in (1, 2, 3):
        config = properties(settings, n, tls=(tls, "ks"))
        assert config["listener.security.protocol.map"].endswith("CLIENT:SASL_SSL")
        assert config["listener.name.client.ssl.keystore.location"] == str(tls.keystore)
        # Each node checks the others' certificate against this home's CA.
        assert config["listener.name.client.ssl.truststore.location"] == str(tls.ca_cert)
    assert settings.kafka_ca_path == tls.ca_cert
