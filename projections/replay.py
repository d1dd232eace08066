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

from events.seals import DeciderKeys
from events.topics import Message
from infra.database import analyze, create_pool, migrate, quote_schema
from infra.decider_keys import trusted_decider_keys
from infra.kafka_clients import groupless_consumer, topic_partitions
from infra.settings import Settings
from projections.apply import apply_batch
from projections.checkpoint import checkpoints
from projections.checksums import table_checksums
from projections.projection import Projection

log = structlog.get_logger(__name__)

ReplayProgress = Callable[[int, int, float], None]  # (replayed, log end, events per second)
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
    projection: Projection,
    topic: str,
    ends: dict[TopicPartition, int],
    keys: DeciderKeys,
    progress: ReplayProgress | None = None,
    started: float = 0.0,
) -> int:
    """Apply the log from the projection's checkpoints up to `ends`, in large batches, with
    events authenticated by `keys`."""
    done = await checkpoints(conn, projection.name, topic)
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
            await apply_batch(conn, projection, topic, messages, keys=keys)
            applied += len(messages)
        if progress:
            replayed = sum(min(position[tp], ends[tp]) for tp in behind)
            progress(replayed, total_end, applied / max(time.monotonic() - started, 1e-6))
    return applied


async def end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    """The end offset of every partition of a topic."""
    tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    return ends


async def align_and_compare(
    consumer: AIOKafkaConsumer,
    conn: asyncpg.Connection,
    projection: Projection,
    topic: str,
    rebuilt_schema: str,
    live_schema: str,
    keys: DeciderKeys,
    progress: ReplayProgress | None = None,
    started: float = 0.0,
) -> tuple[int, dict[str, str], dict[str, str]]:
    """Bring a rebuilt schema (on the connection's search path) and the live one to the same log
    position, and checksum both: (events caught up in the rebuilt one, its sums, the live sums).

    Call it inside a transaction: it takes the projection's lock, so no live batch runs between
    the two catch-ups and the comparison.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", projection.name)
    ends = await end_offsets(consumer, topic)
    events = await catch_up(consumer, conn, projection, topic, ends, keys, progress, started)
    await conn.execute(f"SET LOCAL search_path TO {quote_schema(live_schema)}")
    await catch_up(consumer, conn, projection, topic, ends, keys)
    rebuilt = await table_checksums(conn, rebuilt_schema, projection)
    live = await table_checksums(conn, live_schema, projection)
    return events, rebuilt, live


async def replay(
    settings: Settings,
    projection: Projection,
    *,
    progress: ReplayProgress | None = None,
    keep_old: bool = False,
) -> ReplayResult:
    """Rebuild a projection's read model and switch the live schema over to it."""
    live, stamp = settings.db_schema, time.strftime("%Y%m%d%H%M%S")
    fresh, old = f"{live}__replay_{stamp}", f"{live}__old_{stamp}"
    topic = settings.topics.events
    keys = trusted_decider_keys(settings)
    started = time.monotonic()
    consumer = groupless_consumer(settings)
    await consumer.start()
    pool = await create_pool(dataclasses.replace(settings, db_schema=fresh), max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            ends = await end_offsets(consumer, topic)
            events = await catch_up(
                consumer, conn, projection, topic, ends, keys, progress, started
            )
            await analyze(conn, fresh)
        async with pool.acquire() as conn, conn.transaction():
            caught_up, rebuilt, incremental = await align_and_compare(
                consumer, conn, projection, topic, fresh, live, keys, progress, started
            )
            events += caught_up
            # API tokens and the browser sessions made with them are not built from the log:
            # they move across with the switch.
            for table in ("api_tokens", "web_sessions"):
                await conn.execute(
                    f"INSERT INTO {quote_schema(fresh)}.{table} "  # noqa: S608
                    f"SELECT * FROM {quote_schema(live)}.{table}"
                )
            # Nor are the evidence documents (infra/documents/postgres.py): the table itself
            # moves across, which takes no time however many gigabytes it holds.
            await conn.execute(f"DROP TABLE {quote_schema(fresh)}.documents")
            await conn.execute(
                f"ALTER TABLE {quote_schema(live)}.documents SET SCHEMA {quote_schema(fresh)}"
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
