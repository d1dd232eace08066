"""For operators: health, Prometheus metrics, and the projection's status."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from infra.kafka_topics import TopicsReport, report
from infra.settings import Settings
from infra.topic_policy import prometheus_text as topics_prometheus_text
from projections.lag import Lag, measure, prometheus_text
from projections.recommendations.projection import RECOMMENDATIONS
from services.web.auth import ReaderActor

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


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> str:
    """Projection lag, errors and dead letters, and each topic's replication factor,
    min.insync.replicas and under-replicated partitions, as Prometheus text."""
    topics = await _topics(request)
    return prometheus_text(await _lag(request)) + topics_prometheus_text(topics.present)


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
