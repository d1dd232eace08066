"""Schema evolution: events recorded at version 1 still project and come out as version 2."""

import dataclasses
import uuid
from datetime import date
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from events import registry
from events.inspection import InspectionPublished
from events.recommendation import ProgressReported, RecommendationIssued
from events.registry import EVENT_TYPES, SCHEMA_VERSIONS, UPCASTERS
from infra.database import create_pool, migrate
from infra.kafka_clients import durable_producer, ensure_topics, groupless_consumer, read_messages
from infra.settings import Settings
from services.web.feed import Cursor, Feed
from tests.histories import History
from tests.projecting import project_messages

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
