"""A forged event and an altered copy of an earlier one, appended straight to the topic:
`verify` names each, the projector refuses each, and a tampered read model is caught."""

import dataclasses
import uuid
from datetime import date

import orjson
import pytest

from events.inspection import InspectionPublished
from events.recommendation import InspectorateDecisionRecorded, RecommendationIssued
from infra.database import create_pool, migrate
from infra.kafka_clients import durable_producer, ensure_topics, read_messages
from infra.settings import Settings
from projections.recommendations.projection import RECOMMENDATIONS
from projections.verify import verify_chain, verify_read_models
from tests.histories import History
from tests.projecting import project_messages

pytestmark = pytest.mark.integration


def genuine() -> History:
    h = History()
    h.add(
        "tamper",
        "2024-01-10",
        InspectionPublished(
            inspection_id="tamper", title="T", inspectorate="HMICS", published_on=date(2024, 1, 10)
        ),
    )
    for n in (1, 2):
        rid = f"tamper/r{n}"
        h.add(
            rid,
            "2024-01-10",
            RecommendationIssued(
                recommendation_id=rid, inspection_id="tamper", number=n, text=f"text {n}"
            ),
        )
        h.add(
            rid,
            "2024-02-01",
            InspectorateDecisionRecorded(
                recommendation_id=rid, decision="kept_open", rationale="not yet"
            ),
        )
    return h


async def test_forged_and_altered_events_are_named_and_refused(settings: Settings) -> None:
    run = uuid.uuid4().hex[:6]
    own = dataclasses.replace(settings, topic_prefix=f"tamper-{run}.", db_schema=f"tamper_{run}")
    await ensure_topics(own)
    h = genuine()
    forged = {
        **orjson.loads(h.messages()[-1].value),
        "event_id": str(uuid.uuid4()),
        "stream_version": 3,
        "prev_hash": h.envelopes[-1].hash,
        "hash": "0" * 64,
        "data": {
            "recommendation_id": "tamper/r2",
            "decision": "closed",
            "rationale": "forged closure",
            "source": None,
        },
    }
    altered = orjson.loads(h.messages()[2].value)  # r1's kept_open decision...
    altered["data"]["rationale"] = "closed after all"  # ...rewritten, keeping its hash
    producer = durable_producer(own)
    await producer.start()
    try:
        for key, partition, value in h.records(own.partitions):
            await producer.send_and_wait(own.topics.events, value, key=key, partition=partition)
        await producer.send_and_wait(own.topics.events, orjson.dumps(forged), key=b"tamper")
        await producer.send_and_wait(own.topics.events, orjson.dumps(altered), key=b"tamper")
    finally:
        await producer.stop()

    chain = await verify_chain(own)
    assert chain.events == len(h.envelopes) + 2
    found = {(b.offset, b.stream_id): b.reason for b in chain.breaks}
    forged_at, altered_at = len(h.envelopes), len(h.envelopes) + 1
    assert set(found) == {(forged_at, "tamper/r2"), (altered_at, "tamper/r1")}
    assert "hash does not match" in found[(forged_at, "tamper/r2")]
    assert "stream_version 2, expected 3" in found[(altered_at, "tamper/r1")]
    assert all(b.topic == own.topics.events for b in chain.breaks)
    assert not (await verify_chain(own, from_offset=altered_at + 1)).breaks

    pool = await create_pool(own)
    try:
        await migrate(pool)
        records = await read_messages(own, own.topics.events)
        async with pool.acquire() as conn:
            result = await project_messages(conn, own.topics.events, records)
            refused = await conn.fetch('SELECT "offset", reason FROM projection_errors')
            decision = await conn.fetchval(
                "SELECT last_decision FROM recommendations WHERE recommendation_id = 'tamper/r2'"
            )
        assert (result.applied, result.failed) == (len(h.envelopes), 2)
        assert {r["offset"] for r in refused} == {forged_at, altered_at}
        assert all("chain broken" in r["reason"] for r in refused)
        assert decision == "kept_open"  # the forged closure never reached the read model

        assert all(a == b for a, b in (await verify_read_models(own, RECOMMENDATIONS)).values())
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE recommendations SET text = 'edited' WHERE recommendation_id = 'tamper/r1'"
            )
        tables = await verify_read_models(own, RECOMMENDATIONS)
    finally:
        await pool.close()
    assert [t for t, (live, rebuilt) in tables.items() if live != rebuilt] == ["recommendations"]
