"""For operators: health, Prometheus metrics, and the projection's status."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from infra.settings import Settings
from projections.lag import Lag, measure, prometheus_text
from projections.recommendations.projection import RECOMMENDATIONS
from services.web.auth import ReaderActor

router = APIRouter(tags=["operations"])


async def _lag(request: Request) -> Lag:
    settings: Settings = request.app.state.settings
    async with request.app.state.pool.acquire() as conn:
        return await measure(request.app.state.offsets, conn, settings.topics, RECOMMENDATIONS)


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    """200 when the database answers."""
    async with request.app.state.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> str:
    """Projection lag, errors and dead letters as Prometheus text."""
    return prometheus_text(await _lag(request))


@router.get("/status")
async def get_status(request: Request, _: ReaderActor) -> dict[str, Any]:
    """Where the log is, and how far the projection is behind it."""
    lag = await _lag(request)
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
    }
