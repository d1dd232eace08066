"""For subscribers: the log as cursor pages and server-sent events, and its AsyncAPI contract."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from events.contract import asyncapi_document
from infra.kafka_clients import groupless_consumer
from infra.settings import Settings
from services.web.auth import ReaderActor
from services.web.feed import BadCursor, Cursor, Feed

router = APIRouter(tags=["events"])


def _cursor(text: str | None) -> Cursor:
    try:
        return Cursor.parse(text)
    except BadCursor as exc:
        raise HTTPException(422, [{"field": "after", "reason": str(exc)}]) from exc


@router.get("/events")
async def get_events(
    request: Request,
    _: ReaderActor,
    after: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """A page of the log after a cursor, as NDJSON; the next cursor is in Rectrack-Cursor."""
    settings: Settings = request.app.state.settings
    cursor = _cursor(after)
    consumer = groupless_consumer(settings)
    await consumer.start()
    try:
        items, next_cursor = await Feed(consumer, settings.topics.events).page(cursor, limit)
    finally:
        await consumer.stop()
    body = b"".join(orjson.dumps(item) + b"\n" for item in items)
    return Response(
        body, media_type="application/x-ndjson", headers={"Rectrack-Cursor": str(next_cursor)}
    )


@router.get("/events/stream")
async def stream_events(
    request: Request,
    _: ReaderActor,
    after: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events; reconnect with Last-Event-ID to resume exactly where you were."""
    settings: Settings = request.app.state.settings
    cursor = _cursor(last_event_id or after)

    async def events() -> AsyncIterator[str]:
        consumer = groupless_consumer(settings)
        await consumer.start()
        try:
            async for chunk in Feed(consumer, settings.topics.events).stream(cursor):
                yield chunk
        finally:
            await consumer.stop()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/asyncapi.json")
async def asyncapi(request: Request) -> dict[str, Any]:
    """The subscribers' contract: AsyncAPI 3 with a JSON Schema per event type."""
    settings: Settings = request.app.state.settings
    return asyncapi_document(settings.topics, settings.bootstrap_servers)
