"""aiokafka clients configured for rectrack's guarantees, and topic creation.

Every client connects through `connection_options`: the broker, the security protocol, and
the SASL/SCRAM credentials and CA of the principal the settings name.
"""

import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from events.topics import Message
from infra import kafka_topics
from infra.private_files import read_private_text
from infra.settings import Settings
from infra.topic_policy import FIXED_CONFIGS

log = structlog.get_logger(__name__)

# The log is the system of record: keep it forever, never compact it (with
# `min.insync.replicas` from the settings: infra/topic_policy.py).
TOPIC_CONFIG = dict(FIXED_CONFIGS)


class KafkaCredentialsError(RuntimeError):
    """A Kafka password cannot be read safely; the message says what to do, never the secret."""


def read_kafka_password(path: Path) -> str:
    """A Kafka password kept in a file only its owner may read; refuse a missing or open one."""
    return read_private_text(
        path,
        KafkaCredentialsError,
        "the Kafka password",
        "`rectrack up` creates this home's; for a cluster of your own set "
        "RECTRACK_KAFKA_PASSWORD_FILE",
    )


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context clients use: the configured CA, hostname checked; None without TLS."""
    if not settings.kafka_tls:
        return None
    ca = settings.kafka_ca_path
    if ca is not None and not ca.exists():
        raise KafkaCredentialsError(
            f"the Kafka CA certificate {ca} does not exist; `rectrack up` makes the local "
            "broker's, or set RECTRACK_KAFKA_CA_FILE"
        )
    return ssl.create_default_context(cafile=None if ca is None else str(ca))


def connection_options(settings: Settings) -> dict[str, Any]:
    """How an aiokafka client (producer, consumer, admin) reaches the broker as the settings'
    principal. It holds the password: pass it to a client, never print or log it."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_tls:
        options["ssl_context"] = tls_context(settings)
    if settings.kafka_sasl:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_principal
        options["sasl_plain_password"] = read_kafka_password(settings.kafka_password_path)
    return options


def durable_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer whose acknowledged sends are on every in-sync replica, with no duplicates."""
    return AIOKafkaProducer(
        **connection_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_request_size=1_048_576,
    )


# What a group-less consumer fetches per partition per request. These consumers read the log
# in bulk (replay, the decider's catch-up, verify) and aiokafka's 1 MiB default held only
# ~750 of today's signed events, so a batch of 5,000 waited on several fetches: replay at
# 100k events ran at 12.7-14.1k events/s with it, 16.0-16.6k with 8 MiB (BENCHMARKS.md).
# The request's total stays under aiokafka's fetch_max_bytes (50 MiB).
PARTITION_FETCH_BYTES = 8 * 1024 * 1024


def groupless_consumer(settings: Settings, **kwargs: object) -> AIOKafkaConsumer:
    """A consumer with no group: the caller assigns partitions and seeks."""
    options: dict[str, object] = {"max_partition_fetch_bytes": PARTITION_FETCH_BYTES, **kwargs}
    return AIOKafkaConsumer(
        **connection_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        **options,
    )


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client (not started) for the settings' principal."""
    return AIOKafkaAdminClient(**connection_options(settings))


async def ensure_topics(
    settings: Settings, topics: Sequence[str] | None = None, *, create: bool = True
) -> list[str]:
    """Create this instance's missing topics (or those named) with explicit partitions,
    replication factor, `min.insync.replicas` and retention, then check every one of them
    against the settings; return the new ones.

    Raises `TopicCheckError`, naming the topic and the setting, when one is weaker than the
    settings ask (infra/topic_policy.py), whether it was made here or long ago. With
    `create=False` it only checks, and a missing topic is one of the problems.
    """
    admin = admin_client(settings)
    try:  # closed also when it cannot start: no "Unclosed" warning at exit
        await admin.start()
        names = list(settings.topics.all() if topics is None else topics)
        return await kafka_topics.ensure(admin, settings, names, create_missing=create)
    finally:
        await admin.close()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """Partition numbers of a topic, from fresh cluster metadata.

    A consumer without a subscription keeps no metadata for the topic, so
    `partitions_for_topic` alone answers nothing.
    """
    cluster = await consumer._client.fetch_all_metadata()
    return sorted(cluster.partitions_for_topic(topic) or ())


async def read_topic(
    settings: Settings,
    topic: str,
    keep: Callable[[ConsumerRecord[bytes, bytes]], bool] | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message of a topic up to its end now (those `keep` keeps), in partition then
    offset order. `keep` sees every record as it arrives, so a reader that wants few of many
    (by key, say) holds only those."""
    consumer = groupless_consumer(settings)
    try:  # stopped also when it cannot start: no "Unclosed AIOKafkaConsumer" at exit
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        ends = await consumer.end_offsets(tps)
        wanted = [tp for tp in tps if ends[tp] > 0]
        if not wanted:
            return []
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        found: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {tp: [] for tp in wanted}
        last = dict.fromkeys(wanted, -1)  # the offset of the last record read, kept or not
        while any(last[tp] + 1 < ends[tp] for tp in wanted):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    if r.offset < ends[tp]:
                        last[tp] = r.offset
                        if keep is None or keep(r):
                            found[tp].append(r)
        return [r for tp in wanted for r in found[tp]]
    finally:
        await consumer.stop()


async def read_messages(settings: Settings, topic: str) -> list[Message]:
    """Every message of a topic up to its end now, as the workers hand messages over."""
    return [
        Message(r.partition, r.offset, r.key, r.value or b"")
        for r in await read_topic(settings, topic)
    ]
