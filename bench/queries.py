"""Queries while ingest runs, and the peak memory of every process of the stack.

Over a history already decided and replayed by `bench.run`, starts the decider, projector and API
as processes on it, then times the queries users make through the API — the as-of report (all
inspections, and one inspection), and one recommendation's history — first at idle, then while
ReportProgress commands arrive at a steady rate. Both sides are measured in the same run.
"""

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from bench.processes import infrastructure_memory, peak_rss_mb, start_component
from bench.results import percentile
from infra.processes import free_port, port_open
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from services.domain.commands import (
    Command,
    IssueRecommendation,
    parse_command,
    parse_command_bytes,
)

COMPONENTS = ("decider", "projector", "api")
ADMIN = {"name": "Query bench", "team": "secretariat", "role": "admin"}


@dataclass
class Latencies:
    """Milliseconds per query name."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, ms: float) -> None:
        """Record one timing."""
        self.samples.setdefault(name, []).append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """p50, p99 and count of each query."""
        return {
            name: {
                "n": len(values),
                "p50_ms": round(statistics.median(values), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
            }
            for name, values in self.samples.items()
        }


@dataclass(frozen=True)
class History:
    """What the queries and the ingest load address in the generated history."""

    recommendations: list[str]
    inspections: list[str]
    last_day: date

    @classmethod
    def of(cls, lines: list[bytes]) -> "History":
        """Recommendation and inspection ids, and the last business date, of a command list."""
        recs, inspections = [], []
        for line in lines:
            command = parse_command_bytes(line)
            if isinstance(command.data, IssueRecommendation):
                recs.append(command.stream_id)
                inspections.append(command.data.inspection_id)
        last = parse_command_bytes(lines[-1]).effective_date
        return cls(recs, sorted(set(inspections)), last or date.today())


async def _query_loop(
    client: httpx.AsyncClient, history: History, seconds: float, rng: random.Random
) -> Latencies:
    """Run the three queries in turn for `seconds`, timing each from request to last byte."""
    as_of = history.last_day.isoformat()
    queries: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
        ("report_all", lambda: client.get("/report", params={"as_of": as_of})),
        (
            "report_one_inspection",
            lambda: client.get(
                "/report", params={"as_of": as_of, "inspection": rng.choice(history.inspections)}
            ),
        ),
        (
            "history",
            lambda: client.get(f"/recommendations/{rng.choice(history.recommendations)}/history"),
        ),
    ]
    latencies = Latencies()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name, query in queries:
            started = time.perf_counter()
            response = await query()
            response.raise_for_status()
            latencies.add(name, (time.perf_counter() - started) * 1000)
    return latencies


def _progress(recommendation_id: str, position: str) -> Command:
    return parse_command(
        {
            "type": "ReportProgress",
            "data": {
                "recommendation_id": recommendation_id,
                "position": position,
                "delivery_status": "on_track",
            },
            "actor": ADMIN,
        }
    )


async def _decider_ready(gateway: CommandGateway, history: History, since: float) -> float:
    """Seconds from `since` until a fresh decider answers a command: its catch-up of the log."""
    probe = _progress(history.recommendations[-1], "probe")
    outcomes = await gateway.submit([probe], timeout=3600)
    if probe.command_id not in outcomes:
        raise TimeoutError("the decider did not answer within an hour")
    return round(time.perf_counter() - since, 2)


async def _ingest(
    gateway: CommandGateway, history: History, rate: float, stop: asyncio.Event
) -> int:
    """Send ReportProgress commands at `rate` per second until stopped; how many were sent."""
    started, sent = time.perf_counter(), 0
    tasks: list[asyncio.Task[None]] = []
    while not stop.is_set():
        rid = history.recommendations[-1 - sent % min(len(history.recommendations), 500)]
        tasks.append(asyncio.create_task(gateway.send([_progress(rid, f"q{sent}")])))
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    return sent


async def _wait_for_api(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if port_open(port):
            return
        if process.returncode is not None:
            raise RuntimeError(f"the API exited with {process.returncode}")
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the API did not listen on port {port} within 60 s")


async def under_ingest(
    settings: Settings,
    lines: list[bytes],
    base_env: dict[str, str],
    *,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """Query p50/p99 at idle and under `rate` commands/s, and every process's peak memory.

    `settings` names the bench's topics and the schema its replay built.
    """
    port = free_port()
    env = {
        **base_env,
        "RECTRACK_TOPIC_PREFIX": settings.topic_prefix,
        "RECTRACK_DB_SCHEMA": settings.db_schema,
        "RECTRACK_HOME": str(settings.home),
        "RECTRACK_API_PORT": str(port),
        "RECTRACK_PUBLIC_READS": "1",
        "RECTRACK_LOG_LEVEL": "warning",
    }
    history = History.of(lines)
    gateway = CommandGateway(settings)
    await gateway.start()
    started = time.perf_counter()
    processes = {name: await start_component(env, name) for name in COMPONENTS}
    rng = random.Random(7)
    try:
        decider_ready = await _decider_ready(gateway, history, started)
        await _wait_for_api(port, processes["api"])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            idle = await _query_loop(client, history, seconds, rng)
            stop = asyncio.Event()
            ingest = asyncio.create_task(_ingest(gateway, history, rate, stop))
            started = time.perf_counter()
            loaded = await _query_loop(client, history, seconds, rng)
            stop.set()
            sent = await ingest
            ingest_seconds = time.perf_counter() - started
        memory = {name: peak_rss_mb(p.pid) for name, p in processes.items()}
    finally:
        await gateway.stop()
        for process in processes.values():
            process.terminate()
        await asyncio.gather(*(p.wait() for p in processes.values()))
    return {
        "decider_ready_seconds": decider_ready,
        "queries_seconds_each": seconds,
        "queries_idle": idle.summary(),
        "queries_under_ingest": loaded.summary(),
        "ingest_rate_asked_per_s": rate,
        "ingest_sent_per_s": round(sent / ingest_seconds, 1),
        "recommendations_in_history": len(history.recommendations),
        "peak_rss_mb": memory | infrastructure_memory(settings),
    }
