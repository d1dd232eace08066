"""Against the real broker and PostgreSQL: command → decider → log → projection."""

import asyncio
import base64
from uuid import uuid4

import asyncpg
import orjson
import pytest
from aiokafka import TopicPartition

from events.registry import parse_event
from infra.kafka_clients import groupless_consumer, read_topic, topic_partitions
from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from services.decider.gateway import CommandGateway
from services.decider.outcome_book import KEEP_RECENT
from tests.builders import issue, publish, rec_command

pytestmark = pytest.mark.integration


async def read_events(settings: Settings) -> list[bytes]:
    """Every message of this run's events topic."""
    return [r.value for r in await read_topic(settings, settings.topics.events)]


async def test_a_command_becomes_an_event_and_a_projected_row(
    gateway: CommandGateway, stack: Settings, pool: asyncpg.Pool
) -> None:
    insp = publish()
    inspection_id = insp.stream_id
    rec = issue(inspection_id, 1)
    outcomes = await gateway.submit([insp, rec], timeout=30)
    assert [outcomes[c.command_id].status for c in (insp, rec)] == ["accepted", "accepted"]
    await wait_until_projected(stack, RECOMMENDATIONS, timeout=30)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT inspection_id, number, stream_version, last_event_id FROM recommendations "
            "WHERE recommendation_id = $1",
            rec.stream_id,
        )
    assert row is not None
    assert (row["inspection_id"], row["number"], row["stream_version"]) == (inspection_id, 1, 1)
    assert row["last_event_id"] == outcomes[rec.command_id].event_ids[0]


async def test_a_rejected_command_produces_no_event(
    gateway: CommandGateway, stack: Settings
) -> None:
    orphan = issue(f"missing-{uuid4().hex[:8]}", 1)
    outcome = (await gateway.submit([orphan], timeout=30))[orphan.command_id]
    assert (outcome.status, outcome.reason) == ("rejected", "inspection_not_found")
    assert outcome.event_ids == ()
    events = [parse_event(v) for v in await read_events(stack)]
    assert orphan.command_id not in {e.command_id for e in events}


async def test_the_same_command_twice_appends_one_event(
    gateway: CommandGateway, stack: Settings
) -> None:
    insp = publish()
    first = await gateway.submit([insp], timeout=30)
    gateway.outcomes.forget(insp.command_id)
    second = await gateway.submit([insp], timeout=30)
    assert first[insp.command_id].event_ids == second[insp.command_id].event_ids
    events = [parse_event(v) for v in await read_events(stack)]
    assert sum(e.command_id == insp.command_id for e in events) == 1


async def test_a_poison_message_is_rejected_dead_lettered_and_the_decider_goes_on(
    gateway: CommandGateway, stack: Settings
) -> None:
    poison = b"\xff not json at all " + uuid4().hex.encode()
    await gateway.send_raw(b"whatever", poison)
    dead_letters = groupless_consumer(stack)
    await dead_letters.start()
    try:
        topic = stack.topics.dead_letters
        tps = [TopicPartition(topic, p) for p in await topic_partitions(dead_letters, topic)]
        dead_letters.assign(tps)
        await dead_letters.seek_to_beginning(*tps)
        found: list[dict[str, object]] = []
        for _ in range(30):
            for records in (await dead_letters.getmany(timeout_ms=1000)).values():
                # Other tests dead-letter messages too: only this one's record counts.
                found += [
                    letter
                    for r in records
                    if base64.b64decode(str((letter := orjson.loads(r.value))["value_base64"]))
                    == poison
                ]
            if found:
                break
    finally:
        await dead_letters.stop()
    # Not even JSON, so not a signed command: refused as unauthenticated, saying why.
    assert found and "not JSON" in str(found[0]["reason"])
    assert str(found[0]["reason"]).startswith("unauthenticated")
    follow_up = publish()
    outcome = (await gateway.submit([follow_up], timeout=30))[follow_up.command_id]
    assert outcome.status == "accepted"


async def test_concurrent_conflicting_commands_one_wins(
    gateway: CommandGateway, stack: Settings
) -> None:
    insp = publish()
    rec = issue(insp.stream_id, 1)
    await gateway.submit([insp, rec], timeout=30)
    racers = [
        rec_command("AssignOwner", rec.stream_id, team=f"team-{i}", owner_role="lead").model_copy(
            update={"expected_version": 1}
        )
        for i in range(2)
    ]
    results = await asyncio.gather(*(gateway.submit([r], timeout=30) for r in racers))
    statuses = sorted(
        (res[r.command_id].status, res[r.command_id].reason)
        for res, r in zip(results, racers, strict=True)
    )
    assert statuses == [("accepted", None), ("rejected", "version_conflict")]


async def test_a_load_larger_than_the_outcome_book_gets_every_outcome(
    gateway: CommandGateway, stack: Settings
) -> None:
    insp = publish()
    recs = [issue(insp.stream_id, n) for n in range(1, 8)]
    gateway.outcomes.keep_recent = 2  # far fewer than the load: only held outcomes survive
    try:
        outcomes = await gateway.submit([insp, *recs], timeout=30)
    finally:
        gateway.outcomes.keep_recent = KEEP_RECENT
    assert {o.status for o in outcomes.values()} == {"accepted"}
    assert outcomes.keys() == {c.command_id for c in [insp, *recs]}
