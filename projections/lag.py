"""How far each projection is behind the log: checkpoints against the topics' end offsets."""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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


def metric_families(lag: Lag) -> list[Metric]:
    """The lag as Prometheus metrics: offsets and lag as gauges, errors and dead letters as
    counters (they only grow while the log and the read model are kept)."""
    name = lag.projection
    log_end = GaugeMetricFamily(
        "rectrack_log_end_offset",
        "End offset of each partition of the events topic.",
        labels=["partition"],
    )
    offset = GaugeMetricFamily(
        "rectrack_projection_offset",
        "Next offset each projection will apply, per partition.",
        labels=["projection", "partition"],
    )
    behind = GaugeMetricFamily(
        "rectrack_projection_partition_lag",
        "Events of a partition not yet projected.",
        labels=["projection", "partition"],
    )
    for p, end in sorted(lag.log_end.items()):
        done = lag.projected.get(p, 0)
        log_end.add_metric([str(p)], end)
        offset.add_metric([name, str(p)], done)
        behind.add_metric([name, str(p)], end - min(done, end))
    total = GaugeMetricFamily(
        "rectrack_projection_lag", "Events in the log not yet projected.", labels=["projection"]
    )
    total.add_metric([name], lag.behind)
    last = GaugeMetricFamily(
        "rectrack_projection_last_event_timestamp_seconds",
        "recorded_at of the newest projected event.",
        labels=["projection"],
    )
    last.add_metric([name], lag.last_event_at.timestamp() if lag.last_event_at else 0)
    errors = CounterMetricFamily(
        "rectrack_projection_errors",
        "Events a projection recorded as errors.",
        labels=["projection"],
    )
    errors.add_metric([name], lag.errors)
    dead = CounterMetricFamily(
        "rectrack_dead_letter_topic_messages",
        "Messages on the dead-letter topic (the sum of its end offsets).",
    )
    dead.add_metric([], lag.dead_letters)
    return [log_end, offset, behind, total, last, errors, dead]
