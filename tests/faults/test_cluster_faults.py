"""The log survives losing a machine: the same load and ledger as test_faults.py, on a local
three-node Kafka cluster (three replicas, two in sync), while nodes are SIGKILLed, the active
controller with them, and all three are restarted one at a time; two deciders and two projectors
share the partitions and one of each is killed. Then two of the three nodes go: nothing is
acknowledged until one is back, when the very same commands go through."""

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from events.registry import parse_event
from infra.kafka_broker import KafkaNode, LocalKafka
from infra.kafka_clients import admin_client, read_topic
from infra.kafka_topics import report
from infra.processes import pid_alive
from infra.settings import Settings
from infra.stack import start_infrastructure, stop_infrastructure
from tests.faults.load import (
    Fault,
    Processes,
    assert_nothing_lost_or_doubled,
    instance_env,
    prepare_scene,
    record_counts,
    run_under_load,
    verdict,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An instance of its own on three Kafka nodes, with the default replication (3, 2)."""
    env = instance_env(
        tmp_path_factory.mktemp("cluster-faults-home"),
        "cluster-faults",
        RECTRACK_KAFKA_BROKERS="3",
        RECTRACK_LOG_LEVEL="warning",
    )
    settings = Settings.from_env(env)
    start_infrastructure(settings)
    yield env
    stop_infrastructure(settings)


@pytest.fixture
async def started(cluster_env: dict[str, str]) -> AsyncIterator[tuple[Settings, Processes]]:
    settings = Settings.from_env(cluster_env)
    processes = Processes(cluster_env)
    for name in ("api", "decidera", "deciderb", "projectora", "projectorb"):
        processes.start(name)
    yield settings, processes
    processes.stop_all()


def node(settings: Settings, node_id: int) -> KafkaNode:
    (found,) = [n for n in LocalKafka(settings).nodes if n.id == node_id]
    return found


def kill_node(settings: Settings, node_id: int, sig: int = signal.SIGKILL) -> None:
    pid = node(settings, node_id).pid()
    assert pid is not None, f"node {node_id} is not running"
    os.kill(pid, sig)
    deadline = time.monotonic() + 60
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), f"node {node_id} did not stop"


def bring_back(settings: Settings) -> None:
    """Start whichever nodes are not running, and wait until every node answers."""
    LocalKafka(settings).start(timeout=180)


def active_controller(settings: Settings) -> int:
    for _ in range(120):
        controller = asyncio.run(LocalKafka(settings).active_controller())
        if controller is not None:
            return controller
        time.sleep(0.5)
    raise AssertionError("the cluster names no active controller")


def kill_the_controller(settings: Settings, killed: list[int]) -> None:
    controller = active_controller(settings)
    killed.append(controller)
    kill_node(settings, controller)


def restart_node(settings: Settings, node_id: int) -> None:
    """A rolling restart's step: stop one node cleanly, start it, wait until all answer."""
    kill_node(settings, node_id, signal.SIGTERM)
    bring_back(settings)


async def test_losing_nodes_and_the_controller_loses_nothing(
    started: tuple[Settings, Processes], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, processes = started
    scene = await prepare_scene(settings)
    controllers: list[int] = []
    faults: list[Fault] = [
        (5, "SIGKILL Kafka node 3", lambda: kill_node(settings, 3)),
        (12, "SIGKILL decider a (b takes over)", lambda: processes.kill("decidera")),
        (15, "bring node 3 back", lambda: bring_back(settings)),
        (22, "SIGKILL the active controller", lambda: kill_the_controller(settings, controllers)),
        (28, "SIGKILL projector a (b takes over)", lambda: processes.kill("projectora")),
        (32, "bring the controller back", lambda: bring_back(settings)),
        (40, "restart node 1", lambda: restart_node(settings, 1)),
        (41, "restart node 2", lambda: restart_node(settings, 2)),
        (42, "restart node 3", lambda: restart_node(settings, 3)),
    ]
    ledger, timeline = await run_under_load(settings, scene, faults, seconds=60)
    counts, chain, differing = await verdict(settings, ledger, scene.gateway)
    counts["controllers_killed"] = controllers
    record_counts("cluster-faults", counts, timeline, capsys)
    assert_nothing_lost_or_doubled(counts, chain, differing)
    assert counts["sent"] > 200, "the load barely ran"


async def post(api: httpx.AsyncClient, body: dict[str, Any]) -> int:
    try:
        return (await api.post("/commands", json=body, params={"wait": 5})).status_code
    except httpx.HTTPError:
        return 0  # no answer is no acknowledgement either


async def test_with_two_nodes_down_nothing_is_acknowledged_until_one_is_back(
    started: tuple[Settings, Processes],
) -> None:
    settings, _ = started
    scene = await prepare_scene(settings)
    await scene.team.__aexit__()
    await scene.gateway.stop()
    bodies: list[dict[str, Any]] = [
        {
            "type": "ReportProgress",
            "command_id": str(uuid.uuid4()),
            "data": {
                "recommendation_id": rec_id,
                "position": "while two nodes are down",
                "delivery_status": "on_track",
            },
        }
        for rec_id in scene.rec_ids[:4]
    ]
    headers = {"Authorization": f"Bearer {scene.token}"}
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=90, headers=headers) as api:
        await asyncio.to_thread(kill_node, settings, 2)
        await asyncio.to_thread(kill_node, settings, 3)
        down = await asyncio.gather(*(post(api, body) for body in bodies))
        assert all(status == 503 or status == 0 for status in down), down
        assert 503 in down, down

        await asyncio.to_thread(bring_back, settings)
        again: list[int] = []
        for body in bodies:  # the same command ids: resent as a client told 503 would
            for _ in range(30):
                status = await post(api, body)
                if status in (200, 201):
                    break
                await asyncio.sleep(2)
            again.append(status)
        assert again == [201] * len(bodies) or set(again) <= {200, 201}, again
        # Each went through exactly once, whatever the producer retried meanwhile.
        for body in bodies:
            answer = await api.get(f"/commands/{body['command_id']}")
            assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    events = [parse_event(r.value) for r in await read_topic(settings, settings.topics.events)]
    ids = Counter(e.command_id for e in events)
    assert [ids[uuid.UUID(str(b["command_id"]))] for b in bodies] == [1] * len(bodies)

    # Every topic has three replicas, two of which take each write, and all are in sync again.
    admin = admin_client(settings)
    await admin.start()
    try:
        topics = (await report(admin, settings)).states
    finally:
        await admin.close()
    for name, topic in topics.items():
        assert topic is not None, name
        assert (topic.replication_factor, topic.min_insync_replicas) == (3, 2), name
