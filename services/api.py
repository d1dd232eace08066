"""HTTP entry point: requests become commands and queries; outcomes become status codes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import orjson
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from events.outcome import Outcome
from infra.database import create_pool, migrate
from infra.kafka_clients import reader as offsets_reader
from infra.settings import Settings
from projections.recommendations import queries
from projections.recommendations.handover import HandoverPack, build_handover
from projections.recommendations.history import HistoryEntry
from projections.recommendations.report import Report
from services.auth import Reader, Writer
from services.commands import MAX_COMMAND_BYTES, InvalidCommand, parse_command
from services.contract import asyncapi_document
from services.dashboard import router as dashboard_router
from services.feed import BadCursor, Cursor, Feed
from services.gateway import CommandGateway
from services.lag import measure, prometheus_text

DEFAULT_WAIT_SECONDS = 5.0


def _cursor(text: str | None) -> Cursor:
    try:
        return Cursor.parse(text)
    except BadCursor as exc:
        raise HTTPException(422, [{"field": "after", "reason": str(exc)}]) from exc


def _outcome_response(outcome: Outcome) -> JSONResponse:
    body = outcome.model_dump(mode="json")
    if outcome.status == "accepted":
        return JSONResponse(body, status_code=201)
    return JSONResponse(body, status_code=403 if outcome.reason == "forbidden" else 409)


def create_app(settings: Settings) -> FastAPI:
    """The API for one instance; resources open in the lifespan, never at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings)
        await migrate(app.state.pool)
        app.state.gateway = CommandGateway(settings)
        await app.state.gateway.start()
        app.state.offsets = offsets_reader(settings)
        await app.state.offsets.start()
        try:
            yield
        finally:
            await app.state.offsets.stop()
            await app.state.gateway.stop()
            await app.state.pool.close()

    app = FastAPI(title="rectrack", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(KafkaError)
    @app.exception_handler(OSError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.CannotConnectNowError)
    @app.exception_handler(asyncpg.exceptions.OperatorInterventionError)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Nothing was acknowledged: the client may retry with the same command_id.
        return JSONResponse(
            {"detail": f"temporarily unavailable: {type(exc).__name__}", "retry": True},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    app.state.settings = settings
    app.include_router(dashboard_router)

    @app.get("/health")
    async def health(request: Request) -> dict[str, str]:
        async with request.app.state.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}

    @app.post("/commands", status_code=201)
    async def post_command(
        request: Request,
        actor: Writer,
        wait: float = Query(DEFAULT_WAIT_SECONDS, ge=0, le=30),
    ) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_COMMAND_BYTES:
            raise HTTPException(413, f"command larger than {MAX_COMMAND_BYTES} bytes")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(422, [{"field": "(body)", "reason": f"not JSON: {exc}"}]) from exc
        given = [f for f in ("actor", "loaded_by") if isinstance(doc, dict) and f in doc]
        if given:
            reason = "over HTTP the actor comes from the bearer token; leave it out"
            raise HTTPException(422, [{"field": f, "reason": reason} for f in given])
        try:
            command = parse_command({**doc, "actor": actor} if isinstance(doc, dict) else doc)
        except InvalidCommand as exc:
            raise HTTPException(422, exc.errors) from exc
        gateway: CommandGateway = request.app.state.gateway
        outcomes = await gateway.submit([command], timeout=wait)
        outcome = outcomes.get(command.command_id)
        if outcome is None:
            return JSONResponse(
                {
                    "command_id": str(command.command_id),
                    "status": "pending",
                    "status_url": f"/commands/{command.command_id}",
                },
                status_code=202,
            )
        return _outcome_response(outcome)

    @app.get("/commands/{command_id}")
    async def get_command(request: Request, command_id: UUID, _: Reader) -> dict[str, Any]:
        outcome = request.app.state.gateway.outcomes.get(command_id)
        if outcome is None:
            raise HTTPException(404, f"no outcome known for command {command_id}")
        result: dict[str, Any] = outcome.model_dump(mode="json")
        return result

    @app.get("/report", response_model=Report)
    async def get_report(
        request: Request,
        _: Reader,
        as_of: date,
        since: date | None = None,
        known_at: datetime | None = None,
        inspection: str | None = None,
    ) -> Response:
        async with request.app.state.pool.acquire() as conn:
            text = await queries.report_json(
                conn, as_of=as_of, since=since, known_at=known_at, inspection_id=inspection
            )
        # PostgreSQL wrote the JSON: re-validating 100k lines here would cost seconds.
        return Response(text, media_type="application/json")

    @app.get("/events")
    async def get_events(
        request: Request,
        _: Reader,
        after: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> Response:
        """A page of the log after a cursor, as NDJSON; the next cursor is in Rectrack-Cursor."""
        cursor = _cursor(after)
        consumer = offsets_reader(settings)
        await consumer.start()
        try:
            items, next_cursor = await Feed(consumer, settings.topics.events).page(cursor, limit)
        finally:
            await consumer.stop()
        body = b"".join(orjson.dumps(item) + b"\n" for item in items)
        return Response(
            body, media_type="application/x-ndjson", headers={"Rectrack-Cursor": str(next_cursor)}
        )

    @app.get("/events/stream")
    async def stream_events(
        request: Request,
        _: Reader,
        after: str | None = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-sent events; reconnect with Last-Event-ID to resume exactly where you were."""
        cursor = _cursor(last_event_id or after)

        async def events() -> AsyncIterator[str]:
            consumer = offsets_reader(settings)
            await consumer.start()
            try:
                async for chunk in Feed(consumer, settings.topics.events).stream(cursor):
                    yield chunk
            finally:
                await consumer.stop()

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/asyncapi.json")
    async def asyncapi() -> dict[str, Any]:
        """The subscribers' contract: AsyncAPI 3 with a JSON Schema per event type."""
        return asyncapi_document(settings.topics, settings.bootstrap_servers)

    @app.get("/inspections")
    async def list_inspections(request: Request, _: Reader) -> list[dict[str, Any]]:
        """Every inspection with its current counts."""
        async with request.app.state.pool.acquire() as conn:
            return await queries.inspections(conn)

    @app.get("/inspections/{inspection_id}")
    async def get_inspection(request: Request, inspection_id: str, _: Reader) -> dict[str, Any]:
        """One inspection and the current state of its recommendations."""
        async with request.app.state.pool.acquire() as conn:
            found = await queries.inspection(conn, inspection_id)
        if found is None:
            raise HTTPException(404, f"no inspection {inspection_id}")
        return found

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> str:
        async with request.app.state.pool.acquire() as conn:
            lag = await measure(request.app.state.offsets, conn, settings.topics)
        return prometheus_text(lag)

    @app.get("/status")
    async def get_status(request: Request, _: Reader) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn:
            lag = await measure(request.app.state.offsets, conn, settings.topics)
        return {
            "bootstrap_servers": settings.bootstrap_servers,
            "projections": [
                {
                    "projection": lag.projection,
                    "log_end": lag.log_total,
                    "lag": lag.behind,
                    "last_event_at": lag.last_event_at,
                    "errors": lag.errors,
                }
            ],
            "dead_letters": lag.dead_letters,
        }

    @app.get("/recommendations/{recommendation_id:path}/handover")
    async def get_handover(
        request: Request, recommendation_id: str, _: Reader, as_of: date | None = None
    ) -> HandoverPack:
        async with request.app.state.pool.acquire() as conn:
            pack = await queries.handover(conn, recommendation_id, as_of=as_of or date.today())
        if pack is None:
            raise HTTPException(404, f"no recommendation {recommendation_id}")
        return pack

    @app.get("/recommendations/{recommendation_id:path}/history")
    async def get_history(
        request: Request, recommendation_id: str, _: Reader
    ) -> list[HistoryEntry]:
        async with request.app.state.pool.acquire() as conn:
            entries = await queries.history(conn, recommendation_id)
        if not entries:
            raise HTTPException(404, f"no recommendation {recommendation_id}")
        return entries

    # After the routes above: a path parameter would swallow their suffixes.
    @app.get("/recommendations/{recommendation_id:path}")
    async def get_recommendation(
        request: Request, recommendation_id: str, _: Reader, as_of: date | None = None
    ) -> dict[str, Any]:
        """One recommendation: its history and its handover pack."""
        async with request.app.state.pool.acquire() as conn:
            entries = await queries.history(conn, recommendation_id)
        if not entries:
            raise HTTPException(404, f"no recommendation {recommendation_id}")
        pack = build_handover(recommendation_id, entries, as_of=as_of or date.today())
        return {
            "recommendation_id": recommendation_id,
            "handover": pack.model_dump(mode="json"),
            "history": [e.model_dump(mode="json") for e in entries],
        }

    return app
