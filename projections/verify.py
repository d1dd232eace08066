"""`rectrack verify`: walk the log's hash chains and seals; check every evidence document
against its event; check a projection's tables against the log."""

import dataclasses
import time
from collections.abc import Sequence

from events.chain import ChainReport, Unprojected, walk
from events.seals import DeciderKeys
from events.topics import Message
from infra.database import create_pool, migrate, quote_schema
from infra.decider_keys import trusted_decider_keys
from infra.documents.postgres import PostgresDocumentStore
from infra.kafka_clients import groupless_consumer, read_messages
from infra.settings import Settings
from projections.documents import DocumentReport, check_documents, cited_documents
from projections.projection import Projection
from projections.replay import align_and_compare, catch_up, end_offsets


async def verify_chain(
    settings: Settings,
    *,
    from_offset: int = 0,
    keys: DeciderKeys | None = None,
    messages: Sequence[Message] | None = None,
) -> ChainReport:
    """Walk the events topic as it is now (or `messages` read from it), with the decider keys
    this RECTRACK_HOME trusts (or `keys`)."""
    if messages is None:
        messages = await read_messages(settings, settings.topics.events)
    trusted = keys if keys is not None else trusted_decider_keys(settings)
    return walk(settings.topics.events, messages, keys=trusted, from_offset=from_offset)


async def verify_documents(
    settings: Settings, *, from_offset: int = 0, messages: Sequence[Message] | None = None
) -> DocumentReport:
    """Every document the events topic's evidence events cite (from `from_offset` on), against
    the bytes the document store holds under its hash."""
    if messages is None:
        messages = await read_messages(settings, settings.topics.events)
    cited = cited_documents(settings.topics.events, messages, from_offset=from_offset)
    pool = await create_pool(settings, max_size=1)
    try:
        await migrate(pool)
        return await check_documents(PostgresDocumentStore(pool), cited)
    finally:
        await pool.close()


async def unprojected_events(settings: Settings, projection: Projection) -> list[Unprojected]:
    """Every event the live read model could not apply, with the reason it recorded."""
    pool = await create_pool(settings, max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                'SELECT topic, partition, "offset", stream_id, stream_version, in_chain, reason '
                "FROM projection_errors WHERE projection = $1 "
                'ORDER BY topic, partition, "offset"',
                projection.name,
            )
    finally:
        await pool.close()
    return [Unprojected(**dict(r)) for r in rows]


async def verify_read_models(
    settings: Settings, projection: Projection, *, keys: DeciderKeys | None = None
) -> dict[str, tuple[str, str]]:
    """Checksums of each table, live and rebuilt from the log at the same position (with the
    decider keys this RECTRACK_HOME trusts, or `keys`)."""
    trusted = keys if keys is not None else trusted_decider_keys(settings)
    scratch = f"{settings.db_schema}__verify_{time.strftime('%Y%m%d%H%M%S')}"
    topic = settings.topics.events
    consumer = groupless_consumer(settings)
    await consumer.start()
    pool = await create_pool(dataclasses.replace(settings, db_schema=scratch), max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            ends = await end_offsets(consumer, topic)
            await catch_up(consumer, conn, projection, topic, ends, trusted)
        async with pool.acquire() as conn, conn.transaction():
            _, rebuilt, live = await align_and_compare(
                consumer, conn, projection, topic, scratch, settings.db_schema, trusted
            )
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {quote_schema(scratch)} CASCADE")
    finally:
        await pool.close()
        await consumer.stop()
    return {table: (live[table], rebuilt[table]) for table in live}
