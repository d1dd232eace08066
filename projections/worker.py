"""The Faust projector agent: batches of events into a projection with their checkpoint.

The read model's checkpoints, not the consumer group's offsets, say how far the read model has
got. Faust resumes at the group's committed offsets, which are never ahead of the checkpoints
while the database keeps what it committed (a batch is acked only after its transaction). When
the database loses it (a new, empty one after a disaster, or one restored from an older backup),
the checkpoints are behind where the group stands, and Faust would never deliver the events in
between again. The projector then reads them straight from the log, from the checkpoints (0 in
an empty database), with a group-less consumer in large batches, as `rectrack replay` does:

- at start, up to the group's committed offsets;
- whenever a batch begins past a partition's checkpoint (`Behind`), up to that batch;
- every few seconds, up to what this process has already projected, so a database replaced
  under a running, idle projector is rebuilt too.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
import faust
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from events.seals import DeciderKeys
from events.topics import Message
from infra.database import analyze, create_pool, migrate
from infra.decider_keys import trusted_decider_keys
from infra.faust_app import (
    assignment_check,
    finish_before_ack,
    make_app,
    raw_topic,
    record_consumer_lag,
    serve_health,
    take_messages,
)
from infra.health_server import kafka_check, postgres_check
from infra.kafka_clients import connection_options, groupless_consumer, topic_partitions
from infra.retry import retry_delay
from infra.settings import Settings
from infra.tracing import TRACING, consuming_batch
from projections.apply import BatchResult, Behind, apply_batch
from projections.metrics import PROJECTION_BATCH_SECONDS
from projections.projection import Projection
from projections.replay import catch_up

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN = 0.1
# How often a running projector checks that the read model still holds what it projected.
WATCH_SECONDS = 2.0
# A catch-up this large leaves the planner without statistics until autovacuum gets round to it.
ANALYZE_AFTER = 10_000

T = TypeVar("T")
# The database (or, while catching up from the log, the broker) is away: try again.
AWAY = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    KafkaError,
)


async def with_retry(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], events: int
) -> T:
    """Run `work` on a connection, retrying while the database or the broker is away."""
    attempt = 0
    while True:
        try:
            async with pool.acquire() as conn:
                try:
                    return await work(conn)
                except BaseException:
                    # A batch cut off mid-protocol (a COPY when PostgreSQL died) can leave the
                    # connection unusable yet not closed; the pool must not hand it out again.
                    conn.terminate()
                    raise
        except AWAY as exc:
            delay = retry_delay(attempt)
            log.warning("projection_retry", error=str(exc)[:300], retry_in=delay, events=events)
            attempt += 1
            await asyncio.sleep(delay)


@dataclass
class Projector:
    """One process's projector: Faust's batches, and the log itself whenever the read model is
    behind where the consumer group stands."""

    settings: Settings
    projection: Projection
    pool: asyncpg.Pool
    reader: AIOKafkaConsumer  # group-less: catch-ups assign and seek it
    keys: DeciderKeys
    # Per partition, the offset below which this process has projected every event.
    reached: dict[int, int] = field(default_factory=dict)
    # One batch or catch-up at a time in this process.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def topic(self) -> str:
        """The events topic."""
        return self.settings.topics.events

    async def project(self, messages: list[Message]) -> BatchResult:
        """Apply a batch, first reading from the log whatever the read model lacks before it."""

        async def apply(conn: asyncpg.Connection) -> BatchResult:
            while True:
                try:
                    return await apply_batch(
                        conn, self.projection, self.topic, messages, keys=self.keys, contiguous=True
                    )
                except Behind as behind:
                    log.warning("read_model_behind_batch", missing=behind.missing)
                    await self._catch_up(conn, behind.upto)

        async with self.lock:
            result = await with_retry(self.pool, apply, len(messages))
        for m in messages:
            self.reached[m.partition] = max(self.reached.get(m.partition, 0), m.offset + 1)
        return result

    async def project_traced(self, messages: list[Message]) -> BatchResult:
        """`project`, under a span for the batch when tracing is on (infra/tracing.py): the
        batch continues the trace of its first traced event, so that request's trace runs on
        into the batch's SQL, and every other traced event gets a span in its own trace."""
        if not TRACING.on:
            return await self.project(messages)
        with consuming_batch(self.topic, messages, continue_first_trace=True) as span:
            span.set_attribute("rectrack.projection", self.projection.name)
            result = await self.project(messages)
            span.set_attribute("rectrack.events_applied", result.applied)
            span.set_attribute("rectrack.events_skipped", result.skipped)
            span.set_attribute("rectrack.events_failed", result.failed)
            return result

    async def restore(self, upto: dict[int, int]) -> int:
        """Bring every partition whose checkpoint is below `upto` up to it, from the log."""
        wanted = {p: o for p, o in upto.items() if o > 0}
        if not wanted:
            return 0
        async with self.lock:
            return await with_retry(self.pool, lambda conn: self._catch_up(conn, wanted), 0)

    async def _catch_up(self, conn: asyncpg.Connection, upto: dict[int, int]) -> int:
        ends = {TopicPartition(self.topic, p): offset for p, offset in upto.items()}
        started = time.monotonic()
        applied = await catch_up(self.reader, conn, self.projection, self.topic, ends, self.keys)
        if applied:
            if applied >= ANALYZE_AFTER:
                await analyze(conn, self.settings.db_schema)
            log.warning(
                "read_model_restored_from_log",
                projection=self.projection.name,
                events=applied,
                seconds=round(time.monotonic() - started, 2),
            )
        return applied

    async def watch(self) -> None:
        """Every few seconds, restore what the read model lost of what this process projected
        (a database replaced while no events arrive)."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await self.restore(dict(self.reached))
            except Exception:  # never a silent end of the watch: say why, look again later
                log.exception("read_model_watch_failed")


async def committed_offsets(settings: Settings, group: str) -> dict[int, int]:
    """Where a consumer group will resume on the events topic, per partition (0 where it has
    committed nothing). It asks as an outsider: nothing joins or moves the group."""
    consumer = AIOKafkaConsumer(
        **connection_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topic = settings.topics.events
        offsets = {}
        for partition in await topic_partitions(consumer, topic):
            offsets[partition] = await consumer.committed(TopicPartition(topic, partition)) or 0
        return offsets
    finally:
        await consumer.stop()


def build_projector_app(settings: Settings, projection: Projection) -> faust.App:
    """A Faust app whose agent projects the events topic into one projection."""
    app = make_app(settings, "projector")
    events = raw_topic(app, settings.topics.events)
    keys = trusted_decider_keys(settings)
    pools: list[asyncpg.Pool] = []
    serve_health(
        app,
        settings,
        "projector",
        {
            "kafka": kafka_check(settings, settings.topics.events),
            "postgres": postgres_check(lambda: pools[0] if pools else None),
            "partitions": assignment_check(app, settings.topics.events),
        },
    )

    @app.agent(events)
    async def project_events(stream: faust.StreamT[bytes]) -> None:
        pool = await create_pool(settings)
        pools[:] = [pool]
        await migrate(pool)
        reader = groupless_consumer(settings)
        await reader.start()
        projector = Projector(settings, projection, pool, reader, keys)
        watch: asyncio.Task[None] | None = None
        try:
            try:
                projector.reached = await committed_offsets(settings, app.conf.id)
            except KafkaError as exc:  # then only batches that begin past it show a gap
                log.warning("committed_offsets_unknown", error=str(exc)[:300])
            await projector.restore(projector.reached)
            watch = asyncio.create_task(projector.watch())
            async for messages in take_messages(stream, BATCH_SIZE, BATCH_WITHIN):
                started = time.perf_counter()
                result = await finish_before_ack(projector.project_traced(messages))
                PROJECTION_BATCH_SECONDS.labels(projection.name).observe(
                    time.perf_counter() - started
                )
                record_consumer_lag(app, settings.topics.events, messages)
                log.info(
                    "batch_projected",
                    projection=projection.name,
                    applied=result.applied,
                    skipped=result.skipped,
                    failed=result.failed,
                )
        finally:
            if watch is not None:
                watch.cancel()
            await reader.stop()
            await pool.close()

    return app
