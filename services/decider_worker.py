"""The Faust decider agent: the only Faust code of the write side."""

import faust

from infra.faust_app import finish_before_ack, make_app, raw_topic
from infra.kafka_clients import durable_producer, reader
from infra.settings import Settings
from services.decider import CommandMessage, Decider

BATCH_SIZE = 500
BATCH_WITHIN = 0.05


def build_decider_app(settings: Settings) -> faust.App:
    """A Faust app whose single agent decides commands, one writer per partition."""
    app = make_app(settings, "decider")
    commands = raw_topic(app, settings.topics.commands)

    @app.agent(commands)
    async def decide_commands(stream: faust.StreamT[bytes]) -> None:
        producer, log_reader = durable_producer(settings), reader(settings)
        await producer.start()
        await log_reader.start()
        decider = Decider(
            settings.topics, producer, log_reader, partitions=settings.partitions
        )
        try:
            async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN):
                messages = [
                    CommandMessage(e.message.partition, e.message.offset, e.message.key,
                                   e.message.value)
                    for e in events
                ]
                await finish_before_ack(decider.handle(messages))
        finally:
            await log_reader.stop()
            await producer.stop()

    return app
