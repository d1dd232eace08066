"""The Faust app factory and the guard that keeps Faust's acks truthful."""

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar, cast

import faust
from faust.streams import Stream
from faust.types import TP
from faust.types.auth import CredentialsT

from events.topics import Message
from infra.health_server import CONSUMER_LAG, Check, HealthServer
from infra.kafka_clients import connection_options
from infra.settings import Settings

T = TypeVar("T")


def _datadir(settings: Settings, component: str) -> Path:
    # Faust creates only the last level itself.
    path = settings.home / "faust" / component
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's form of `connection_options`: the same principal, password and CA."""
    options = connection_options(settings)
    if settings.kafka_sasl:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=options.get("ssl_context"),
        )
    if settings.kafka_tls:
        return faust.SSLCredentials(options["ssl_context"])
    return None


def make_app(settings: Settings, component: str) -> faust.App:
    """A Faust app for one component; its consumer group is unique to the instance.

    It connects as the settings' principal: pass `settings.for_component(component)`.
    """
    return faust.App(
        f"{settings.topic_prefix}rectrack-{component}",
        broker=f"kafka://{settings.bootstrap_servers}",
        broker_credentials=broker_credentials(settings),
        store="memory://",
        datadir=str(_datadir(settings, component)),
        web_enabled=False,
        topic_partitions=settings.partitions,
        # Faust's own topic (its assignor's) as replicated as ours, so losing a node loses none.
        topic_replication_factor=settings.replication_factor
        or (1 if settings.external_bootstrap else min(3, settings.kafka_brokers)),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # A killed worker's partitions move to the survivors after this long, not a minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )


async def take_messages(
    stream: faust.StreamT[bytes], size: int, within: float
) -> AsyncIterator[list[Message]]:
    """Batches of raw messages with their partition, offset and headers, acked after each
    batch. (The headers are passed by reference: reading them is for tracing, when on.)"""
    batches = cast(Stream[bytes], stream).take_events(size, within=within)
    async for events in batches:
        yield [
            Message(
                e.message.partition,
                e.message.offset,
                e.message.key,
                e.message.value or b"",
                e.message.headers or (),
            )
            for e in events
        ]


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic whose keys and values stay bytes: parsing belongs to events/ and services/."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


async def finish_before_ack(work: Awaitable[T]) -> T:
    """Run a batch to completion even if the agent is cancelled mid-way.

    Faust acks a taken batch in a `finally` clause, also on cancellation at shutdown, so
    an interrupted batch would be committed unprocessed. Shielding the work and waiting for
    it makes every ack follow the work it stands for.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def record_consumer_lag(app: faust.App, topic: str, messages: list[Message]) -> None:
    """After a batch: per partition in it, the high-water mark less the next offset to take."""
    last: dict[int, int] = {}
    for m in messages:
        last[m.partition] = max(last.get(m.partition, -1), m.offset)
    for partition, offset in last.items():
        highwater = app.consumer.highwater(TP(topic, partition))
        if highwater is not None:
            CONSUMER_LAG.labels(topic, str(partition)).set(max(0, highwater - offset - 1))


def assignment_check(app: faust.App, topic: str) -> Check:
    """Always ready: says which partitions of `topic` this worker holds. A worker with none
    (another process of the component holds them all) is a standby, ready to take some over."""

    async def check() -> str:
        held = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)
        if not held:
            return "no partitions assigned"
        return "partitions " + ",".join(map(str, held))

    return check


def serve_health(
    app: faust.App, settings: Settings, component: str, checks: dict[str, Check]
) -> None:
    """On the worker's start, serve /metrics and /health/* on the component's port."""
    server = HealthServer(component, checks, token=settings.metrics_token)

    async def health_server() -> None:
        await server.start(settings.metrics_host, settings.component_port(component))

    app.task(health_server)
