"""A projector killed with SIGKILL mid-stream and restarted ends identical to a clean replay."""

import asyncio
import dataclasses
import signal
import time
import uuid
from datetime import date

import asyncpg
import pytest

from events.inspection import InspectionPublished
from events.recommendation import ProgressReported, RecommendationIssued
from infra.database import create_pool, migrate
from infra.kafka_clients import durable_producer, ensure_topics, read_messages
from infra.settings import Settings
from projections.checkpoint import checkpoints
from projections.checksums import table_checksums
from projections.recommendations.projection import RECOMMENDATIONS
from tests.cli import start_component
from tests.histories import History
from tests.projecting import project_messages

pytestmark = pytest.mark.integration

INSPECTIONS, RECS, REPORTS = 6, 10, 40  # 6 * (1 + 10 * 41) = 2466 events


def synthetic_history() -> History:
    h = History()
    for i in range(INSPECTIONS):
        insp = f"crash-insp-{i}"
        h.add(
            insp,
            "2024-01-10",
            InspectionPublished(
                inspection_id=insp,
                title=f"I{i}",
                inspectorate="HMICS",
                published_on=date(2024, 1, 10),
            ),
        )
        for n in range(1, RECS + 1):
            rid = f"{insp}/r{n}"
            h.add(
                rid,
                "2024-01-10",
                RecommendationIssued(recommendation_id=rid, inspection_id=insp, number=n, text="t"),
            )
            for k in range(REPORTS):
                status = "delayed" if k % 3 == 0 else "on_track"
                h.add(
                    rid,
                    "2024-02-01",
                    ProgressReported(
                        recommendation_id=rid,
                        position=f"report {k}",
                        delivery_status=status,
                        delay_reason="resourcing" if status == "delayed" else None,
                    ),
                )
    return h


async def projected(pool: asyncpg.Pool, topic: str) -> int:
    async with pool.acquire() as conn:
        return sum((await checkpoints(conn, RECOMMENDATIONS.name, topic)).values())


async def test_sigkill_mid_batch_then_restart_equals_a_clean_replay(
    settings: Settings, run_env: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:6]
    own = dataclasses.replace(settings, topic_prefix=f"pcrash-{run}.", db_schema=f"pcrash_{run}")
    env = {
        **run_env,
        "RECTRACK_TOPIC_PREFIX": own.topic_prefix,
        "RECTRACK_DB_SCHEMA": own.db_schema,
    }
    await ensure_topics(own)
    producer = durable_producer(own)
    await producer.start()
    try:
        futures = [
            await producer.send(own.topics.events, value, key=key, partition=partition)
            for key, partition, value in synthetic_history().records(own.partitions)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    total = len(futures)
    pool = await create_pool(own)
    await migrate(pool)
    projector = start_component(env, "projector")
    try:
        deadline = time.monotonic() + 90
        while await projected(pool, own.topics.events) < total // 10:
            assert time.monotonic() < deadline, "the projector never got going"
            await asyncio.sleep(0.02)
        projector.send_signal(signal.SIGKILL)
        projector.wait()
        at_kill = await projected(pool, own.topics.events)
        assert at_kill < total, "the projector finished before it could be killed"
        projector = start_component(env, "projector")
        while await projected(pool, own.topics.events) < total:
            assert time.monotonic() < deadline + 90, "the projector did not finish after restart"
            await asyncio.sleep(0.2)
    finally:
        projector.send_signal(signal.SIGTERM)
        projector.wait(timeout=30)

    clean = dataclasses.replace(own, db_schema=f"pclean_{run}")
    clean_pool = await create_pool(clean)
    try:
        await migrate(clean_pool)
        records = await read_messages(own, own.topics.events)
        async with clean_pool.acquire() as conn:
            await project_messages(conn, own.topics.events, records)
            clean_sums = await table_checksums(conn, clean.db_schema, RECOMMENDATIONS)
            crashed_sums = await table_checksums(conn, own.db_schema, RECOMMENDATIONS)
            states = await conn.fetchval(
                f"SELECT count(*) FROM {own.db_schema}.recommendation_states"  # noqa: S608
            )
    finally:
        await clean_pool.close()
        await pool.close()
    assert 0 < at_kill < total
    assert states == INSPECTIONS * RECS * (1 + REPORTS)  # no lost and no doubled rows
    assert crashed_sums == clean_sums
