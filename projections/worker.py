"""The Faust projector agent: batches of events into a projection with their checkpoint."""

import asyncio

import asyncpg
import faust
import structlog

from events.seals import DeciderKeys
from events.topics import Message
from infra.database import create_pool, migrate
from infra.decider_keys import trusted_decider_keys
from infra.faust_app import finish_before_ack, make_app, raw_topic, take_messages
from infra.retry import retry_delay
from infra.settings import Settings
from projections.apply import BatchResult, apply_batch
from projections.projection import Projection

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN = 0.1


async def project_with_retry(
    pool: asyncpg.Pool,
    projection: Projection,
    topic: str,
    records: list[Message],
    keys: DeciderKeys,
) -> BatchResult:
    """Apply a batch, retrying while the database is away: the batch is acked only after."""
    attempt = 0
    while True:
        try:
            async with pool.acquire() as conn:
                try:
                    return await apply_batch(conn, projection, topic, records, keys=keys)
                except BaseException:
                    # A batch cut off mid-protocol (a COPY when PostgreSQL died) can leave the
                    # connection unusable yet not closed; the pool must not hand it out again.
                    conn.terminate()
                    raise
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ) as exc:
            delay = retry_delay(attempt)
            log.warning(
                "projection_retry", error=str(exc)[:300], retry_in=delay, events=len(records)
            )
            attempt += 1
            await asyncio.sleep(delay)


def build_projector_app(settings: Settings, projection: Projection) -> faust.App:
    """A Faust app whose agent projects the events topic into one projection."""
    app = make_app(settings, "projector")
    events = raw_topic(app, settings.topics.events)
    keys = trusted_decider_keys(settings)

    @app.agent(events)
    async def project_events(stream: faust.StreamT[bytes]) -> None:
        pool = await create_pool(settings)
        await migrate(pool)
        try:
            async for messages in take_messages(stream, BATCH_SIZE, BATCH_WITHIN):
                result = await finish_before_ack(
                    project_with_retry(pool, projection, settings.topics.events, messages, keys)
                )
                log.info(
                    "batch_projected",
                    projection=projection.name,
                    applied=result.applied,
                    skipped=result.skipped,
                    failed=result.failed,
                )
        finally:
            await pool.close()

    return app
