"""The PostgreSQL document store on the real database: content-addressed, idempotent, repaired by
uploading the original again, and carried across a `rectrack replay` (not built from the log)."""

import dataclasses
import uuid
from datetime import date

import pytest

from events.inspection import InspectionPublished
from infra.database import create_pool, migrate
from infra.documents.postgres import PostgresDocumentStore
from infra.kafka_clients import durable_producer, ensure_topics
from infra.settings import Settings
from projections.recommendations.projection import RECOMMENDATIONS
from projections.replay import replay
from tests.documents import PDF, PNG, exercise_store, sample
from tests.histories import History

pytestmark = pytest.mark.integration


def own(settings: Settings, name: str) -> Settings:
    run = uuid.uuid4().hex[:6]
    return dataclasses.replace(settings, topic_prefix=f"{name}-{run}.", db_schema=f"{name}_{run}")


async def test_the_postgres_store_is_content_addressed_idempotent_and_repairable(
    settings: Settings,
) -> None:
    mine = own(settings, "docstore")
    pool = await create_pool(mine)
    try:
        await migrate(pool)
        store = PostgresDocumentStore(pool)
        await exercise_store(store, "postgres")
        content = sample(PDF, "repair")
        info = await store.put(content, PDF)
        async with pool.acquire() as conn:
            stored = await conn.fetchrow(
                "SELECT media_type, size, octet_length(content) AS length FROM documents "
                "WHERE sha256 = $1",
                info.sha256,
            )
            assert dict(stored) == {"media_type": PDF, "size": len(content), "length": len(content)}
            await conn.execute(
                "UPDATE documents SET content = 'forged'::bytea WHERE sha256 = $1", info.sha256
            )
        repaired = await store.put(content, PDF)
        held = await store.get(info.sha256)
        assert held is not None and held.content == content
        assert (repaired.size, repaired.created_at) == (len(content), info.created_at)
        async with pool.acquire() as conn:
            rows = await conn.fetchval("SELECT count(*) FROM documents")
        assert rows == 3  # exercise_store's two and this one: nothing stored twice
    finally:
        await pool.close()


async def test_documents_survive_a_replay(settings: Settings) -> None:
    mine = own(settings, "docreplay")
    await ensure_topics(mine)
    h = History()
    h.add(
        "docreplay",
        "2024-01-10",
        InspectionPublished(
            inspection_id="docreplay",
            title="Replay",
            inspectorate="HMICS",
            published_on=date(2024, 1, 10),
        ),
    )
    producer = durable_producer(mine)
    await producer.start()
    try:
        for key, partition, value in h.records(mine.partitions):
            await producer.send_and_wait(mine.topics.events, value, key=key, partition=partition)
    finally:
        await producer.stop()
    pool = await create_pool(mine)
    try:
        await migrate(pool)
        stored = await PostgresDocumentStore(pool).put(sample(PNG, "replay"), PNG)
    finally:
        await pool.close()

    result = await replay(mine, RECOMMENDATIONS)
    assert result.identical and result.old_schema is None

    pool = await create_pool(mine)
    try:
        held = await PostgresDocumentStore(pool).get(stored.sha256)
    finally:
        await pool.close()
    assert held is not None and held.content == sample(PNG, "replay")
    assert held.info == stored
