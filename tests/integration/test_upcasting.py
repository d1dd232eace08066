"""Schema evolution: events recorded at version 1 still project and come out as version 2;
rows projected at version 1 are migrated to what a replay writes."""

import dataclasses
import uuid
from datetime import date
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from events import registry
from events.committee import CommitteeUpdateRecorded
from events.inspection import InspectionPublished
from events.integrity import seal_document
from events.recommendation import OwnerAssigned, ProgressReported, RecommendationIssued
from events.registry import EVENT_TYPES, SCHEMA_VERSIONS, UPCASTERS
from events.streams import partition_key
from events.topics import Message
from infra import database
from infra.database import create_pool, migrate
from infra.kafka_clients import durable_producer, ensure_topics, groupless_consumer, read_messages
from infra.settings import Settings
from projections.recommendations.project import EVENT_LOG_COLUMNS, event_log_row
from services.web.feed import Cursor, Feed
from tests.histories import History
from tests.projecting import project_messages
from tests.sealing import sealed_group

pytestmark = pytest.mark.integration


class ProgressReportedV2(ProgressReported):
    """Version 2: progress also says how confident the team is in its delivery date."""

    confidence: str


def add_confidence(data: dict[str, Any]) -> dict[str, Any]:
    """Upcast ProgressReported 1 -> 2: version 1 said nothing about confidence."""
    return {**data, "confidence": "not stated"}


async def publish_v1_history(producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
    h = History()
    h.add(
        "evo",
        "2024-01-10",
        InspectionPublished(
            inspection_id="evo",
            title="Evolution",
            inspectorate="HMICS",
            published_on=date(2024, 1, 10),
        ),
    )
    h.add(
        "evo/r1",
        "2024-01-10",
        RecommendationIssued(recommendation_id="evo/r1", inspection_id="evo", number=1, text="t"),
    )
    h.add(
        "evo/r1",
        "2024-02-01",
        ProgressReported(recommendation_id="evo/r1", position="p", delivery_status="on_track"),
    )
    for key, partition, value in h.records(partitions):
        await producer.send_and_wait(topic, value, key=key, partition=partition)


async def test_version_1_events_project_and_feed_as_version_2(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:6]
    own = dataclasses.replace(settings, topic_prefix=f"evo-{run}.", db_schema=f"evo_{run}")
    await ensure_topics(own)
    producer = durable_producer(own)
    await producer.start()
    try:
        await publish_v1_history(producer, own.topics.events, own.partitions)
    finally:
        await producer.stop()
    raw = await read_messages(own, own.topics.events)
    assert {registry.parse_event(r.value).schema_version for r in raw} == {1}

    # The model changes: ProgressReported is now version 2, with an upcaster from version 1.
    monkeypatch.setitem(EVENT_TYPES, "ProgressReported", ProgressReportedV2)
    monkeypatch.setitem(SCHEMA_VERSIONS, "ProgressReported", 2)
    monkeypatch.setitem(UPCASTERS, ("ProgressReported", 1), add_confidence)

    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            result = await project_messages(conn, own.topics.events, raw)
            status = await conn.fetchval(
                "SELECT delivery_status FROM recommendations WHERE recommendation_id = 'evo/r1'"
            )
    finally:
        await pool.close()
    assert (result.applied, result.failed) == (3, 0)
    assert status == "on_track"

    consumer = groupless_consumer(own)
    await consumer.start()
    try:
        items, _ = await Feed(consumer, own.topics.events).page(Cursor(), 100)
    finally:
        await consumer.stop()
    progress = [i for i in items if i["type"] == "ProgressReported"]
    assert progress and progress[0]["schema_version"] == 2
    assert progress[0]["data"]["confidence"] == "not stated"
    others = [i for i in items if i["type"] != "ProgressReported"]
    assert {i["schema_version"] for i in others} == {1}


def version_1_messages() -> list[Message]:
    """An owner and a committee update written at version 1 (no names), sealed and chained."""
    h = History()
    h.add(
        "evo1",
        "2024-01-10",
        InspectionPublished(
            inspection_id="evo1",
            title="Evolution",
            inspectorate="HMICS",
            published_on=date(2024, 1, 10),
        ),
    )
    h.add(
        "evo1/r1",
        "2024-01-10",
        RecommendationIssued(recommendation_id="evo1/r1", inspection_id="evo1", number=1, text="t"),
    )
    h.add(
        "evo1/r1",
        "2024-02-01",
        OwnerAssigned(recommendation_id="evo1/r1", team="Team A", owner_role="lead"),
    )
    h.add(
        "committee:spa-ppc",
        "2024-06-12",
        CommitteeUpdateRecorded(committee="spa-ppc", meeting_date=date(2024, 6, 12), title="U"),
    )
    values: list[bytes] = []
    heads: dict[str, str] = {}
    for envelope in h.envelopes:
        doc = envelope.model_dump(mode="json")
        doc["schema_version"] = 1
        for added in ("team_name", "committee_name"):  # what version 2 added
            doc["data"].pop(added, None)
        doc = seal_document(
            {k: v for k, v in doc.items() if k != "hash"}, heads.get(envelope.stream_id)
        )
        heads[envelope.stream_id] = doc["hash"]
        values.append(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    return [
        Message(0, i, partition_key(e.stream_id), value)
        for i, (e, value) in enumerate(zip(h.envelopes, sealed_group(values), strict=True))
    ]


NAMED_ROWS = """
SELECT e.event_id::text, e.data::text FROM event_log e
WHERE e.type IN ('OwnerAssigned', 'CommitteeUpdateRecorded') ORDER BY e.type
"""


async def test_rows_projected_at_version_1_migrate_to_what_a_replay_writes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 007 gives event_log rows written before the names what the upcasters give a
    replay, so `rectrack verify` and `replay` agree with the live tables after an upgrade."""
    run = uuid.uuid4().hex[:6]
    messages = version_1_messages()
    replayed = dataclasses.replace(settings, db_schema=f"names_new_{run}")
    pool = await create_pool(replayed)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            result = await project_messages(conn, "evo1.events", messages)
            expected = [tuple(r) for r in await conn.fetch(NAMED_ROWS)]
            committee = await conn.fetchrow("SELECT * FROM committee_updates")
    finally:
        await pool.close()
    assert (result.applied, result.failed) == (4, 0)
    assert committee is not None and committee["committee_name"] is None

    # The same events as a schema at migration 006 held them: data as version 1 wrote it.
    live = dataclasses.replace(settings, db_schema=f"names_old_{run}")
    before = [m for m in database._migrations() if m[0] < "007"]
    monkeypatch.setattr(database, "_migrations", lambda: before)
    pool = await create_pool(live)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            for message in messages:
                envelope = registry.parse_event(message.value)
                v1_data = orjson.loads(message.value)["data"]
                row = (*event_log_row(envelope)[:-1], orjson.dumps(v1_data).decode())
                await conn.execute(
                    f"INSERT INTO event_log ({', '.join(EVENT_LOG_COLUMNS)}) "  # noqa: S608
                    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(row)))})",
                    *row,
                )
            await conn.execute(
                "INSERT INTO committee_updates (committee, meeting_date, title, recorded_at, "
                "event_id) VALUES ('spa-ppc', '2024-06-12', 'U', now(), gen_random_uuid())"
            )
            old = [tuple(r) for r in await conn.fetch(NAMED_ROWS)]
        monkeypatch.undo()
        assert await migrate(pool) == ["007_names_beside_ids.sql", "008_web_sessions.sql"]
        async with pool.acquire() as conn:
            migrated = [tuple(r) for r in await conn.fetch(NAMED_ROWS)]
            name = await conn.fetchval("SELECT committee_name FROM committee_updates")
    finally:
        await pool.close()
    assert old != expected  # the version 1 rows lacked the names...
    assert migrated == expected  # ...and now read as a replay writes them
    assert name is None
