"""For operators: health (liveness, readiness), Prometheus metrics, and the projection's
status."""

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from infra.health_server import Check, readiness, token_allows
from infra.kafka_topics import TopicsReport, report
from infra.settings import Settings
from projections.lag import Lag, measure
from projections.recommendations.projection import RECOMMENDATIONS
from services.web.auth import Credentials, ReaderActor, require_reader
from services.web.metrics import api_metrics

router = APIRouter(tags=["operations"])


async def _lag(request: Request) -> Lag:
    settings: Settings = request.app.state.settings
    async with request.app.state.pool.acquire() as conn:
        return await measure(request.app.state.offsets, conn, settings.topics, RECOMMENDATIONS)


async def _topics(request: Request) -> TopicsReport:
    return await report(request.app.state.admin, request.app.state.settings)


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    """200 when the database answers."""
    async with request.app.state.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return {"status": "ok"}


@router.get("/health/live")
async def live() -> dict[str, str]:
    """200 while the process answers: restart it only when this fails."""
    return {"component": "api", "status": "live"}


def api_checks(request: Request) -> Mapping[str, Check]:
    """What the API needs to serve: PostgreSQL, and brokers that list the events and outcomes
    topics (the API holds no partitions: it reads offsets and follows outcomes group-less)."""
    settings: Settings = request.app.state.settings

    async def postgres() -> None:
        async with request.app.state.pool.acquire(timeout=3) as conn:
            await conn.fetchval("SELECT 1")

    async def kafka() -> str:
        topics = await request.app.state.offsets.topics()
        missing = {settings.topics.events, settings.topics.outcomes} - set(topics)
        if missing:
            raise RuntimeError(f"topics missing: {', '.join(sorted(missing))}")
        return "events and outcomes topics present"

    return {"postgres": postgres, "kafka": kafka}


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """200 when PostgreSQL and Kafka answer, else 503 naming what fails."""
    is_ready, checks = await readiness(api_checks(request))
    body = {"component": "api", "status": "ready" if is_ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if is_ready else 503)


async def require_metrics_reader(request: Request, credentials: Credentials) -> None:
    """The metrics token (RECTRACK_METRICS_TOKEN) when one is set, or any reader's token."""
    token: str | None = request.app.state.settings.metrics_token
    if (
        token is not None
        and credentials is not None
        and token_allows(token, f"Bearer {credentials.credentials}")
    ):
        return
    await require_reader(request, credentials)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(
    request: Request, _: Annotated[None, Depends(require_metrics_reader)]
) -> Response:
    """Prometheus text: requests and their latency, the projection's lag and errors, dead
    letters, each topic's replication, and the process's own metrics."""
    return Response(await api_metrics(request.app), media_type=CONTENT_TYPE_LATEST)


@router.get("/status")
async def get_status(request: Request, _: ReaderActor) -> dict[str, Any]:
    """Where the log is, how far the projection is behind it, and how the topics are
    replicated."""
    lag = await _lag(request)
    topics = await _topics(request)
    return {
        "bootstrap_servers": request.app.state.settings.bootstrap_servers,
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
        "replication": topics.policy_json(),
        "topics": topics.topics,
    }
