"""The checkpoint shares the read model's transaction: redelivery changes nothing."""

import dataclasses
import uuid

import pytest

from events.topics import Message
from infra.database import create_pool, migrate
from infra.decider_keys import trusted_decider_keys
from infra.kafka_clients import read_messages
from infra.settings import Settings
from projections.apply import BatchResult
from services.decider.gateway import CommandGateway
from tests.builders import issue, publish
from tests.projecting import project_messages

pytestmark = pytest.mark.integration


async def records_of(settings: Settings, inspection_id: str) -> list[Message]:
    """This inspection's events, as the projector would receive them."""
    messages = await read_messages(settings, settings.topics.events)
    return [m for m in messages if m.key == inspection_id.encode()]


async def test_a_redelivered_batch_does_not_double_count(
    gateway: CommandGateway, stack: Settings
) -> None:
    insp = publish()
    commands = [insp, *(issue(insp.stream_id, n) for n in (1, 2, 3))]
    await gateway.submit(commands, timeout=30)
    records = await records_of(stack, insp.stream_id)
    assert len(records) == 4

    # A schema of its own, so only this test's events are projected into it.
    own = dataclasses.replace(stack, db_schema=f"redeliver_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:

            async def deliver() -> BatchResult:
                # The stack's decider sealed them: trust the keys its home trusts.
                keys = trusted_decider_keys(stack)
                return await project_messages(conn, stack.topics.events, records, keys=keys)

            first = await deliver()
            again = await deliver()
            total = await conn.fetchval(
                "SELECT total FROM inspection_counts WHERE inspection_id = $1", insp.stream_id
            )
            logged = await conn.fetchval("SELECT count(*) FROM event_log")
    finally:
        await pool.close()
    assert (first.applied, first.skipped) == (4, 0)
    assert (again.applied, again.skipped) == (0, 4)
    assert total == 3
    assert logged == 4
