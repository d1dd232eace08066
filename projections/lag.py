"""How far each projection is behind the log: checkpoints against the topics' end offsets."""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.topics import Topics
from infra.database import create_pool
from infra.kafka_clients import groupless_consumer, topic_partitions
from infra.settings import Settings
from projections.checkpoint import checkpoints
from projections.projection import Projection


@dataclass(frozen=True)
class Lag:
    """A projection's position against the log end."""

    projection: str
    log_end: dict[int, int]
    projected: dict[int, int]
    last_event_at: datetime | None
    errors: int
    dead_letters: int

    @property
    def behind(self) -> int:
        """Events in the log not yet in the read model."""
        return sum(end - min(self.projected.get(p, 0), end) for p, end in self.log_end.items())

    @property
    def log_total(self) -> int:
        """Events in the log."""
        return sum(self.log_end.values())


async def end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[int, int]:
    """The end offset of each partition of a topic."""
    partitions = await topic_partitions(consumer, topic)
    ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    return {tp.partition: offset for tp, offset in ends.items()}


async def measure(
    consumer: AIOKafkaConsumer, conn: asyncpg.Connection, topics: Topics, projection: Projection
) -> Lag:
    """Where a projection stands against the log."""
    log_end = await end_offsets(consumer, topics.events)
    dead = await end_offsets(consumer, topics.dead_letters)
    done = await checkpoints(conn, projection.name, topics.events)
    last = await conn.fetchval(projection.newest_event_sql)
    errors = await conn.fetchval(
        "SELECT count(*) FROM projection_errors WHERE projection = $1", projection.name
    )
    return Lag(projection.name, log_end, done, last, errors, sum(dead.values()))


async def projection_lag(settings: Settings, projection: Projection) -> Lag:
    """Measure with connections of our own (for the CLI)."""
    consumer = groupless_consumer(settings)
    await consumer.start()
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await measure(consumer, conn, settings.topics, projection)
    finally:
        await pool.close()
        await consumer.stop()


async def wait_until_projected(
    settings: Settings, projection: Projection, *, timeout: float = 60.0
) -> Lag:
    """Wait until the read model holds every event in the log now; raise TimeoutError if not."""
    deadline = time.monotonic() + timeout
    while True:
        lag = await projection_lag(settings, projection)
        if lag.behind <= 0:
            return lag
        if time.monotonic() > deadline:
            raise TimeoutError(f"projection still {lag.behind} events behind after {timeout:.0f}s")
        await asyncio.sleep(0.2)


def prometheus_text(lag: Lag) -> str:
    """The lag as Prometheus exposition text."""
    name = lag.projection
    lines = [
        "# HELP rectrack_log_end_offset End offset of each partition of the events topic.",
        "# TYPE rectrack_log_end_offset gauge",
        *(
            f'rectrack_log_end_offset{{partition="{p}"}} {o}'
            for p, o in sorted(lag.log_end.items())
        ),
        "# HELP rectrack_projection_offset Next offset each projection will apply, per partition.",
        "# TYPE rectrack_projection_offset gauge",
        *(
            f'rectrack_projection_offset{{projection="{name}",partition="{p}"}} '
            f"{lag.projected.get(p, 0)}"
            for p in sorted(lag.log_end)
        ),
        "# HELP rectrack_projection_lag Events in the log not yet projected.",
        "# TYPE rectrack_projection_lag gauge",
        f'rectrack_projection_lag{{projection="{name}"}} {lag.behind}',
        "# HELP rectrack_projection_last_event_timestamp_seconds recorded_at of the newest "
        "projected event.",
        "# TYPE rectrack_projection_last_event_timestamp_seconds gauge",
        f'rectrack_projection_last_event_timestamp_seconds{{projection="{name}"}} '
        f"{lag.last_event_at.timestamp() if lag.last_event_at else 0}",
        "# HELP rectrack_projection_errors Events a projection recorded as errors.",
        "# TYPE rectrack_projection_errors gauge",
        f'rectrack_projection_errors{{projection="{name}"}} {lag.errors}',
        "# HELP rectrack_dead_letters Malformed commands kept on the dead-letter topic.",
        "# TYPE rectrack_dead_letters gauge",
        f"rectrack_dead_letters {lag.dead_letters}",
    ]
    return "\n".join(lines) + "\n"
