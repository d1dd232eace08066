"""Fault injection under a steady load: every process is SIGKILLed in turn, two deciders and two
projectors share the partitions, PostgreSQL and the broker go away for seconds. Afterwards
nothing acknowledged is lost, nothing is applied twice, and the read models equal the log."""

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from infra.kafka_broker import LocalKafka
from infra.postgres import LocalPostgres
from infra.processes import pid_alive
from infra.settings import Settings
from infra.stack import start_infrastructure, stop_infrastructure
from tests.faults.load import (
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
def fault_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An instance of its own: its broker and database are the ones this suite kills."""
    env = instance_env(tmp_path_factory.mktemp("faults-home"), "faults")
    settings = Settings.from_env(env)
    start_infrastructure(settings)
    yield env
    stop_infrastructure(settings)


def kill_postgres(settings: Settings) -> None:
    pid = LocalPostgres(settings).pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def kill_kafka(settings: Settings) -> None:
    pid = LocalKafka(settings).pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.1)


@pytest.fixture
async def started(fault_env: dict[str, str]) -> AsyncIterator[tuple[Settings, Processes]]:
    settings = Settings.from_env(fault_env)
    processes = Processes(fault_env)
    for name in ("api", "decidera", "deciderb", "projectora", "projectorb"):
        processes.start(name)
    yield settings, processes
    processes.stop_all()


async def test_nothing_acknowledged_is_lost_and_nothing_is_applied_twice(
    started: tuple[Settings, Processes], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, processes = started
    scene = await prepare_scene(settings)
    faults = [
        (5, "SIGKILL decider a (b takes over)", lambda: processes.kill("decidera")),
        (10, "SIGKILL projector a (b takes over)", lambda: processes.kill("projectora")),
        (
            15,
            "SIGKILL the API, restart it",
            lambda: processes.restart("api"),
        ),
        (22, "SIGKILL PostgreSQL", lambda: kill_postgres(settings)),
        (27, "restart PostgreSQL", lambda: LocalPostgres(settings).start()),
        (33, "SIGKILL the broker", lambda: kill_kafka(settings)),
        (37, "restart the broker", lambda: LocalKafka(settings).start()),
        (
            48,
            "SIGKILL decider b, restart it",
            lambda: processes.restart("deciderb"),
        ),
        (
            52,
            "SIGKILL projector b, restart it",
            lambda: processes.restart("projectorb"),
        ),
    ]
    ledger, timeline = await run_under_load(settings, scene, faults, seconds=60)
    counts, chain, differing = await verdict(settings, ledger, scene.gateway)
    record_counts("faults", counts, timeline, capsys)
    assert_nothing_lost_or_doubled(counts, chain, differing)
