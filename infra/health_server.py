"""A component's small HTTP server: Prometheus metrics, liveness and readiness.

The decider and the projector serve it on their own port (RECTRACK_DECIDER_METRICS_PORT,
RECTRACK_PROJECTOR_METRICS_PORT); the API serves its metrics on it too when
RECTRACK_METRICS_PORT is set. Liveness is the event loop answering; readiness is what the
component says it needs (Kafka, PostgreSQL, its partitions), each check bounded in time.
"""

import asyncio
import errno
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from infra.kafka_clients import groupless_consumer
from infra.settings import Settings

log = structlog.get_logger(__name__)

# How long one readiness check (one dependency) may take before it counts as down.
CHECK_SECONDS = 3.0

Check = Callable[[], Awaitable[Any]]


def process_metrics() -> bytes:
    """This process's metrics (the default registry: ours, process and platform collectors)."""
    return generate_latest(REGISTRY)


def token_allows(expected: str | None, authorization: str | None) -> bool:
    """Whether an Authorization header carries the metrics token (always, with none set)."""
    if expected is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), expected.encode())


async def readiness(checks: Mapping[str, Check]) -> tuple[bool, dict[str, Any]]:
    """Run every check (bounded); ready when none fails. A check returns a detail or raises."""
    results: dict[str, Any] = {}
    ready = True
    for name, check in checks.items():
        try:
            detail = await asyncio.wait_for(check(), CHECK_SECONDS)
            results[name] = {"ok": True, **({"detail": detail} if detail is not None else {})}
        except Exception as exc:  # any failure of a dependency: not ready, say why
            ready = False
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return ready, results


@dataclass
class HealthServer:
    """A component's metrics and health endpoints."""

    component: str
    checks: Mapping[str, Check]
    token: str | None = None
    metrics: Callable[[], Awaitable[bytes]] | None = None
    _runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        """The aiohttp application (tests may serve it themselves)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._live)
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._ready)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        if not token_allows(self.token, request.headers.get("Authorization")):
            return web.json_response(
                {"detail": "a valid metrics token is needed"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await self.metrics() if self.metrics is not None else process_metrics()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _live(self, _: web.Request) -> web.Response:
        return web.json_response({"component": self.component, "status": "live"})

    async def _ready(self, _: web.Request) -> web.Response:
        ready, checks = await readiness(self.checks)
        body = {
            "component": self.component,
            "status": "ready" if ready else "not ready",
            "checks": checks,
        }
        return web.json_response(body, status=200 if ready else 503)

    async def start(self, host: str, port: int) -> bool:
        """Listen on host:port; False (logged) when the port is 0 or already taken, so that a
        second process of the same component on this machine runs without one."""
        if port == 0:
            return False
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning("health_port_in_use", component=self.component, host=host, port=port)
            return False
        self._runner = runner
        log.info("health_server_started", component=self.component, host=host, port=port)
        return True

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


CONSUMER_LAG = Gauge(
    "rectrack_consumer_lag",
    "Messages of a partition this worker's consumer has not yet taken, after its last batch.",
    ["topic", "partition"],
)


def kafka_check(settings: Settings, topic: str) -> Check:
    """Ready when the brokers answer a metadata request that lists `topic`."""
    probe: AIOKafkaConsumer | None = None

    async def check() -> str:
        nonlocal probe
        if probe is None:
            consumer = groupless_consumer(settings)
            await consumer.start()
            probe = consumer
        topics = await probe.topics()
        if topic not in topics:
            raise RuntimeError(f"topic {topic} is missing")
        return f"{topic} present"

    return check


def postgres_check(pool: Callable[[], asyncpg.Pool | None]) -> Check:
    """Ready when the component's pool (once made) runs a query."""

    async def check() -> None:
        current = pool()
        if current is None:
            raise RuntimeError("no connection pool yet")
        async with current.acquire(timeout=CHECK_SECONDS) as conn:
            await conn.fetchval("SELECT 1")

    return check
