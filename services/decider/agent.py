"""The Faust decider agent: the only Faust code of the write side."""

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.faust_app import finish_before_ack, make_app, raw_topic, take_messages
from infra.kafka_clients import durable_producer, groupless_consumer
from infra.settings import Settings
from services.decider.decider import Decider
from services.decider.keys import decider_anchors
from services.decider.verifier import BatchVerifier

BATCH_SIZE = 500
BATCH_WITHIN = 0.05


def build_decider_app(settings: Settings) -> faust.App:
    """A Faust app whose single agent decides commands, one writer per partition."""
    app = make_app(settings, "decider")
    commands = raw_topic(app, settings.topics.commands)

    @app.agent(commands)
    async def decide_commands(stream: faust.StreamT[bytes]) -> None:
        producer, log_reader = durable_producer(settings), groupless_consumer(settings)
        await producer.start()
        await log_reader.start()
        verifier = BatchVerifier()
        await verifier.start()
        decider = _decider(settings, producer, log_reader, verifier)
        try:
            async for messages in take_messages(stream, BATCH_SIZE, BATCH_WITHIN):
                await finish_before_ack(decider.handle_durably(messages))
        finally:
            await verifier.stop()
            await log_reader.stop()
            await producer.stop()

    return app


def _decider(
    settings: Settings,
    producer: AIOKafkaProducer,
    log_reader: AIOKafkaConsumer,
    verifier: BatchVerifier,
) -> Decider:
    # The anchors include the decider's own key, created here if need be. It signs nothing
    # yet: how it enters the log is for the decider's signatures over events (issue 14, part
    # 3). It cannot register itself through the commands topic as the gateway does, because
    # the decider's Kafka principal may only read that topic.
    return Decider(
        settings.topics,
        producer,
        log_reader,
        partitions=settings.partitions,
        anchors=decider_anchors(settings),
        verifier=verifier,
    )
