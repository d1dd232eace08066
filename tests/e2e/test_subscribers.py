"""Subscribers: the NDJSON feed, the resumable SSE stream and the AsyncAPI contract."""

from typing import Any

import asyncpg
import httpx
import jsonschema
import orjson
import pytest

from events.registry import parse_event
from infra.kafka_clients import read_topic
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from tests.builders import issue, publish
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.integration


async def log_event_ids(settings: Settings) -> list[str]:
    return [
        str(parse_event(r.value).event_id)
        for r in await read_topic(settings, settings.topics.events)
    ]


async def some_events(gateway: CommandGateway) -> None:
    insp = publish()
    await gateway.submit([insp, *(issue(insp.stream_id, n) for n in range(1, 6))], timeout=30)


async def test_pages_of_the_feed_cover_the_log_once_in_order(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    await some_events(gateway)
    expected = await log_event_ids(stack)
    seen: list[dict[str, Any]] = []
    cursor = ""
    async with httpx.AsyncClient(
        base_url=stack.api_url, timeout=30, headers=await bearer(pool, "viewer")
    ) as api:
        while True:
            page = await api.get("/events", params={"after": cursor, "limit": 4})
            assert page.status_code == 200
            lines = [orjson.loads(line) for line in page.content.splitlines() if line]
            cursor = page.headers["Rectrack-Cursor"]
            if not lines:
                break
            seen += lines
        bad = await api.get("/events", params={"after": "not-a-cursor"})
    ids = [e["event_id"] for e in seen]
    assert len(ids) == len(set(ids))
    assert set(expected) <= set(ids)
    per_stream: dict[str, list[int]] = {}
    for event in seen:
        per_stream.setdefault(event["stream_id"], []).append(event["stream_version"])
    assert all(v == sorted(v) for v in per_stream.values())
    assert bad.status_code == 422


async def read_sse(response: httpx.Response, count: int) -> list[tuple[str, dict[str, Any]]]:
    """Read `count` events (id, data) from an SSE response."""
    frames: list[tuple[str, dict[str, Any]]] = []
    event_id, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            frames.append((event_id, orjson.loads(data)))
            data = ""
            if len(frames) == count:
                break
    return frames


async def test_a_subscriber_that_drops_and_reconnects_misses_nothing_and_sees_nothing_twice(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    await some_events(gateway)
    expected = await log_event_ids(stack)
    half = len(expected) // 2
    headers = await bearer(pool, "viewer")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, headers=headers) as api:
        async with api.stream("GET", "/events/stream") as first:
            assert first.headers["content-type"].startswith("text/event-stream")
            before = await read_sse(first, half)
        last_id = before[-1][0]
        async with api.stream(
            "GET", "/events/stream", headers={"Last-Event-ID": last_id}
        ) as second:
            after = await read_sse(second, len(expected) - half)
    ids = [data["event_id"] for _, data in before + after]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert sorted(ids) == sorted(expected), "an event was missed"


async def test_the_asyncapi_document_describes_every_event_in_the_log(
    stack: Settings, gateway: CommandGateway
) -> None:
    await some_events(gateway)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        document = (await api.get("/asyncapi.json")).json()
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["events"]["address"] == stack.topics.events
    messages = document["components"]["messages"]
    for record in await read_topic(stack, stack.topics.events):
        event = orjson.loads(record.value)
        jsonschema.validate(event, messages[event["type"]]["payload"])
    assert "Outcome" in messages
