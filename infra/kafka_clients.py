"""aiokafka clients configured for rectrack's guarantees, and topic creation."""

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from events.topics import Message
from infra.settings import Settings

log = structlog.get_logger(__name__)

# The log is the system of record: keep it forever, never compact it.
TOPIC_CONFIG = {"retention.ms": "-1", "cleanup.policy": "delete"}


def durable_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer whose acknowledged sends are on every in-sync replica, with no duplicates."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_request_size=1_048_576,
    )


def groupless_consumer(settings: Settings, **kwargs: object) -> AIOKafkaConsumer:
    """A consumer with no group: the caller assigns partitions and seeks."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        **kwargs,
    )


async def ensure_topics(settings: Settings) -> list[str]:
    """Create this instance's topics with explicit partitions and retention; return new ones."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in settings.topics.all() if t not in existing]
        created: list[str] = []
        for name in wanted:
            try:
                await admin.create_topics(
                    [NewTopic(name, settings.partitions, 1, topic_configs=TOPIC_CONFIG)]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                continue
        await _wait_for_leaders(admin, created)
        if created:
            log.info("topics_created", topics=created, partitions=settings.partitions)
        return created
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    for _ in range(100):
        if not topics:
            return
        described = await admin.describe_topics(topics)
        if all(t["partitions"] and t["error_code"] == 0 for t in described):
            return
        await asyncio.sleep(0.1)


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """Partition numbers of a topic, from fresh cluster metadata.

    A consumer without a subscription keeps no metadata for the topic, so
    `partitions_for_topic` alone answers nothing.
    """
    cluster = await consumer._client.fetch_all_metadata()
    return sorted(cluster.partitions_for_topic(topic) or ())


async def read_topic(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message of a topic up to its end now, in partition then offset order."""
    consumer = groupless_consumer(settings)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        ends = await consumer.end_offsets(tps)
        wanted = [tp for tp in tps if ends[tp] > 0]
        if not wanted:
            return []
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        found: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {tp: [] for tp in wanted}
        while any(not found[tp] or found[tp][-1].offset + 1 < ends[tp] for tp in wanted):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                found[tp] += [r for r in records if r.offset < ends[tp]]
        return [r for tp in wanted for r in found[tp]]
    finally:
        await consumer.stop()


async def read_messages(settings: Settings, topic: str) -> list[Message]:
    """Every message of a topic up to its end now, as the workers hand messages over."""
    return [
        Message(r.partition, r.offset, r.key, r.value or b"")
        for r in await read_topic(settings, topic)
    ]
