"""The HTTP application: resources opened in the lifespan, the routers, "not now" as 503.

Every response carries the security headers (services/web/headers.py), every body is bounded
before it is read (limits.py), every path and query parameter follows the same rules
(params.py), and writes are rate-limited per token (ratelimit.py, in auth.require_writer).
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from infra.database import create_pool, migrate
from infra.documents.postgres import PostgresDocumentStore
from infra.kafka_clients import admin_client, groupless_consumer
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from services.domain.commands import MAX_COMMAND_BYTES
from services.web import dashboard
from services.web.access import AccessLog
from services.web.evidence import evidence_body_limit
from services.web.headers import (
    SecurityHeaders,
    content_security_policy,
    security_headers,
    style_hashes,
)
from services.web.limits import BodyLimit
from services.web.params import DATABASE_INPUT_ERRORS, checked_parameters, unusable_value
from services.web.ratelimit import TokenBuckets
from services.web.routes import commands, documents, events, operations, reads
from services.web.routes import paper as paper_routes

log = structlog.get_logger(__name__)

# Connection errors of Kafka and PostgreSQL: nothing was acknowledged, the client may retry.
UNAVAILABLE = (
    KafkaError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
)
# How long the server lets open requests (an SSE stream never ends by itself) finish after
# SIGTERM before cancelling them; `rectrack run` passes it to uvicorn.
GRACEFUL_SHUTDOWN_SECONDS = 5
# The login form holds one token of about 50 characters.
LOGIN_BODY_BYTES = 4096


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After: the client may resend with the same command_id."""
    return JSONResponse(
        {"detail": f"temporarily unavailable: {type(exc).__name__}", "retry": True},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def _internal_error(
    headers: list[tuple[str, str]],
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette sends this from outside every middleware, so the headers are set here.
        log.error("unhandled_error", path=request.url.path, error=repr(exc))
        return JSONResponse({"detail": "internal error"}, status_code=500, headers=dict(headers))

    return internal_error


def create_app(settings: Settings) -> FastAPI:
    """The API for one instance; resources open in the lifespan, never at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings)
        await migrate(app.state.pool)
        # Evidence documents (infra/documents/): PostgreSQL's, behind the DocumentStore Protocol.
        app.state.documents = PostgresDocumentStore(app.state.pool)
        app.state.gateway = CommandGateway(settings)
        await app.state.gateway.start()
        app.state.offsets = groupless_consumer(settings)
        await app.state.offsets.start()
        # Describes the topics' replication for /status and /metrics.
        app.state.admin = admin_client(settings)
        await app.state.admin.start()
        try:
            yield
        finally:
            await app.state.admin.close()
            await app.state.offsets.stop()
            await app.state.gateway.stop()
            await app.state.pool.close()

    # No Swagger UI or ReDoc: they load script from a third-party site, which the pages' policy
    # (no script at all) refuses; the contract stays at /openapi.json.
    app = FastAPI(
        title="rectrack",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(checked_parameters)],
    )
    app.state.settings = settings

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = commands.document_command_body(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.write_buckets = (
        TokenBuckets(settings.write_rate, settings.write_burst) if settings.write_rate > 0 else None
    )
    app.state.feed_readers = asyncio.Semaphore(events.MAX_FEED_READERS)
    headers = security_headers(content_security_policy(style_hashes(dashboard.templates())))
    for error in UNAVAILABLE:
        app.add_exception_handler(error, unavailable)
    for error in DATABASE_INPUT_ERRORS:
        app.add_exception_handler(error, unusable_value)
    app.add_exception_handler(Exception, _internal_error(headers))
    app.include_router(dashboard.router)
    app.include_router(paper_routes.router)  # its lifespan owns the paper workers
    # documents before reads: its POST shares the /recommendations/{id:path} prefix.
    for routes in (operations, commands, documents, reads, events):
        app.include_router(routes.router)
    # The last added is the outermost: the headers also go on BodyLimit's own 413. An evidence
    # upload may hold its documents at their largest (RECTRACK_MAX_DOCUMENT_BYTES).
    app.add_middleware(
        BodyLimit,
        limits={"/login": LOGIN_BODY_BYTES},
        default=MAX_COMMAND_BYTES,
        patterns=[(documents.EVIDENCE_PATHS, evidence_body_limit(settings.max_document_bytes))],
    )
    app.add_middleware(SecurityHeaders, headers=headers)
    app.add_middleware(AccessLog)  # outermost: it sees every response's final status
    return app
