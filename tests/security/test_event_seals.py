"""Issue 14, part 3: events only the decider can write.

On the real stack: an event written straight to the events topic, linked to its stream's last
hash and hashed exactly as events/integrity.py hashes (the attack of the issue), is not
projected and `rectrack verify` names it; so is one sealed by a key nobody trusts; an unreadable
event is named; genuine traffic verifies clean, also across a decider restarted with a new key.
"""

import dataclasses
import json
import signal
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.integrity import seal_document
from events.streams import partition_key
from infra.database import create_pool, migrate
from infra.decider_keys import FileDeciderKeys
from infra.kafka_clients import durable_producer, ensure_topics, read_messages
from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from projections.verify import verify_chain
from services.decider.gateway import CommandGateway
from tests.builders import issue, publish, rec_command
from tests.cli import rectrack, start_component
from tests.e2e.helpers import bearer
from tests.histories import History
from tests.projecting import project_messages
from tests.sealing import partition_of, sealed, untrusted_sealer

pytestmark = pytest.mark.integration

NOT_AUTHENTICATED = "not authenticated by a decider key: "


async def last_event(settings: Settings, stream_id: str) -> dict[str, Any]:
    """The newest event of a stream on the events topic, as stored."""
    docs = [orjson.loads(m.value) for m in await read_messages(settings, settings.topics.events)]
    return max(
        (d for d in docs if d.get("stream_id") == stream_id), key=lambda d: d["stream_version"]
    )


def forged_closure(head: dict[str, Any]) -> dict[str, Any]:
    """Issue 14's forgery: the stream's next version, an inspectorate decision closing it,
    linked to the stream's last hash and hashed as events/integrity.py does."""
    fields = {k: v for k, v in head.items() if k not in ("hash", "seal", "command_digest")}
    forged = {
        **fields,
        "event_id": str(uuid.uuid4()),
        "command_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "type": "InspectorateDecisionRecorded",
        "stream_version": head["stream_version"] + 1,
        "effective_date": "2024-06-01",
        "actor": {"name": "Forger", "team": "hmics", "role": "inspector"},
        "data": {"recommendation_id": head["stream_id"], "decision": "closed", "rationale": "x"},
    }
    return seal_document(forged, head["hash"])


async def append(settings: Settings, key: bytes, values: list[bytes]) -> list[tuple[int, int]]:
    """Produce values straight to the events topic, on the partition the key gives; their
    (partition, offset)."""
    partition = partition_of(key, settings.partitions)
    producer = durable_producer(settings)
    await producer.start()
    try:
        placed = [
            await producer.send_and_wait(settings.topics.events, v, key=key, partition=partition)
            for v in values
        ]
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in placed]


async def report_line(api: httpx.AsyncClient, inspection_id: str) -> dict[str, Any]:
    answer = await api.get(
        "/report", params={"as_of": date.today().isoformat(), "inspection": inspection_id}
    )
    assert answer.status_code == 200, answer.text
    [line] = answer.json()["inspections"]
    return dict(line)


def verify_json(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = rectrack(env, "verify", "--json", "--no-read-models", check=False)
    return done.returncode, json.loads(done.stdout)


async def test_forged_events_with_a_correct_hash_and_link_are_refused_and_named(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool, run_env: dict[str, str]
) -> None:
    inspection = publish()
    r1, r2 = issue(inspection.stream_id, 1), issue(inspection.stream_id, 2)
    outcomes = await gateway.submit([inspection, r1, r2], timeout=60)
    assert {o.status for o in outcomes.values()} == {"accepted"}
    await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
    headers = await bearer(pool, "viewer")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, headers=headers) as api:
        before = await report_line(api, inspection.stream_id)

        # Unsealed, as the issue's attacker wrote it; and sealed, but by a key nobody trusts.
        unsealed = orjson.dumps(forged_closure(await last_event(stack, r1.stream_id)))
        foreign = sealed(
            orjson.dumps(forged_closure(await last_event(stack, r2.stream_id))),
            untrusted_sealer(),
        )
        placed = await append(stack, partition_key(inspection.stream_id), [unsealed, foreign])
        await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)

        assert await report_line(api, inspection.stream_id) == before  # no closure counted
        async with pool.acquire() as conn:
            decisions = await conn.fetch(
                "SELECT last_decision FROM recommendations WHERE inspection_id = $1",
                inspection.stream_id,
            )
            errors = await conn.fetch(
                'SELECT partition, "offset", stream_id, in_chain, reason FROM projection_errors '
                "WHERE stream_id = ANY($1::text[]) ORDER BY stream_id",
                [r1.stream_id, r2.stream_id],
            )
        assert [d["last_decision"] for d in decisions] == [None, None]
        assert [(e["partition"], e["offset"]) for e in errors] == placed
        assert [e["stream_id"] for e in errors] == [r1.stream_id, r2.stream_id]
        assert not any(e["in_chain"] for e in errors)
        assert (
            errors[0]["reason"].startswith(NOT_AUTHENTICATED)
            and "in no seal" in errors[0]["reason"]
        )
        assert "which is not a trusted decider key" in errors[1]["reason"]

        # The stream is not wedged: the decider did not fold the forgery either, so its next
        # genuine event links to the genuine head and projects.
        progress = rec_command(
            "ReportProgress", r1.stream_id, position="Genuine", delivery_status="on_track"
        )
        (outcome,) = (await gateway.submit([progress], timeout=60)).values()
        assert outcome.status == "accepted" and outcome.stream_version == 2
        await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
        after = await report_line(api, inspection.stream_id)
    positions = {r["recommendation_id"]: r["latest_position"] for r in after["recommendations"]}
    assert positions[r1.stream_id] == "Genuine"
    assert after["closed"] == before["closed"]

    code, found = verify_json(run_env)
    assert code == 1
    named = {(u["partition"], u["offset"]): u for u in found["unauthenticated"]}
    for where, stream in zip(placed, (r1.stream_id, r2.stream_id), strict=True):
        assert named[where]["stream_id"] == stream
        assert named[where]["topic"] == stack.topics.events
        assert named[where]["reason"].startswith(NOT_AUTHENTICATED)
    ours = {inspection.stream_id, r1.stream_id, r2.stream_id}
    # Only the forgeries: every genuine event of these streams verifies.
    assert [u for u in found["unauthenticated"] if u["stream_id"] in ours] == [
        named[where] for where in placed
    ]
    assert not [b for b in found["breaks"] if b["stream_id"] in ours]
    refused = {(u["partition"], u["offset"]) for u in found["unprojected"]}
    assert set(placed) <= refused


async def test_unreadable_events_on_the_topic_are_named_by_verify(
    settings: Settings, run_env: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:6]
    own = dataclasses.replace(settings, topic_prefix=f"unread-{run}.", db_schema=f"unread_{run}")
    env = {
        **run_env,
        "RECTRACK_TOPIC_PREFIX": own.topic_prefix,
        "RECTRACK_DB_SCHEMA": own.db_schema,
    }
    await ensure_topics(own)
    h = History()
    h.rec(1)
    [(key, partition, genuine)] = h.records(own.partitions)
    old = {k: v for k, v in orjson.loads(genuine).items() if k not in ("hash", "seal")}
    old["stream_id"], old["data"] = "audit-insp/r2", {**old["data"], "number": "two"}
    # Sealed by a trusted key, and in its chain.
    unreadable = sealed(orjson.dumps(seal_document(old, None)), partition=partition)
    placed = await append(own, key, [genuine, b"\xff\xfe not json", unreadable])

    code, found = verify_json(env)
    assert code == 1
    assert not found["breaks"] and not found["unauthenticated"]
    assert [(u["partition"], u["offset"], u["stream_id"]) for u in found["unreadable"]] == [
        (*placed[1], None),
        (*placed[2], "audit-insp/r2"),
    ]
    assert all(u["topic"] == own.topics.events for u in found["unreadable"])
    text = rectrack(env, "verify", "--no-read-models", check=False)
    assert text.returncode == 1
    assert "2 unreadable" in text.stdout
    assert f"partition {placed[2][0]} offset {placed[2][1]} stream audit-insp/r2" in text.stdout


async def test_a_decider_restarted_with_a_new_key_keeps_everything_verifying(
    settings: Settings, run_env: dict[str, str], tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    # Keys of its own (the run's decider keeps its key); the rest is the run's home.
    env = {
        **run_env,
        "RECTRACK_KEYS_DIR": str(tmp_path / "keys"),
        "RECTRACK_TOPIC_PREFIX": f"rotate-{run}.",
        "RECTRACK_DB_SCHEMA": f"rotate_{run}",
    }
    own = Settings.from_env(env)
    await ensure_topics(own)
    inspection = publish()
    batches = [
        [inspection, issue(inspection.stream_id, 1)],
        [
            issue(inspection.stream_id, 2),
            rec_command(
                "ReportProgress",
                f"{inspection.stream_id}/r1",
                position="After the rotation",
                delivery_status="on_track",
            ),
        ],
    ]
    key_ids = []
    for n, batch in enumerate(batches):
        if n:
            own.decider_key_file.unlink()  # the rotation: the decider is stopped
        decider = start_component(env, "decider")
        gateway = CommandGateway(own)
        await gateway.start()
        try:
            outcomes = await gateway.submit(batch, timeout=120)
        finally:
            await gateway.stop()
            decider.send_signal(signal.SIGTERM)
            decider.wait(timeout=60)
        assert {o.status for o in outcomes.values()} == {"accepted"}, outcomes
        key_ids.append(FileDeciderKeys(own.trusted_deciders_dir).key_ids())
    assert len(key_ids[0]) == 1 and len(key_ids[1]) == 2  # the old key is still trusted
    (old_key,) = key_ids[0]
    (new_key,) = set(key_ids[1]) - {old_key}

    messages = await read_messages(own, own.topics.events)
    seals = [orjson.loads(m.value).get("seal") for m in messages]
    assert {s["key_id"] for s in seals if s} == {old_key, new_key}
    code, found = verify_json(env)
    assert (code, found["breaks"], found["unauthenticated"], found["unreadable"]) == (0, [], [], [])
    assert found["events"] == 5  # the four commands' and the gateway key's registration

    # The projector, with the keys this home trusts, projects all of it.
    trusted = FileDeciderKeys(own.trusted_deciders_dir)
    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            result = await project_messages(conn, own.topics.events, messages, keys=trusted)
            assert (result.applied, result.failed) == (5, 0)
            # An event sealed with a key that is not trusted is refused.
            # r1's last event (the log also holds the gateway key's registration, on
            # whichever partition its key id gives).
            head = max(
                (orjson.loads(m.value) for m in messages),
                key=lambda d: (d["stream_id"] == f"{inspection.stream_id}/r1", d["stream_version"]),
            )
            forged = sealed(orjson.dumps(forged_closure(head)), untrusted_sealer())
            [where] = await append(own, partition_key(inspection.stream_id), [forged])
            later = [
                m
                for m in await read_messages(own, own.topics.events)
                if m.partition == where[0] and m.offset >= where[1]
            ]
            refused = await project_messages(conn, own.topics.events, later, keys=trusted)
            reason = await conn.fetchval("SELECT reason FROM projection_errors")
            closed = await conn.fetchval("SELECT closed FROM inspection_counts")
    finally:
        await pool.close()
    assert (refused.applied, refused.failed) == (0, 1)
    assert reason.startswith(NOT_AUTHENTICATED) and "which is not a trusted decider key" in reason
    assert closed == 0
    code, found = verify_json(env)
    assert code == 1 and [(u["partition"], u["offset"]) for u in found["unauthenticated"]] == [
        where
    ]

    # No longer trusting the old key names what it sealed (the first decider's two events);
    # r1's later events (the rotated decider's, and the forgery) then continue no verified
    # chain.
    (own.trusted_deciders_dir / f"{old_key}.pub").unlink()
    report = await verify_chain(own)
    docs = [orjson.loads(m.value) for m in messages]
    by_old_key = {
        h
        for d in docs
        if (d.get("seal") or {}).get("key_id") == old_key
        for h in d["seal"]["hashes"]
    }
    first_batch = {
        (m.partition, m.offset)
        for m, d in zip(messages, docs, strict=True)
        if d["hash"] in by_old_key
    }
    assert len(first_batch) == 3  # the gateway key's registration, the inspection and r1
    assert {(b.partition, b.offset) for b in report.unauthenticated} == first_batch
    (progress,) = [
        m
        for m, d in zip(messages, docs, strict=True)
        if d["stream_id"].endswith("/r1") and d["stream_version"] == 2
    ]
    assert [(b.offset, b.stream_id) for b in report.breaks] == [
        (progress.offset, f"{inspection.stream_id}/r1"),
        (where[1], f"{inspection.stream_id}/r1"),
    ]
