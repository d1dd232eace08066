"""A decider killed with SIGKILL mid-stream, then restarted: nothing lost, nothing doubled."""

import asyncio
import dataclasses
import signal
import uuid
from collections import Counter

import pytest

from events.registry import parse_event
from infra.kafka_clients import ensure_topics, read_topic
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from tests.builders import ADMIN, command, issue, publish
from tests.cli import start_component

pytestmark = pytest.mark.integration

COMMANDS = 1500


async def test_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(
    settings: Settings, run_env: dict[str, str]
) -> None:
    prefix = f"crash-{uuid.uuid4().hex[:6]}."
    own = dataclasses.replace(settings, topic_prefix=prefix)
    env = {**run_env, "RECTRACK_TOPIC_PREFIX": prefix}
    await ensure_topics(own)
    gateway = CommandGateway(own)
    await gateway.start()
    decider = start_component(env, "decider")
    try:
        insp = publish()
        rec = issue(insp.stream_id, 1)
        assert {o.status for o in (await gateway.submit([insp, rec], timeout=90)).values()} == {
            "accepted"
        }
        # Rejected now (no owner yet); must stay rejected with the same outcome after restart.
        early = command(
            "SubmitEvidence",
            {"recommendation_id": rec.stream_id, "evidence_id": "e1", "summary": "s"},
            actor={"name": "C", "team": "team-a", "role": "contributor"},
        )
        first_rejection = (await gateway.submit([early], timeout=30))[early.command_id]
        assert first_rejection.reason == "forbidden"
        progress = [
            command(
                "ReportProgress",
                {
                    "recommendation_id": rec.stream_id,
                    "position": f"p{i}",
                    "delivery_status": "on_track",
                },
                actor=ADMIN,
            )
            for i in range(COMMANDS)
        ]
        await gateway.send(progress)
        ids = [c.command_id for c in progress]
        for _ in range(400):  # kill once some, not all, are decided
            if len(ids) > len(gateway.outcomes.known(ids)) >= 20:
                break
            await asyncio.sleep(0.01)
        decider.send_signal(signal.SIGKILL)
        decider.wait()
        decided_before_kill = len(gateway.outcomes.known(ids))
        assert decided_before_kill < COMMANDS, "the decider finished before it could be killed"

        decider = start_component(env, "decider")
        outcomes = await gateway.wait_for(ids, timeout=120)
        await gateway.submit(
            [
                command(
                    "AssignOwner",
                    {"recommendation_id": rec.stream_id, "team": "team-a", "owner_role": "lead"},
                    actor=ADMIN,
                )
            ],
            timeout=30,
        )
        gateway.outcomes.forget(early.command_id)
        repeated = (await gateway.submit([early], timeout=30))[early.command_id]
    finally:
        decider.send_signal(signal.SIGTERM)
        decider.wait(timeout=30)
        await gateway.stop()

    assert repeated == first_rejection  # the first outcome, though it would now be accepted
    assert len(outcomes) == COMMANDS
    assert {o.status for o in outcomes.values()} == {"accepted"}
    events = [parse_event(r.value) for r in await read_topic(own, own.topics.events)]
    per_command = Counter(e.command_id for e in events)
    assert all(per_command[cid] == 1 for cid in ids), "a command was lost or doubled"
    versions = [e.stream_version for e in events if e.stream_id == rec.stream_id]
    assert versions == list(range(1, COMMANDS + 3))
    accepted_event_ids = {o.event_ids[0] for o in outcomes.values()}
    assert accepted_event_ids <= {e.event_id for e in events}
