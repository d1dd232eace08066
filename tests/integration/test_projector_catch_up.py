"""The projector never skips an event: when its read model is behind where Kafka delivers from
(a new, empty database; one restored from an older backup), it reads the missing events from
the log itself, from the read model's checkpoints, and ends identical to a clean projection."""

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import pytest

from events.inspection import InspectionPublished
from events.recommendation import ProgressReported, RecommendationIssued
from events.topics import Message
from infra.database import create_pool, migrate, quote_schema
from infra.kafka_clients import durable_producer, ensure_topics, groupless_consumer, read_messages
from infra.settings import Settings
from projections.apply import Behind, apply_batch
from projections.checkpoint import checkpoints
from projections.checksums import table_checksums
from projections.recommendations.projection import RECOMMENDATIONS
from projections.worker import Projector
from tests.histories import History
from tests.projecting import project_messages
from tests.sealing import TEST_DECIDER_KEYS

pytestmark = pytest.mark.integration


def history() -> History:
    h = History()
    for i in range(4):
        insp = f"gap-insp-{i}"
        published = InspectionPublished(
            inspection_id=insp, title=f"I{i}", inspectorate="HMICS", published_on=date(2024, 1, 9)
        )
        h.add(insp, "2024-01-10", published)
        for n in range(1, 6):
            rid = f"{insp}/r{n}"
            h.add(
                rid,
                "2024-01-10",
                RecommendationIssued(recommendation_id=rid, inspection_id=insp, number=n, text="t"),
            )
            for k in range(4):
                h.add(
                    rid,
                    "2024-02-01",
                    ProgressReported(
                        recommendation_id=rid, position=f"p{k}", delivery_status="on_track"
                    ),
                )
    return h


@pytest.fixture
async def log(settings: Settings) -> AsyncIterator[tuple[Settings, list[Message]]]:
    """Topics of their own holding a history (every event sealed by the test decider)."""
    run = uuid.uuid4().hex[:6]
    own = dataclasses.replace(settings, topic_prefix=f"gap-{run}.", db_schema=f"gap_{run}")
    await ensure_topics(own)
    producer = durable_producer(own)
    await producer.start()
    try:
        futures = [
            await producer.send(own.topics.events, value, key=key, partition=partition)
            for key, partition, value in history().records(own.partitions)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    yield own, await read_messages(own, own.topics.events)


async def clean_checksums(own: Settings, messages: list[Message]) -> dict[str, str]:
    clean = dataclasses.replace(own, db_schema=f"{own.db_schema}_clean")
    pool = await create_pool(clean, max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await project_messages(conn, own.topics.events, messages)
            return await table_checksums(conn, clean.db_schema, RECOMMENDATIONS)
    finally:
        await pool.close()


async def new_database(pool: asyncpg.Pool, schema: str) -> None:
    """The read model as a database lost and made again has it: empty, migrated."""
    async with pool.acquire() as conn:
        await conn.execute(f"DROP SCHEMA {quote_schema(schema)} CASCADE")
        await conn.execute(f"CREATE SCHEMA {quote_schema(schema)}")
    await migrate(pool)


async def test_a_batch_past_the_checkpoints_waits_for_the_log_before_it(
    log: tuple[Settings, list[Message]],
) -> None:
    own, messages = log
    topic = own.topics.events
    # What Faust delivers after a database was lost: only what came after its committed offsets.
    later = [m for m in messages if m.offset >= 7]
    first = {m.partition: m.offset for m in reversed(later)}
    ends = {p: 1 + max(m.offset for m in messages if m.partition == p) for p in first}
    pool = await create_pool(own)
    reader = groupless_consumer(own)
    await reader.start()
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            with pytest.raises(Behind) as behind:
                await apply_batch(
                    conn, RECOMMENDATIONS, topic, later, keys=TEST_DECIDER_KEYS, contiguous=True
                )
            assert behind.value.missing == {p: (0, o) for p, o in first.items()}
            assert await conn.fetchval("SELECT count(*) FROM event_log") == 0  # nothing written
        projector = Projector(own, RECOMMENDATIONS, pool, reader, TEST_DECIDER_KEYS)
        result = await projector.project(later)
        assert (result.applied, result.failed) == (len(later), 0)
        assert projector.reached == ends
        async with pool.acquire() as conn:
            assert await checkpoints(conn, RECOMMENDATIONS.name, topic) == ends
            recovered = await table_checksums(conn, own.db_schema, RECOMMENDATIONS)
    finally:
        await reader.stop()
        await pool.close()
    assert recovered == await clean_checksums(own, messages)


async def test_a_running_projector_rebuilds_a_database_lost_under_it(
    log: tuple[Settings, list[Message]],
) -> None:
    own, messages = log
    pool = await create_pool(own)
    reader = groupless_consumer(own)
    await reader.start()
    try:
        await migrate(pool)
        projector = Projector(own, RECOMMENDATIONS, pool, reader, TEST_DECIDER_KEYS)
        await projector.project(messages)
        async with pool.acquire() as conn:
            before = await table_checksums(conn, own.db_schema, RECOMMENDATIONS)
        assert await projector.restore(projector.reached) == 0  # nothing lost, nothing read

        await new_database(pool, own.db_schema)
        assert await projector.restore(projector.reached) == len(messages)
        async with pool.acquire() as conn:
            after = await table_checksums(conn, own.db_schema, RECOMMENDATIONS)
    finally:
        await reader.stop()
        await pool.close()
    assert after == before == await clean_checksums(own, messages)
