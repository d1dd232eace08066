"""The Faust decider agent: the only Faust code of the write side."""

import time

import faust

from infra.decider_keys import decider_sealer, trusted_decider_keys
from infra.faust_app import (
    assignment_check,
    finish_before_ack,
    make_app,
    raw_topic,
    record_consumer_lag,
    serve_health,
    take_messages,
)
from infra.gc_pause import gc_paused
from infra.health_server import kafka_check
from infra.kafka_clients import durable_producer, groupless_consumer
from infra.settings import Settings
from services.decider.decider import Decider
from services.decider.keys import decider_anchors
from services.decider.metrics import DECIDE_BATCH_SECONDS
from services.decider.verifier import BatchVerifier

BATCH_SIZE = 500
BATCH_WITHIN = 0.05


def build_decider_app(settings: Settings) -> faust.App:
    """A Faust app whose single agent decides commands, one writer per partition."""
    app = make_app(settings, "decider")
    commands = raw_topic(app, settings.topics.commands)
    # Loaded (or created, at the first start) before any command: a key file that cannot be
    # used stops the decider here, with a message saying what to do.
    sealer = decider_sealer(settings)
    # Readiness: the brokers answer and list the commands topic; the decider uses no database.
    serve_health(
        app,
        settings,
        "decider",
        {
            "kafka": kafka_check(settings, settings.topics.commands),
            "partitions": assignment_check(app, settings.topics.commands),
        },
    )

    @app.agent(commands)
    async def decide_commands(stream: faust.StreamT[bytes]) -> None:
        producer, log_reader = durable_producer(settings), groupless_consumer(settings)
        await producer.start()
        await log_reader.start()
        verifier = BatchVerifier()
        await verifier.start()
        decider = Decider(
            settings.topics,
            producer,
            log_reader,
            partitions=settings.partitions,
            anchors=decider_anchors(settings, sealer.public_key),
            verifier=verifier,
            sealer=sealer,
            keys=trusted_decider_keys(settings),
        )
        try:
            async for messages in take_messages(stream, BATCH_SIZE, BATCH_WITHIN):
                started = time.perf_counter()
                with gc_paused(then_freeze=True):
                    await finish_before_ack(decider.handle_durably(messages))
                DECIDE_BATCH_SECONDS.observe(time.perf_counter() - started)
                record_consumer_lag(app, settings.topics.commands, messages)
        finally:
            await verifier.stop()
            await log_reader.stop()
            await producer.stop()

    return app
