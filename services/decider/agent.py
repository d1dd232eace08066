"""The Faust decider agent: the only Faust code of the write side."""

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.faust_app import finish_before_ack, make_app, raw_topic, take_messages
from infra.kafka_clients import durable_producer, groupless_consumer
from infra.settings import Settings
from services.decider.decider import Decider
from services.decider.keys import decider_anchors, decider_signer, self_registration_message
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
        decider = await _start_decider(settings, producer, log_reader, verifier)
        try:
            async for messages in take_messages(stream, BATCH_SIZE, BATCH_WITHIN):
                await finish_before_ack(decider.handle_durably(messages))
        finally:
            await verifier.stop()
            await log_reader.stop()
            await producer.stop()

    return app


async def _start_decider(
    settings: Settings,
    producer: AIOKafkaProducer,
    log_reader: AIOKafkaConsumer,
    verifier: BatchVerifier,
) -> Decider:
    decider = Decider(
        settings.topics,
        producer,
        log_reader,
        partitions=settings.partitions,
        anchors=decider_anchors(settings),
        verifier=verifier,
    )
    # The decider's own key registers itself through the commands topic like any other
    # (always the same command, appended once), so the log names it for what comes later.
    key, value = self_registration_message(decider_signer(settings), "decider")
    await producer.send_and_wait(settings.topics.commands, value, key=key)
    return decider
