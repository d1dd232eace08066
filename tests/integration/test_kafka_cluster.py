"""Issue 15, part 2: a local cluster of three Kafka nodes that survives losing any one.

The module starts its own cluster (RECTRACK_KAFKA_BROKERS=3, TLS on, so every node's certificate
and the nodes' own connections to each other are checked too) in a home of its own, on a block
of six free ports. After the start, nothing says how many nodes there are: the home does.
"""

import asyncio
import os
import signal
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka.admin import NewTopic

from infra.kafka_broker import LocalKafka
from infra.kafka_clients import admin_client, durable_producer, read_topic
from infra.processes import free_port, pid_alive, port_open
from infra.settings import Settings
from infra.stack import active_controller
from tests.brokers import free_port_block
from tests.cli import rectrack

pytestmark = pytest.mark.integration

NODES = (1, 2, 3)


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running three-node cluster; the environment of its home (which names no count)."""
    base = free_port_block(6)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "RECTRACK_KAFKA_BROKERS")
    }
    env |= {
        "RECTRACK_HOME": str(tmp_path_factory.mktemp("cluster-home")),
        "RECTRACK_KAFKA_PORT": str(base),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(base + 1),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_KAFKA_TLS": "1",
        "RECTRACK_TOPIC_PREFIX": f"cluster-{uuid.uuid4().hex[:6]}.",
        "RECTRACK_LOG_LEVEL": "warning",
    }
    kafka = LocalKafka(Settings.from_env({**env, "RECTRACK_KAFKA_BROKERS": "3"}))
    started = time.monotonic()
    assert kafka.start()
    print(f"three nodes started in {time.monotonic() - started:.1f} s")
    try:
        yield env
    finally:
        kafka.stop()


@pytest.fixture(scope="module")
def settings(cluster_env: dict[str, str]) -> Settings:
    """The home's settings: three nodes, because the home says so."""
    return Settings.from_env(cluster_env)


@pytest.fixture(scope="module")
async def replicated_topic(settings: Settings) -> AsyncIterator[str]:
    """A topic on all three nodes that needs two in-sync replicas for a write."""
    name = f"{settings.topic_prefix}replicated"
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 3, 3, topic_configs={"min.insync.replicas": "2"})]
        )
        deadline = time.monotonic() + 30
        while True:
            [topic] = await admin.describe_topics([name])
            partitions = topic["partitions"]
            if partitions and all(len(p["isr"]) == 3 for p in partitions):
                break
            assert time.monotonic() < deadline, f"replicas never all in sync: {topic}"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    yield name


async def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    """Send with acks=all (the durable producer) and wait for every acknowledgement."""
    producer = durable_producer(settings)
    await producer.start()
    try:
        for value in values:
            await asyncio.wait_for(producer.send_and_wait(topic, value, key=value), 60)
    finally:
        await producer.stop()


def test_three_nodes_run_each_with_its_own_directory_ports_and_pid(settings: Settings) -> None:
    assert settings.kafka_brokers == 3
    kafka = LocalKafka(settings)
    pids = kafka.pids()
    assert set(pids) == set(NODES) and len(set(pids.values())) == 3
    assert (settings.home / "kafka" / "brokers").read_text().strip() == "3"
    cluster_ids = set()
    ca = ssl.create_default_context(cafile=str(kafka.tls.ca_cert))
    for node in kafka.nodes:
        assert node.ready() and port_open(node.controller_port)
        assert node.pid_file == settings.run_dir / f"kafka-{node.id}.pid"
        meta = dict(
            line.split("=", 1)
            for line in (node.data_dir / "meta.properties").read_text().splitlines()
            if "=" in line
        )
        assert meta["node.id"] == str(node.id)
        cluster_ids.add(meta["cluster.id"])
        assert oct(node.config.stat().st_mode & 0o777) == "0o600"
        # Every node serves a certificate a client checking the name "localhost" accepts.
        with (
            socket.create_connection(("localhost", node.client_port), timeout=10) as raw,
            ca.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() in ("TLSv1.3", "TLSv1.2")
    assert len(cluster_ids) == 1, "the nodes were formatted as different clusters"
    assert settings.bootstrap_servers == ",".join(n.address for n in kafka.nodes)


async def test_a_topic_on_three_replicas_takes_acks_all_writes(
    settings: Settings, replicated_topic: str
) -> None:
    admin = admin_client(settings)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        [topic] = await admin.describe_topics([replicated_topic])
    finally:
        await admin.close()
    assert sorted(b["node_id"] for b in cluster["brokers"]) == list(NODES)
    assert all(sorted(p["replicas"]) == list(NODES) for p in topic["partitions"])
    await produce(settings, replicated_topic, [b"before-1", b"before-2", b"before-3"])
    records = await read_topic(settings, replicated_topic)
    assert sorted(r.value for r in records) == [b"before-1", b"before-2", b"before-3"]


def status_lines(env: dict[str, str]) -> tuple[dict[int, str], str]:
    """`rectrack status`: each node's table line, and the line naming the controller."""
    # Only Kafka runs here: status exits 1 naming the database and the app as stopped.
    out = rectrack(env, "status", check=False).stdout
    nodes = {n: line for n in NODES for line in out.splitlines() if f"kafka node {n} " in line}
    [controller] = [line for line in out.splitlines() if line.startswith("Controller:")]
    return nodes, controller


def test_status_lists_every_node_and_the_active_controller(
    settings: Settings, cluster_env: dict[str, str]
) -> None:
    kafka = LocalKafka(settings)
    nodes, controller_line = status_lines(cluster_env)
    controller = active_controller(settings)
    assert controller in NODES
    assert controller_line == f"Controller: node {controller}"
    assert set(nodes) == set(NODES)
    for node in kafka.nodes:
        line = nodes[node.id]
        assert "running" in line and str(kafka.pids()[node.id]) in line and node.address in line
        assert ("active controller" in line) == (node.id == controller), line


def test_a_home_refuses_another_number_of_nodes(
    settings: Settings, cluster_env: dict[str, str]
) -> None:
    before = LocalKafka(settings).pids()
    for args, env in [
        (("status",), {**cluster_env, "RECTRACK_KAFKA_BROKERS": "1"}),
        (("up", "--brokers", "1"), cluster_env),
    ]:
        refused = rectrack(env, *args, check=False)
        assert refused.returncode == 1, refused.stdout
        assert "holds a Kafka of 3 node(s), not 1" in refused.stderr
        assert settings.home.name in refused.stderr
    assert LocalKafka(settings).pids() == before


async def test_losing_the_active_controller_loses_no_acknowledged_write(
    settings: Settings, cluster_env: dict[str, str], replicated_topic: str
) -> None:
    kafka = LocalKafka(settings)
    killed = await kafka.active_controller()
    assert killed in NODES
    pid = kafka.pids()[killed]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, "the killed node did not die"
        await asyncio.sleep(0.1)

    # The other two elect a controller among themselves and take acks=all writes (two
    # replicas are in sync, as min.insync.replicas asks).
    deadline = time.monotonic() + 30
    while (controller := await kafka.active_controller()) in (None, killed):
        assert time.monotonic() < deadline, f"no new controller; still {controller}"
        await asyncio.sleep(0.5)
    assert controller in set(NODES) - {killed}
    await produce(settings, replicated_topic, [b"after-1", b"after-2", b"after-3"])
    records = await read_topic(settings, replicated_topic)
    assert sorted(r.value for r in records) == [
        b"after-1",
        b"after-2",
        b"after-3",
        b"before-1",
        b"before-2",
        b"before-3",
    ]

    nodes, controller_line = await asyncio.to_thread(status_lines, cluster_env)
    assert "stopped" in nodes[killed] and "active controller" not in nodes[killed]
    assert controller_line != f"Controller: node {killed}"
    assert "running" in nodes[controller] and "active controller" in nodes[controller]

    # `rectrack up` (here its infra call) brings the missing node back beside the others.
    assert await asyncio.to_thread(kafka.start)
    assert set(kafka.pids()) == set(NODES) and kafka.ready()


def test_down_stops_every_node_and_leaves_no_pid(
    settings: Settings, cluster_env: dict[str, str]
) -> None:
    kafka = LocalKafka(settings)
    pids = kafka.pids()
    assert len(pids) == 3
    down = rectrack(cluster_env, "down")
    assert "kafka" in down.stdout
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not list(settings.run_dir.glob("kafka*.pid"))
    assert not any(node.ready() or port_open(node.controller_port) for node in kafka.nodes)
    nodes, controller_line = status_lines(cluster_env)
    assert all("stopped" in line for line in nodes.values())
    assert controller_line == "Controller: unknown (no node answers)"
