"""One fixture set: the real broker and PostgreSQL, started once per session through `infra`.

Each run owns its data: a unique topic prefix and database schema, and a fresh RECTRACK_HOME
with free ports (unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point at running services).
"""

import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from infra.database import create_pool, migrate
from infra.processes import free_port
from infra.settings import Settings
from infra.stack import start_infrastructure, stop_infrastructure
from services.decider.gateway import CommandGateway
from tests.cli import start_app
from tests.sealing import trust_test_decider

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def run_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of this test run's rectrack instance."""
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "RECTRACK_HOME": str(tmp_path_factory.mktemp("rectrack-home")),
        "RECTRACK_KAFKA_PORT": str(free_port()),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_TOPIC_PREFIX": f"test-{run_id}.",
        "RECTRACK_DB_SCHEMA": f"test_{run_id}",
        "RECTRACK_PARTITIONS": "3",
        "RECTRACK_LOG_LEVEL": "info",
    }
    return env


@pytest.fixture(scope="session")
def settings(run_env: dict[str, str]) -> Iterator[Settings]:
    """Settings of this run, with the broker and database started (and stopped at the end)."""
    settings = Settings.from_env(run_env)
    start_infrastructure(settings)
    # Tests that write genuine events of the past straight to the log seal them with the test
    # decider key (tests/sealing.py); this run's readers trust it beside the decider's own.
    trust_test_decider(settings.trusted_deciders_dir)
    yield settings
    stop_infrastructure(settings)


@pytest.fixture(scope="session")
def stack(settings: Settings, run_env: dict[str, str]) -> Iterator[Settings]:
    """API, decider and projector running as real processes (`rectrack run`)."""
    log_path = settings.log_dir / "stack.log"
    proc = start_app(run_env, settings.api_url, log_path)
    yield settings
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "stack.log").write_bytes(log_path.read_bytes())


@pytest.fixture(scope="session")
async def gateway(stack: Settings) -> AsyncIterator[CommandGateway]:
    """A command gateway connected to this run's topics."""
    gw = CommandGateway(stack)
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this run's schema."""
    pool = await create_pool(settings)
    await migrate(pool)
    yield pool
    await pool.close()
