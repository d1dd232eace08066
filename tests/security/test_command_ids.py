"""Finding 6 of issue 13: a command id belongs to one sender and one payload.

Whoever uses a command id first keeps it. Another sender's command, or another payload, under
that id is refused with 409 `command_id_reused` and appends nothing; it never gets, nor
changes, the first command's outcome. The checks go through the real stack over HTTP, and the
last one through a decider killed and restarted from the log.
"""

import asyncio
import dataclasses
import signal
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.registry import parse_event
from infra.kafka_clients import connection_options, ensure_topics, read_topic
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from tests.builders import command, publish
from tests.cli import start_component
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.integration

VIEWER = {"name": "Vic Viewer", "team": "hmics", "role": "viewer"}
OTHER_INSPECTOR = {"name": "Ola Other", "team": "hmics", "role": "inspector"}


def publish_body(inspection_id: str, command_id: uuid.UUID) -> dict[str, Any]:
    return {
        "type": "PublishInspection",
        "command_id": str(command_id),
        "data": {
            "inspection_id": inspection_id,
            "title": "Command ids",
            "inspectorate": "HMICS",
            "published_on": "2024-01-10",
        },
    }


async def events_of(settings: Settings, command_id: uuid.UUID) -> list[str]:
    """The types of the events a command id appended, as the log holds them."""
    records = await read_topic(settings, settings.topics.events)
    return [e.type for r in records if (e := parse_event(r.value)).command_id == command_id]


async def wait_until_committed(settings: Settings, timeout: float = 60) -> None:
    """Until the decider's group has committed every command: a restart then redelivers none,
    so what the restarted decider knows of them can only come from the log."""
    consumer = AIOKafkaConsumer(
        **connection_options(settings),
        group_id=f"{settings.topic_prefix}rectrack-decider",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topics.commands, p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while True:
            committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
            if all(committed[tp] >= ends[tp] for tp in tps):
                return
            assert time.monotonic() < deadline, "the decider did not commit its commands"
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


async def test_a_refused_command_does_not_answer_the_genuine_one_under_its_id(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    """Bullet 1: the viewer's 403 under an id never comes back for the inspector's command."""
    inspection = f"ids-{uuid.uuid4().hex[:10]}"
    cid = uuid.uuid4()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        viewer = await bearer(pool, "viewer")
        inspector = await bearer(pool, "inspector")
        squat = await api.post("/commands", json=publish_body(inspection, cid), headers=viewer)
        assert squat.status_code == 403
        genuine = await api.post("/commands", json=publish_body(inspection, cid), headers=inspector)
        # A viewer can never send a command, so the API refused it before producing it: the id
        # was never taken, and the inspector's command is applied.
        assert genuine.status_code == 201, genuine.json()
        # The sender's status poll shows its own outcome, never the viewer's.
        polled = await api.get(f"/commands/{cid}", headers=inspector)
        assert polled.status_code == 200 and polled.json() == genuine.json()

        # A refusal that depends on the state (a team that does not own the recommendation)
        # is the decider's, whatever the API checks first: it must not answer the owner either.
        admin = await bearer(pool, "admin", "secretariat")
        setup = [
            publish_body(f"{inspection}-own", uuid.uuid4()),
            {
                "type": "IssueRecommendation",
                "data": {"inspection_id": f"{inspection}-own", "number": 1, "text": "t"},
            },
            {
                "type": "AssignOwner",
                "data": {
                    "recommendation_id": f"{inspection}-own/r1",
                    "team": "team-a",
                    "owner_role": "lead",
                },
            },
        ]
        for body in setup:
            response = await api.post("/commands", json=body, headers=admin)
            assert response.status_code == 201, response.json()
        progress = {
            "type": "ReportProgress",
            "command_id": str(uuid.uuid4()),
            "data": {
                "recommendation_id": f"{inspection}-own/r1",
                "position": "on plan",
                "delivery_status": "on_track",
            },
        }
        outsider = await api.post(
            "/commands", json=progress, headers=await bearer(pool, "contributor", "team-b")
        )
        assert (outsider.status_code, outsider.json()["reason"]) == (403, "forbidden")
        owner = await api.post(
            "/commands", json=progress, headers=await bearer(pool, "contributor", "team-a")
        )
        assert (owner.status_code, owner.json()["reason"]) == (409, "command_id_reused")


async def test_another_command_reusing_an_accepted_id_is_refused_and_not_applied(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    """Bullet 2: an admin's AssignOwner under an IssueRecommendation's id: 409, nothing applied."""
    inspection = f"ids-{uuid.uuid4().hex[:10]}"
    rec_id = f"{inspection}/r1"
    issue_id = uuid.uuid4()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        inspector, admin = await bearer(pool, "inspector"), await bearer(pool, "admin", "sec")
        issue_data = {"inspection_id": inspection, "number": 1, "text": "Recommendation 1"}
        issue_body = {
            "type": "IssueRecommendation",
            "command_id": str(issue_id),
            "data": issue_data,
        }
        for body in (publish_body(inspection, uuid.uuid4()), issue_body):
            response = await api.post("/commands", json=body, headers=inspector)
            assert response.status_code == 201, response.json()
        issued = response.json()

        assign = {
            "type": "AssignOwner",
            "command_id": str(issue_id),
            "data": {"recommendation_id": rec_id, "team": "team-a", "owner_role": "lead"},
        }
        reused = await api.post("/commands", json=assign, headers=admin)
        assert reused.status_code == 409, reused.json()
        assert reused.json()["reason"] == "command_id_reused"
        assert reused.json()["event_ids"] == []
        # The same sender with another payload under its own id is refused as well.
        resent = await api.post(
            "/commands",
            json={**issue_body, "data": {**issue_data, "text": "Other words"}},
            headers=inspector,
        )
        assert (resent.status_code, resent.json()["reason"]) == (409, "command_id_reused")
        # The genuine resend still gets its first outcome, and so does its status poll.
        again = await api.post("/commands", json=issue_body, headers=inspector)
        assert (again.status_code, again.json()) == (201, issued)
        polled = await api.get(f"/commands/{issue_id}", headers=inspector)
        assert polled.json() == issued

        assert await events_of(stack, issue_id) == ["RecommendationIssued"]
        fresh = await api.post(
            "/commands", json={**assign, "command_id": str(uuid.uuid4())}, headers=admin
        )
        assert fresh.status_code == 201, fresh.json()


async def test_a_decider_restarted_from_the_log_still_refuses_a_reused_id(
    settings: Settings, run_env: dict[str, str]
) -> None:
    """Bullet 3: ids can be known in advance, so a claim on one must survive a restart."""
    prefix = f"ids-{uuid.uuid4().hex[:6]}."
    own = dataclasses.replace(settings, topic_prefix=prefix)
    env = {**run_env, "RECTRACK_TOPIC_PREFIX": prefix}
    await ensure_topics(own)
    accepted = publish()
    refused = command("PublishInspection", publish().data.model_dump(mode="json"), actor=VIEWER)
    # The same ids, known in advance (as a load file's are), sent by others.
    reuses = [
        command(
            "PublishInspection",
            accepted.data.model_dump(mode="json"),
            actor=OTHER_INSPECTOR,
            command_id=str(accepted.command_id),
        ),
        command(
            "PublishInspection",
            refused.data.model_dump(mode="json"),
            command_id=str(refused.command_id),
        ),  # the inspector the viewer squatted
    ]

    decider = start_component(env, "decider")
    gateway = CommandGateway(own)
    await gateway.start()
    try:
        before = await gateway.submit([accepted, refused], timeout=90)
        assert before[accepted.command_id].status == "accepted"
        assert before[refused.command_id].reason == "forbidden"
        await wait_until_committed(own)
        decider.send_signal(signal.SIGKILL)
        decider.wait()
    finally:
        await gateway.stop()

    decider = start_component(env, "decider")
    gateway = CommandGateway(own)  # a fresh one: it knows no outcome from before
    await gateway.start()
    try:
        other_sender, squatted, genuine = [
            (await gateway.submit([c], timeout=90))[c.command_id] for c in (*reuses, accepted)
        ]
    finally:
        decider.send_signal(signal.SIGTERM)
        decider.wait(timeout=30)
        await gateway.stop()

    assert (other_sender.status, other_sender.reason) == ("rejected", "command_id_reused")
    assert (squatted.status, squatted.reason) == ("rejected", "command_id_reused")
    # The id's first sender still gets its first outcome; nothing was appended for the others.
    assert genuine.status == "accepted"
    assert genuine.event_ids == before[accepted.command_id].event_ids
    assert await events_of(own, accepted.command_id) == ["InspectionPublished"]
    assert await events_of(own, refused.command_id) == []
