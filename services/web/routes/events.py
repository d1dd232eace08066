"""For subscribers: the log as cursor pages and server-sent events, and its AsyncAPI contract."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from events.contract import asyncapi_document
from infra.kafka_clients import topic_partitions
from infra.settings import Settings
from services.web.auth import ReaderActor
from services.web.feed import PAGE_SECONDS, BadCursor, Cursor, Feed, feed_consumer

router = APIRouter(tags=["events"])

# Each feed request has a broker connection of its own; at most this many at once per process.
MAX_FEED_READERS = 32
# Beyond the page's own deadline: connecting and asking for the log's end, when the broker is slow.
PAGE_GRACE_SECONDS = 10.0


def _bad_cursor(field: str, exc: BadCursor) -> HTTPException:
    return HTTPException(422, [{"field": field, "reason": str(exc)}])


async def _cursor(request: Request, text: str | None, field: str) -> Cursor:
    """A cursor within bounds and naming only partitions the events topic has; else 422."""
    try:
        cursor = Cursor.parse(text)
        if cursor.offsets:
            settings: Settings = request.app.state.settings
            # The app's shared consumer answers from metadata: no connection of the request's own.
            partitions = await topic_partitions(request.app.state.offsets, settings.topics.events)
            cursor.check_partitions(partitions)
    except BadCursor as exc:
        raise _bad_cursor(field, exc) from exc
    return cursor


def _readers(request: Request) -> asyncio.Semaphore:
    readers: asyncio.Semaphore = request.app.state.feed_readers
    if readers.locked():
        raise HTTPException(
            503, "too many feed readers at once; retry", headers={"Retry-After": "2"}
        )
    return readers


@router.get(
    "/events",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "A page of events."}},
)
async def get_events(
    request: Request,
    _: ReaderActor,
    after: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """A page of the log after a cursor, as NDJSON; the next cursor is in Rectrack-Cursor.

    A page holds what the log held when it began, up to `limit` events, and ends after a few
    seconds whatever it holds; an empty page means nothing more yet.
    """
    settings: Settings = request.app.state.settings
    cursor = await _cursor(request, after, "after")
    readers = _readers(request)
    try:
        async with (
            readers,
            asyncio.timeout(PAGE_SECONDS + PAGE_GRACE_SECONDS),
            feed_consumer(settings) as consumer,
        ):
            items, next_cursor = await Feed(consumer, settings.topics.events).page(cursor, limit)
    except BadCursor as exc:  # the topic changed between the check and the page
        raise _bad_cursor("after", exc) from exc
    except TimeoutError as exc:
        raise HTTPException(
            503, "the log did not answer in time; retry", headers={"Retry-After": "2"}
        ) from exc
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
    cursor = await _cursor(
        request, last_event_id or after, "Last-Event-ID" if last_event_id else "after"
    )
    readers = _readers(request)

    async def events() -> AsyncIterator[str]:
        # Ends when the client leaves (the response cancels it) or when the server stops (after
        # its graceful-shutdown timeout); the consumer is closed either way.
        async with readers, feed_consumer(settings) as consumer:
            async for chunk in Feed(consumer, settings.topics.events).stream(cursor):
                yield chunk

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/asyncapi.json")
async def asyncapi(request: Request) -> dict[str, Any]:
    """The subscribers' contract: AsyncAPI 3 with a JSON Schema per event type."""
    settings: Settings = request.app.state.settings
    return asyncapi_document(settings.topics, settings.bootstrap_servers)
