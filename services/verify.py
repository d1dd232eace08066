"""`rectrack verify`: walk the log and every stream's chain; check read models against the log."""

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from aiokafka import TopicPartition

from events.integrity import chain_break
from events.topics import Message
from infra.database import create_pool, migrate, quote_schema
from infra.kafka_clients import read_messages, reader
from infra.settings import Settings
from projections.checksums import table_checksums
from projections.recommendations import project as recommendations
from projections.replay import catch_up, end_offsets


@dataclass(frozen=True)
class Break:
    """Where the log stops verifying, and why."""

    topic: str
    partition: int
    offset: int
    stream_id: str | None
    reason: str


@dataclass
class ChainReport:
    """What walking the log found."""

    events: int = 0
    streams: int = 0
    breaks: list[Break] = field(default_factory=list)


def walk(topic: str, messages: Iterable[Message], *, from_offset: int = 0) -> ChainReport:
    """Check versions, hashes and links of every stream; pure. Breaks before from_offset are
    still followed (so the chain is known) but not reported."""
    heads: dict[str, tuple[int, str]] = {}
    report = ChainReport()
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        report.events += 1
        stream, reason = _check(m.value, heads)
        if reason is None:
            continue
        if m.offset >= from_offset:
            report.breaks.append(Break(topic, m.partition, m.offset, stream, reason))
    report.streams = len(heads)
    return report


def _check(raw: bytes, heads: dict[str, tuple[int, str]]) -> tuple[str | None, str | None]:
    try:
        doc = orjson.loads(raw)
        stream, version = str(doc["stream_id"]), int(doc["stream_version"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, "not an event (unreadable JSON or no stream)"
    last_version, last_hash = heads.get(stream, (0, None))
    if version != last_version + 1:
        return stream, f"stream_version {version}, expected {last_version + 1}"
    reason = chain_break(doc, last_hash)
    if reason:
        return stream, reason
    heads[stream] = (version, str(doc["hash"]))  # only verified events extend the chain
    return stream, None


async def verify_chain(settings: Settings, *, from_offset: int = 0) -> ChainReport:
    """Walk the events topic as it is now."""
    messages = await read_messages(settings, settings.topics.events)
    return walk(settings.topics.events, messages, from_offset=from_offset)


async def verify_read_models(settings: Settings) -> dict[str, tuple[str, str]]:
    """Checksums of each read-model table, live and rebuilt from the log at the same position."""
    scratch = f"{settings.db_schema}__verify_{time.strftime('%Y%m%d%H%M%S')}"
    topic = settings.topics.events
    consumer = reader(settings)
    await consumer.start()
    pool = await create_pool(dataclasses.replace(settings, db_schema=scratch), max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await catch_up(consumer, conn, topic, await end_offsets(consumer, topic), None, 0.0)
        async with pool.acquire() as conn, conn.transaction():
            # The projection's lock: no live batch runs while both are brought to one position.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", recommendations.NAME)
            ends: dict[TopicPartition, int] = await end_offsets(consumer, topic)
            await catch_up(consumer, conn, topic, ends, None, 0.0)
            await conn.execute(f"SET LOCAL search_path TO {quote_schema(settings.db_schema)}")
            await catch_up(consumer, conn, topic, ends, None, 0.0)
            rebuilt = await table_checksums(conn, scratch)
            live = await table_checksums(conn, settings.db_schema)
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {quote_schema(scratch)} CASCADE")
    finally:
        await pool.close()
        await consumer.stop()
    return {table: (live[table], rebuilt[table]) for table in live}
