"""The Decider with its ports faked in memory: idempotency, partitions, dead letters, failures."""

import base64
from datetime import UTC, datetime
from itertools import count
from uuid import UUID

import orjson
import pytest

from events.registry import parse_event, parse_outcome
from events.topics import Message, Topics
from services.decider.decider import Decider
from services.domain.commands import Command, dump_command
from services.domain.rejections import Reason
from tests.builders import issue, publish
from tests.fakes import BrokerAway, InMemoryLog

TOPICS = Topics.with_prefix("unit.")
PARTITIONS = 3
NOW = datetime(2024, 9, 18, 12, 0, tzinfo=UTC)


def make_decider(log: InMemoryLog) -> Decider:
    ids = count(1)
    return Decider(
        TOPICS,
        log,
        log,
        partitions=PARTITIONS,
        clock=lambda: NOW,
        new_id=lambda: UUID(int=next(ids)),
    )


class CommandsTopic:
    """Offsets handed out as a commands partition would."""

    def __init__(self) -> None:
        self.offsets = count()

    def message(
        self, decider: Decider, command: Command, *, partition: int | None = None
    ) -> Message:
        home = decider.home_partition(command.stream_id)
        return Message(
            home if partition is None else partition,
            next(self.offsets),
            None,
            dump_command(command),
        )


def events_in(log: InMemoryLog) -> list[str]:
    return [parse_event(r.value).stream_id for r in log.topic(TOPICS.events)]


async def test_a_repeated_command_id_gets_its_first_outcome_and_appends_nothing() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    command = publish()
    first, again = await decider.handle(
        [commands.message(decider, command), commands.message(decider, command)]
    )
    assert first.status == "accepted" and again == first
    assert events_in(log) == [command.stream_id]


async def test_a_repeated_command_id_is_recognised_by_a_fresh_decider_from_the_log() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    command = publish()
    first = await make_decider(log).handle([commands.message(make_decider(log), command)])
    restarted = make_decider(log)
    (again,) = await restarted.handle([commands.message(restarted, command)])
    assert again.event_ids == first[0].event_ids
    assert len(events_in(log)) == 1


async def test_a_command_on_another_partition_than_its_key_gives_is_refused() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    command = publish()
    wrong = (decider.home_partition(command.stream_id) + 1) % PARTITIONS
    (outcome,) = await decider.handle([commands.message(decider, command, partition=wrong)])
    assert outcome.status == "rejected"
    assert outcome.reason == Reason.INVALID_COMMAND.value
    assert f"arrived on partition {wrong}" in (outcome.detail or "")
    assert events_in(log) == []


async def test_a_malformed_command_is_dead_lettered_and_answered() -> None:
    log = InMemoryLog(PARTITIONS)
    decider = make_decider(log)
    raw = b'{"type": "PublishInspection", "data": '
    (outcome,) = await decider.handle([Message(1, 7, None, raw)])
    assert outcome.status == "rejected" and outcome.reason == Reason.INVALID_COMMAND.value
    (dead,) = log.topic(TOPICS.dead_letters)
    record = orjson.loads(dead.value)
    assert (record["topic"], record["partition"], record["offset"]) == (TOPICS.commands, 1, 7)
    assert base64.b64decode(record["value_base64"]) == raw
    (published,) = log.topic(TOPICS.outcomes)
    assert parse_outcome(published.value) == outcome
    assert events_in(log) == []


async def test_a_failed_send_drops_what_the_batch_folded_and_the_retry_appends_once() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    inspection = publish()
    await decider.handle([commands.message(decider, inspection)])
    recommendation = issue(inspection.stream_id, 1)
    batch = [commands.message(decider, recommendation)]

    log.refuse_sends = 1
    with pytest.raises(BrokerAway):
        await decider.handle(batch)
    assert recommendation.stream_id not in decider.state.streams  # folded, never appended
    assert decider.state.outcome_of(recommendation.command_id) is None

    (outcome,) = await decider.handle(batch)
    assert outcome.status == "accepted" and outcome.stream_version == 1
    assert events_in(log) == [inspection.stream_id, recommendation.stream_id]
