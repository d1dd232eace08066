"""Rebuild a projection from offset 0 into a fresh schema, then switch over atomically.

The live schema keeps answering (and the live projector keeps writing) until the switch, which
happens in one transaction under the projection's advisory lock: both schemas are brought to the
same log position, compared by checksum, and renamed.
"""

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.topics import Message
from infra.database import analyze, create_pool, migrate, quote_schema
from infra.kafka_clients import reader, topic_partitions
from infra.settings import Settings
from projections.batch_writer import apply_recommendations_batch
from projections.checkpoint import checkpoints
from projections.checksums import table_checksums
from projections.recommendations import project as recommendations

log = structlog.get_logger(__name__)

Progress = Callable[[int, int, float], None]  # (replayed, log end, events per second)
BATCH = 5000


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did and whether the rebuilt read model equals the incremental one."""

    events: int
    seconds: float
    rebuilt: dict[str, str]
    incremental: dict[str, str]
    old_schema: str | None

    @property
    def identical(self) -> bool:
        """The rebuilt tables equal the ones built incrementally."""
        return self.rebuilt == self.incremental


async def catch_up(
    consumer: AIOKafkaConsumer,
    conn: asyncpg.Connection,
    topic: str,
    ends: dict[TopicPartition, int],
    progress: Progress | None,
    started: float,
) -> int:
    done = await checkpoints(conn, recommendations.NAME, topic)
    behind = [tp for tp in ends if done.get(tp.partition, 0) < ends[tp]]
    if not behind:
        return 0
    consumer.assign(behind)
    for tp in behind:
        consumer.seek(tp, done.get(tp.partition, 0))
    total_end, applied = sum(ends.values()), 0
    position = {tp: done.get(tp.partition, 0) for tp in behind}
    while any(position[tp] < ends[tp] for tp in behind):
        batches = await consumer.getmany(*behind, timeout_ms=1000, max_records=BATCH)
        messages = [
            Message(tp.partition, r.offset, r.key, r.value or b"")
            for tp, records in batches.items()
            for r in records
            if r.offset < ends[tp]
        ]
        for tp, records in batches.items():
            if records:
                position[tp] = records[-1].offset + 1
        if messages:
            await apply_recommendations_batch(conn, topic, messages)
            applied += len(messages)
        if progress:
            replayed = sum(min(position[tp], ends[tp]) for tp in behind)
            progress(replayed, total_end, applied / max(time.monotonic() - started, 1e-6))
    return applied


async def end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    return ends


async def replay(
    settings: Settings, *, progress: Progress | None = None, keep_old: bool = False
) -> ReplayResult:
    """Rebuild the recommendations read model and switch the live schema over to it."""
    live, stamp = settings.db_schema, time.strftime("%Y%m%d%H%M%S")
    fresh, old = f"{live}__replay_{stamp}", f"{live}__old_{stamp}"
    topic = settings.topics.events
    started = time.monotonic()
    consumer = reader(settings)
    await consumer.start()
    pool = await create_pool(dataclasses.replace(settings, db_schema=fresh), max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            events = await catch_up(
                consumer, conn, topic, await end_offsets(consumer, topic), progress, started
            )
            await analyze(conn, fresh)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", recommendations.NAME)
            ends = await end_offsets(consumer, topic)
            events += await catch_up(consumer, conn, topic, ends, progress, started)
            await conn.execute(f"SET LOCAL search_path TO {quote_schema(live)}")
            await catch_up(consumer, conn, topic, ends, None, started)
            rebuilt = await table_checksums(conn, fresh)
            incremental = await table_checksums(conn, live)
            # API tokens are not built from the log: they move across with the switch.
            await conn.execute(
                f"INSERT INTO {quote_schema(fresh)}.api_tokens "  # noqa: S608
                f"SELECT * FROM {quote_schema(live)}.api_tokens"
            )
            await conn.execute(f"ALTER SCHEMA {quote_schema(live)} RENAME TO {quote_schema(old)}")
            await conn.execute(f"ALTER SCHEMA {quote_schema(fresh)} RENAME TO {quote_schema(live)}")
        result = ReplayResult(events, time.monotonic() - started, rebuilt, incremental, old)
        if result.identical and not keep_old:
            async with pool.acquire() as conn:
                await conn.execute(f"DROP SCHEMA {quote_schema(old)} CASCADE")
            result = dataclasses.replace(result, old_schema=None)
        log.info(
            "replay_switched",
            events=events,
            seconds=round(result.seconds, 2),
            identical=result.identical,
            old_schema=result.old_schema,
        )
        return result
    finally:
        await pool.close()
        await consumer.stop()
