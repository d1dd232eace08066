"""The HTTP application: resources opened in the lifespan, the routers, "not now" as 503."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from infra.database import create_pool, migrate
from infra.kafka_clients import groupless_consumer
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from services.web import dashboard
from services.web.routes import commands, events, operations, reads

# Connection errors of Kafka and PostgreSQL: nothing was acknowledged, the client may retry.
UNAVAILABLE = (
    KafkaError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
)


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After: the client may resend with the same command_id."""
    return JSONResponse(
        {"detail": f"temporarily unavailable: {type(exc).__name__}", "retry": True},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def create_app(settings: Settings) -> FastAPI:
    """The API for one instance; resources open in the lifespan, never at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings)
        await migrate(app.state.pool)
        app.state.gateway = CommandGateway(settings)
        await app.state.gateway.start()
        app.state.offsets = groupless_consumer(settings)
        await app.state.offsets.start()
        try:
            yield
        finally:
            await app.state.offsets.stop()
            await app.state.gateway.stop()
            await app.state.pool.close()

    app = FastAPI(title="rectrack", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    for error in UNAVAILABLE:
        app.add_exception_handler(error, unavailable)
    app.include_router(dashboard.router)
    for routes in (operations, commands, reads, events):
        app.include_router(routes.router)
    return app
