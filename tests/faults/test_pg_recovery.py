"""Disaster recovery for PostgreSQL: the database directory is lost, and everything comes back.

On a stack of its own (`rectrack up` in a RECTRACK_HOME of its own, free ports), with the
public-record demo and a generated history loaded and projected, the read models' checksums
are recorded and the API tokens backed up (`rectrack backup`). Then, twice:

1. PostgreSQL stops and its whole directory is deleted while the app keeps running; `rectrack up`
   makes a new cluster, app role and schema from nothing, and the running projector, whose
   checkpoints are gone, rebuilds the read models from offset 0 by itself.
2. `rectrack down`, the directory deleted again, `rectrack up`: the projector starts on an empty
   database and rebuilds from offset 0; `rectrack replay` then rebuilds beside it and agrees.

Each time the read models end identical by checksum to before, `rectrack verify` passes, and
after `rectrack restore` the backed-up tokens authenticate again (a revoked one stays revoked,
one created after the backup is gone).
"""

import os
import re
import shutil
import stat
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from importlib import resources
from pathlib import Path

import asyncpg
import httpx
import pytest

from bench.generate import commands
from infra.database import create_pool
from infra.postgres import LocalPostgres
from infra.processes import free_port
from infra.settings import Settings
from projections.checksums import table_checksums
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from services.cli.data import demo_file
from tests.cli import rectrack

pytestmark = pytest.mark.integration

GENERATED = 1500  # commands of a generated history, on top of the demo's
REBUILD_TIMEOUT = 180


@pytest.fixture(scope="module")
def dr_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A whole stack of its own, started and stopped with the CLI: its database is the one this
    test destroys."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env |= {
        "RECTRACK_HOME": str(tmp_path_factory.mktemp("dr-home")),
        "RECTRACK_KAFKA_PORT": str(free_port()),
        "RECTRACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "RECTRACK_PG_PORT": str(free_port()),
        "RECTRACK_API_PORT": str(free_port()),
        "RECTRACK_PARTITIONS": "3",
        "RECTRACK_TOPIC_PREFIX": f"dr-{uuid.uuid4().hex[:6]}.",
        "RECTRACK_DB_SCHEMA": "rectrack",
    }
    rectrack(env, "up", timeout=300)
    try:
        yield env
    finally:
        rectrack(env, "down", check=False, timeout=120)


@pytest.fixture(scope="module")
def settings(dr_env: dict[str, str]) -> Settings:
    """This stack's settings (the module's own, not the session's)."""
    return Settings.from_env(dr_env)


async def read_model_checksums(settings: Settings) -> dict[str, str]:
    """md5 of every table of the live read model."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await table_checksums(conn, settings.db_schema, RECOMMENDATIONS)
    finally:
        await pool.close()


async def status_of(settings: Settings, token: str, path: str = "/inspections") -> int:
    """The API's status code for a read with this bearer token."""
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=30) as api:
        response = await api.get(path, headers={"Authorization": f"Bearer {token}"})
        return response.status_code


def lose_the_database(settings: Settings) -> None:
    """The disk under PostgreSQL is gone: stop it if it runs, delete its whole directory."""
    pg = LocalPostgres(settings)
    pg.stop()
    assert pg.pid() is None
    shutil.rmtree(pg.data_dir)
    assert not pg.data_dir.exists()


async def assert_new_cluster_with_a_plain_app_role(settings: Settings) -> None:
    """`rectrack up` made the cluster, the app role and the schema again, as at first."""
    assert (LocalPostgres(settings).data_dir / "PG_VERSION").exists()
    conn = await asyncpg.connect(settings.database_url)
    try:
        me = await conn.fetchrow(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        )
        assert me is not None and not any(me.values()), dict(me or {})
        migrations = await conn.fetchval(
            f"SELECT count(*) FROM {settings.db_schema}.schema_migrations"  # noqa: S608
        )
        folder = resources.files("projections").joinpath("migrations")
        assert migrations == len([f for f in folder.iterdir() if f.name.endswith(".sql")])
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def loaded(dr_env: dict[str, str], settings: Settings) -> AsyncIterator[dict[str, str]]:
    """The demo and a generated history, accepted and projected."""
    rectrack(dr_env, "load", str(demo_file()), "--json", timeout=300)
    with tempfile.TemporaryDirectory() as folder:
        history = Path(folder) / "history.ndjson"
        history.write_bytes(b"".join(line + b"\n" for line in commands(GENERATED, seed=15)))
        done = rectrack(dr_env, "load", str(history), "--json", timeout=300)
    assert '"rejected": 0' in done.stdout and '"no_outcome": 0' in done.stdout, done.stdout
    await wait_until_projected(settings, RECOMMENDATIONS, timeout=REBUILD_TIMEOUT)
    yield dr_env


def token_of(env: dict[str, str], name: str, role: str) -> tuple[str, str]:
    """(token id, token) of a new API token."""
    done = rectrack(env, "tokens", "create", "--name", name, "--team", "ops", "--role", role)
    said = re.search(r"token (\S+) for", done.stderr)
    assert said, done.stderr
    return said.group(1), done.stdout.strip().splitlines()[-1]


async def test_the_database_directory_is_lost_and_everything_comes_back(
    loaded: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    env = loaded
    lag = await wait_until_projected(settings, RECOMMENDATIONS, timeout=REBUILD_TIMEOUT)
    events = lag.log_total
    assert events > GENERATED + 290 and lag.errors == 0
    before = await read_model_checksums(settings)
    report = rectrack(env, "report", "--as-of", "2024-09-18", "--format", "json").stdout

    # Tokens live only in PostgreSQL: back them up (a revoked one too).
    _, admin = token_of(env, "dr-admin", "admin")
    revoked_id, revoked = token_of(env, "dr-revoked", "viewer")
    rectrack(env, "tokens", "revoke", revoked_id)
    backup = tmp_path / "backups" / "rectrack-backup.json"
    said = rectrack(env, "backup", "-o", str(backup)).stdout
    assert "backed up 2 API tokens (1 live)" in said, said
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert admin not in backup.read_text() and revoked not in backup.read_text()
    _, after_backup = token_of(env, "dr-too-late", "viewer")  # lost with the database
    assert await status_of(settings, admin) == 200

    # 1. The database is lost under the running app.
    lose_the_database(settings)
    said = rectrack(env, "up", timeout=300).stdout
    assert "started: postgres" in said, said
    await assert_new_cluster_with_a_plain_app_role(settings)
    assert await status_of(settings, admin) == 401  # the tokens went with the database
    lag = await wait_until_projected(settings, RECOMMENDATIONS, timeout=REBUILD_TIMEOUT)
    assert (lag.log_total, lag.errors) == (events, 0)
    assert await read_model_checksums(settings) == before
    restored = rectrack(env, "restore", str(backup)).stdout
    assert "2 added, 0 revoked as in the backup, 0 already here" in restored, restored
    assert await status_of(settings, admin) == 200
    assert await status_of(settings, revoked) == 401
    assert await status_of(settings, after_backup) == 401
    same_report = rectrack(env, "report", "--as-of", "2024-09-18", "--format", "json").stdout
    assert same_report == report

    # 2. Everything stopped, the database lost again, everything started.
    rectrack(env, "down", timeout=120)
    lose_the_database(settings)
    said = rectrack(env, "up", timeout=300).stdout
    assert "started: postgres, kafka, app" in said, said
    await assert_new_cluster_with_a_plain_app_role(settings)
    await wait_until_projected(settings, RECOMMENDATIONS, timeout=REBUILD_TIMEOUT)
    assert await read_model_checksums(settings) == before
    rectrack(env, "restore", str(backup))
    replayed = rectrack(env, "replay", timeout=REBUILD_TIMEOUT).stdout
    assert f"replayed {events} events" in replayed and "switched over" in replayed, replayed
    assert await read_model_checksums(settings) == before
    verified = rectrack(env, "verify", timeout=REBUILD_TIMEOUT)
    assert "read models: match the log" in verified.stdout, verified.stdout
    # The restored admin token still reads and writes (the replay carried the tokens across).
    assert await status_of(settings, admin) == 200
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=60) as api:
        response = await api.post(
            "/commands",
            json={
                "type": "ReportProgress",
                "effective_date": date.today().isoformat(),
                "data": {
                    "recommendation_id": "mental-health-2023/r10",
                    "position": "Recovered with the database",
                    "delivery_status": "on_track",
                },
            },
            headers={"Authorization": f"Bearer {admin}"},
            params={"wait": 30},
        )
    assert response.status_code == 201, response.text
    lag = await wait_until_projected(settings, RECOMMENDATIONS, timeout=60)
    assert (lag.log_total, lag.errors) == (events + 1, 0)
