"""How far each projection is behind the log: checkpoints against the topic's end offsets."""

import asyncio
import time
from dataclasses import dataclass

from aiokafka import TopicPartition

from infra.database import create_pool
from infra.kafka_clients import reader, topic_partitions
from infra.settings import Settings
from projections.checkpoint import checkpoints
from projections.recommendations import project as recommendations


@dataclass(frozen=True)
class Lag:
    """A projection's position against the log end, summed over partitions."""

    projection: str
    log_end: int
    projected: int

    @property
    def behind(self) -> int:
        """Events in the log not yet in the read model."""
        return self.log_end - self.projected


async def log_end_offsets(settings: Settings) -> dict[int, int]:
    """The end offset of each partition of the events topic."""
    consumer = reader(settings)
    await consumer.start()
    try:
        topic = settings.topics.events
        partitions = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def projection_lag(settings: Settings) -> Lag:
    """Where the recommendations projection stands against the log."""
    ends = await log_end_offsets(settings)
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            done = await checkpoints(conn, recommendations.NAME, settings.topics.events)
    finally:
        await pool.close()
    projected = sum(min(done.get(p, 0), end) for p, end in ends.items())
    return Lag(recommendations.NAME, sum(ends.values()), projected)


async def wait_until_projected(settings: Settings, *, timeout: float = 60.0) -> Lag:
    """Wait until the read model holds every event in the log now; raise TimeoutError if not."""
    deadline = time.monotonic() + timeout
    while True:
        lag = await projection_lag(settings)
        if lag.behind <= 0:
            return lag
        if time.monotonic() > deadline:
            raise TimeoutError(f"projection still {lag.behind} events behind after {timeout:.0f}s")
        await asyncio.sleep(0.2)
