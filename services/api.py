"""HTTP entry point: requests become commands and queries; outcomes become status codes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from events.outcome import Outcome
from infra.database import create_pool, migrate
from infra.settings import Settings
from projections.recommendations import queries
from projections.recommendations.report import Report
from services.commands import MAX_COMMAND_BYTES, InvalidCommand, parse_command
from services.gateway import CommandGateway

DEFAULT_WAIT_SECONDS = 5.0


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
        try:
            yield
        finally:
            await app.state.gateway.stop()
            await app.state.pool.close()

    app = FastAPI(title="rectrack", version="0.1.0", lifespan=lifespan)

    @app.get("/health")
    async def health(request: Request) -> dict[str, str]:
        async with request.app.state.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}

    @app.post("/commands", status_code=201)
    async def post_command(
        request: Request, wait: float = Query(DEFAULT_WAIT_SECONDS, ge=0, le=30)
    ) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_COMMAND_BYTES:
            raise HTTPException(413, f"command larger than {MAX_COMMAND_BYTES} bytes")
        try:
            command = parse_command(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise HTTPException(422, [{"field": "(body)", "reason": f"not JSON: {exc}"}]) from exc
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
    async def get_command(request: Request, command_id: UUID) -> dict[str, Any]:
        outcome = request.app.state.gateway.outcomes.get(command_id)
        if outcome is None:
            raise HTTPException(404, f"no outcome known for command {command_id}")
        result: dict[str, Any] = outcome.model_dump(mode="json")
        return result

    @app.get("/report")
    async def get_report(
        request: Request,
        as_of: date,
        since: date | None = None,
        known_at: datetime | None = None,
        inspection: str | None = None,
    ) -> Report:
        async with request.app.state.pool.acquire() as conn:
            return await queries.report(
                conn, as_of=as_of, since=since, known_at=known_at, inspection_id=inspection
            )

    return app
