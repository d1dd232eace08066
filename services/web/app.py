"""The HTTP application: resources opened in the lifespan, the routers, "not now" as 503.

Every response carries the security headers (services/web/headers.py), every body is bounded
before it is read (limits.py), every path and query parameter follows the same rules
(params.py), and writes are rate-limited per token (ratelimit.py, in auth.require_writer).
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra.database import create_pool, migrate
from infra.documents.postgres import PostgresDocumentStore
from infra.health_server import HealthServer
from infra.kafka_clients import admin_client, groupless_consumer
from infra.settings import Settings
from infra.tracing import TRACING
from services.decider.gateway import CommandGateway
from services.domain.commands import MAX_COMMAND_BYTES
from services.web import dashboard, errors, forms
from services.web.access import RequestObserver
from services.web.evidence import evidence_body_limit
from services.web.headers import (
    SecurityHeaders,
    content_security_policy,
    security_headers,
    style_hashes,
)
from services.web.limits import BodyLimit
from services.web.metrics import api_metrics
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
# The sign-in form holds one token of about 50 characters and its CSRF token.
LOGIN_BODY_BYTES = 4096
# The browser's assets (services/web/assets/build.mjs, run by `make assets`).
STATIC_DIR = Path(__file__).resolve().parent / "static"


async def unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After: the client may resend with the same command_id (a browser gets a
    page saying to try again)."""
    if errors.wants_html(request):
        return await errors.error_page(
            request,
            503,
            "Nothing was changed. Try again in a moment.",
            headers={"Retry-After": "2"},
        )
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
        # RECTRACK_METRICS_PORT: the same metrics with no token, on an address of their own.
        metrics_port = HealthServer(
            "api",
            {},
            metrics=lambda: api_metrics(app),
        )
        await metrics_port.start(settings.metrics_host, settings.metrics_port)
        try:
            yield
        finally:
            await metrics_port.stop()
            await app.state.admin.close()
            await app.state.offsets.stop()
            await app.state.gateway.stop()
            await app.state.pool.close()

    # FastAPI's own Swagger UI and ReDoc load script from a third-party site: off. The API page
    # (/api-docs) serves Swagger UI from this app's static files instead.
    app = FastAPI(
        title="rectrack",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(checked_parameters)],
        # FastAPI's own OpenTelemetry: a server span per request (continuing a caller's
        # traceparent) and spans for its dependencies, endpoint and serialisation, with our
        # provider when tracing is on (infra/tracing.py) and nothing at all when it is off.
        # Metrics stay Prometheus's and logs structlog's; exporters are set up by us alone.
        telemetry={
            "tracing": TRACING.on,
            "tracer_provider": TRACING.provider,
            "metrics": False,
            "logs": False,
            "auto_configure": False,
        },
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
    app.add_exception_handler(StarletteHTTPException, errors.http_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    if not (STATIC_DIR / "rectrack.css").is_file():
        log.warning("web_assets_missing", folder=str(STATIC_DIR), fix="run `make assets`")
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    # Forms first: their addresses extend the recommendation page's, which takes any path.
    app.include_router(forms.router)
    app.include_router(dashboard.router)
    app.include_router(paper_routes.router)  # its lifespan owns the paper workers
    # documents before reads: its POST shares the /recommendations/{id:path} prefix.
    for routes in (operations, commands, documents, reads, events):
        app.include_router(routes.router)
    # The last added is the outermost: the headers also go on BodyLimit's own 413.
    evidence_bytes = evidence_body_limit(settings.max_document_bytes)
    app.add_middleware(
        BodyLimit,
        limits={"/login": LOGIN_BODY_BYTES, "/logout": LOGIN_BODY_BYTES},
        default=MAX_COMMAND_BYTES,
        patterns=[
            (r"/ui/recommendations/.+/evidence", evidence_bytes),
            (documents.EVIDENCE_PATHS, evidence_bytes),
        ],
        page=lambda limit: (
            dashboard.templates()
            .get_template("error.html.j2")
            .render(
                session=None,
                status=413,
                heading=errors.TITLES[413],
                lines=[
                    "Nothing was sent: the form with its files is larger than "
                    f"{limit // 2**20} MB.",
                    f"Each file may be up to {settings.max_document_bytes // 2**20} MB: go back "
                    "and choose "
                    "smaller or fewer files.",
                ],
            )
        ),
    )
    app.add_middleware(SecurityHeaders, headers=headers)
    # Outermost: every answer is counted and logged, BodyLimit's 413 too.
    app.add_middleware(RequestObserver)
    return app
