"""Time to recover from a lost PostgreSQL: a database from nothing, read models back from the log.

    python -m bench recover --events 100000 [--seed 1] [--out bench/results/recover-100000.json]

Needs a running stack with its local PostgreSQL (`rectrack up`); uses topics and a schema of its
own and a second PostgreSQL of its own, so nothing of the instance's data is touched.

1. Before: a generated history goes through a real decider process (as `bench run` does), a
   projector process projects it into the running database, and the read models' checksums are
   taken. The projector stops, as its consumer group stands at the end of the log.
2. The disaster: a new PostgreSQL cluster from nothing, in a directory of its own (initdb,
   start, the app role and its database: what `rectrack up` does after the directory is lost),
   then a projector process started on it, as `rectrack up` starts one: it finds its read
   model empty while its group stands at the end, migrates, reads the log from offset 0 and
   analyzes the tables. Timed from the start of initdb until the read model holds every event
   with planner statistics, then checked identical by checksum to before.
3. For comparison, `rectrack replay`'s rebuild (from offset 0 into a fresh schema, `ANALYZE`
   included) on the same new cluster, in this process.
"""

import asyncio
import dataclasses
import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.generate import commands
from bench.processes import start_component
from bench.run import decide
from infra.database import analyze, create_pool, migrate, quote_schema
from infra.decider_keys import trusted_decider_keys
from infra.kafka_clients import ensure_topics, groupless_consumer
from infra.postgres import LocalPostgres
from infra.private_files import write_private
from infra.processes import free_port
from infra.settings import APP_PASSWORD_FILE, Settings, read_secret
from projections.checksums import table_checksums
from projections.lag import end_offsets
from projections.recommendations.projection import RECOMMENDATIONS
from projections.replay import catch_up
from projections.replay import end_offsets as replay_end_offsets
from projections.worker import ANALYZE_AFTER

PROJECTOR_TIMEOUT = 3600.0


async def log_end(settings: Settings) -> int:
    """Events in the log now."""
    consumer = groupless_consumer(settings)
    await consumer.start()
    try:
        return sum((await end_offsets(consumer, settings.topics.events)).values())
    finally:
        await consumer.stop()


async def projected(conn: asyncpg.Connection, settings: Settings) -> int:
    """Events the read model holds (0 while its tables do not exist yet).

    It reads without creating anything, so it never races the projector's own migrations.
    """
    table = f"{quote_schema(settings.db_schema)}.projection_checkpoints"
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return 0
    done: int = await conn.fetchval(
        f"SELECT coalesce(sum(next_offset), 0) FROM {table} "  # noqa: S608
        "WHERE projection = $1 AND topic = $2",
        RECOMMENDATIONS.name,
        settings.topics.events,
    )
    return done


async def checksums(settings: Settings) -> dict[str, str]:
    """The read model's table checksums."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await table_checksums(conn, settings.db_schema, RECOMMENDATIONS)
    finally:
        await pool.close()


async def unanalyzed(conn: asyncpg.Connection, settings: Settings) -> int:
    """Tables of the read model's schema that have never been analyzed."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = $1 "
        "AND last_analyze IS NULL AND last_autoanalyze IS NULL",
        settings.db_schema,
    )
    return count


async def project_with_a_process(
    settings: Settings, env: dict[str, str], events: int, *, analyzed: bool = False
) -> float:
    """Seconds from starting a projector process on `settings` until it holds `events` events
    (and, with `analyzed`, its tables have planner statistics: a projector that caught up a
    large gap from the log runs `ANALYZE`, as a replay does); the projector is stopped
    (SIGTERM: it commits its group's offsets) before returning."""
    process_env = {
        **env,
        "RECTRACK_TOPIC_PREFIX": settings.topic_prefix,
        "RECTRACK_DB_SCHEMA": settings.db_schema,
        "RECTRACK_PG_PORT": str(settings.pg_port),
        "RECTRACK_LOG_LEVEL": "warning",
    }
    conn = await asyncpg.connect(settings.database_url)
    started = time.perf_counter()
    projector = await start_component(process_env, "projector")
    try:
        while await projected(conn, settings) < events or (
            analyzed and await unanalyzed(conn, settings)
        ):
            if projector.returncode is not None:
                raise RuntimeError(f"the projector exited with {projector.returncode}")
            if time.perf_counter() - started > PROJECTOR_TIMEOUT:
                raise TimeoutError("the projector did not catch up")
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
        await asyncio.sleep(2)  # its consumer group commits every second
    finally:
        await conn.close()
        projector.send_signal(signal.SIGTERM)
        await asyncio.wait_for(projector.wait(), timeout=60)
    return seconds


async def replay_rebuild(kafka: Settings, database: Settings) -> dict[str, Any]:
    """`rectrack replay`'s rebuild (catch-up from offset 0 into a fresh schema, then `ANALYZE`),
    reading the log as `kafka` says and writing to `database`."""
    pool = await create_pool(database, max_size=1)
    consumer = groupless_consumer(kafka)
    await consumer.start()
    try:
        started = time.perf_counter()
        await migrate(pool)
        async with pool.acquire() as conn:
            topic = kafka.topics.events
            ends = await replay_end_offsets(consumer, topic)
            keys = trusted_decider_keys(kafka)
            events = await catch_up(consumer, conn, RECOMMENDATIONS, topic, ends, keys)
            await analyze(conn, database.db_schema)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
        await pool.close()
    return {
        "replay_events": events,
        "replay_seconds": round(seconds, 2),
        "replay_per_s": round(events / seconds, 1),
    }


def new_cluster_settings(settings: Settings, home: Path) -> Settings:
    """A PostgreSQL of its own in `home`, whose app role has the running stack's app password,
    so a component started with this home's RECTRACK_HOME and the new port logs in to it."""
    password = read_secret(settings.app_password_file)
    write_private(home / APP_PASSWORD_FILE, (password + "\n").encode())
    return dataclasses.replace(settings, home=home, pg_port=free_port())


async def run(events: int, seed: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Every phase of a recovery at `events` commands, timed; raises if the read models differ."""
    env = dict(os.environ) if env is None else env
    base = Settings.from_env(env)
    if base.external_database_url is not None:
        raise RuntimeError("bench recover makes PostgreSQL clusters: unset DATABASE_URL")
    run_id = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        base,
        topic_prefix=f"bench-recover-{events}-{seed}-{run_id}.",
        db_schema=f"bench_recover_{run_id}",
    )
    await ensure_topics(settings)
    result: dict[str, Any] = {"events": events, "seed": seed, "cpus": os.cpu_count()}
    result |= await decide(settings, list(commands(events, seed)), env)
    in_log = await log_end(settings)
    result["log_events"] = in_log
    home = Path(tempfile.mkdtemp(prefix="rectrack-recover-"))
    fresh = new_cluster_settings(settings, home)
    try:
        result["before_projector_seconds"] = round(
            await project_with_a_process(settings, env, in_log), 2
        )
        before = await checksums(settings)

        # The disaster: nothing of the database is left.
        result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
        started = time.perf_counter()
        cluster = LocalPostgres(fresh)
        cluster.start()
        cluster_up = time.perf_counter()
        await cluster.provision()
        role_made = time.perf_counter()
        # A small rebuild is left to autovacuum's statistics, a large one analyzed at once.
        analyzed = in_log >= ANALYZE_AFTER
        projector_seconds = await project_with_a_process(fresh, env, in_log, analyzed=analyzed)
        recovery = role_made - started + projector_seconds
        result["initdb_and_start_seconds"] = round(cluster_up - started, 2)
        result["app_role_seconds"] = round(role_made - cluster_up, 2)
        result["projector_rebuild_seconds"] = round(projector_seconds, 2)
        result["recovery_seconds"] = round(recovery, 2)
        result["recovery_events_per_s"] = round(in_log / recovery, 1)
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        mark = time.perf_counter()
        result["identical"] = await checksums(fresh) == before
        result["checksum_seconds"] = round(time.perf_counter() - mark, 2)

        # rectrack replay's rebuild, on the same new cluster, for comparison.
        replayed = dataclasses.replace(fresh, db_schema=f"{settings.db_schema}_replay")
        result |= await replay_rebuild(settings, replayed)
        result["replay_identical"] = await checksums(replayed) == before
        if not (result["identical"] and result["replay_identical"]):
            raise AssertionError(f"the rebuilt read models differ from before: {result}")
    finally:
        LocalPostgres(fresh).stop()
        shutil.rmtree(home, ignore_errors=True)
        await _drop_schema(settings)
    return result


async def _drop_schema(settings: Settings) -> None:
    pool = await create_pool(settings, max_size=1)
    try:
        await pool.execute(f"DROP SCHEMA IF EXISTS {quote_schema(settings.db_schema)} CASCADE")
    finally:
        await pool.close()
