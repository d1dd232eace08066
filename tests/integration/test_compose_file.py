"""docker-compose.yml describes the same topology and a Compose parser accepts it."""

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_accepts_the_file() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is installed by `make test` (Debian package docker-compose)"
    done = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "service",
    [
        "kafka",
        "postgres",
        "api",
        "decider",
        "projector",
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "api-cluster",
        "decider-cluster",
        "projector-cluster",
    ],
)
def test_every_service_has_a_health_check_or_waits_for_healthy_ones(service: str) -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][service]
    assert "healthcheck" in spec or all(
        dep.get("condition") in ("service_healthy", "service_completed_successfully")
        for dep in spec["depends_on"].values()
    )


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


CLUSTER_NODES = ("kafka-1", "kafka-2", "kafka-3")
CLUSTER_APP = ("topics-cluster", "api-cluster", "decider-cluster", "projector-cluster")


def test_compose_accepts_the_cluster_profile() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is installed by `make test` (Debian package docker-compose)"
    done = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "--profile", "cluster", "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # What Compose resolved (anchors merged) is what the file says.
    resolved = yaml.safe_load(done.stdout)["services"]
    assert set(CLUSTER_NODES) | set(CLUSTER_APP) <= set(resolved)
    assert resolved["kafka-2"]["environment"]["KAFKA_NODE_ID"] == 2


def test_the_cluster_profile_is_three_voting_nodes_configured_like_the_single_one() -> None:
    services = _compose()["services"]
    single = services["kafka"]
    nodes = {name: services[name] for name in CLUSTER_NODES}
    voters = "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
    # What names a node, where it stands in the quorum and its replication differ by design.
    own = {
        "KAFKA_NODE_ID",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "CLUSTER_ID",
    }
    shared = {k: v for k, v in single["environment"].items() if k not in own}
    cluster_ids = set()
    for index, (name, node) in enumerate(nodes.items(), start=1):
        env = node["environment"]
        assert node["profiles"] == ["cluster"] and "profiles" not in single
        assert node["image"] == single["image"] and node["healthcheck"] == single["healthcheck"]
        assert node["hostname"] == name
        assert {k: v for k, v in env.items() if k not in own} == shared, name
        assert env["KAFKA_NODE_ID"] == index
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
        assert node["volumes"] == [f"{name}-data:/var/lib/kafka/data"]
        cluster_ids.add(env["CLUSTER_ID"])
    # One cluster id, a valid one: base64 (URL-safe, unpadded) of 16 bytes.
    [cluster_id] = cluster_ids
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert set(_compose()["volumes"]) >= {f"{name}-data" for name in CLUSTER_NODES}


def test_the_cluster_profiles_app_uses_every_node_and_stands_beside_the_single_one() -> None:
    services = _compose()["services"]
    for name in CLUSTER_APP:
        spec, twin = services[name], services[name.removesuffix("-cluster")]
        env = spec["environment"]
        assert spec["profiles"] == ["cluster"] and spec["command"] == twin["command"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        # Its own schema and keys, so both stacks may run on one PostgreSQL.
        assert env["RECTRACK_DB_SCHEMA"] != twin["environment"].get("RECTRACK_DB_SCHEMA")
        assert env["RECTRACK_REPLICATION_FACTOR"] == "3"
        assert env["RECTRACK_MIN_INSYNC_REPLICAS"] == "2"
        assert not set(spec["volumes"]) & set(twin["volumes"])
        depends = spec["depends_on"]
        assert {f"kafka-{n}" for n in (1, 2, 3)} <= set(depends) and "kafka" not in depends
        assert all(
            d["condition"] in ("service_healthy", "service_completed_successfully")
            for d in depends.values()
        )
    assert services["api-cluster"]["ports"] != services["api"]["ports"]


APP_SERVICES = ["api", "decider", "projector"]
APP_SERVICES += [f"{s}-cluster" for s in APP_SERVICES]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_restart_and_check_their_readiness(service: str) -> None:
    spec = _compose()["services"][service]
    assert spec["restart"] in ("unless-stopped", "on-failure")
    probe = " ".join(spec["healthcheck"]["test"])
    port = {"api": 8000, "decider": 8001, "projector": 8002}[service.split("-")[0]]
    assert f"http://localhost:{port}/health/ready" in probe
