"""Freshness: time from a command's accepted outcome to its row in the read model.

    python -m bench.freshness [--rate 500] [--seconds 20]

Runs its own decider and projector processes on topics and a schema of its own, sends
ReportProgress commands at a steady rate, and measures p50/p99 at idle (5/s) and at the rate.
"""

import asyncio
import dataclasses
import os
import statistics
import time
import uuid
from typing import Any

from bench.processes import start_component
from bench.results import percentile
from infra.database import create_pool, migrate
from infra.kafka_clients import ensure_topics
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from services.domain.commands import Command, parse_command

ADMIN = {"name": "Freshness bench", "team": "secretariat", "role": "admin"}
INSPECTOR = {"name": "Freshness bench", "team": "hmics", "role": "inspector"}


def _command(type_: str, data: dict[str, Any], actor: dict[str, str]) -> Command:
    return parse_command({"type": type_, "data": data, "actor": actor})


async def _measure(
    gateway: CommandGateway, pool: Any, recs: list[str], rate: float, seconds: float
) -> dict[str, float]:
    accepted_at: dict[uuid.UUID, float] = {}
    projected_at: dict[uuid.UUID, float] = {}
    sent: list[Command] = []

    waiting: set[uuid.UUID] = set()

    async def watch_outcomes() -> None:
        while True:
            now = time.perf_counter()
            arrived = gateway.outcomes.known(waiting)
            for cid in arrived:
                accepted_at[cid] = now
            waiting.difference_update(arrived)
            await asyncio.sleep(0.002)

    async def watch_rows() -> None:
        async with pool.acquire() as conn:
            while True:
                pending = [cid for cid in accepted_at if cid not in projected_at]
                if pending:
                    rows = await conn.fetch(
                        "SELECT command_id FROM event_log WHERE command_id = ANY($1::uuid[])",
                        pending,
                    )
                    now = time.perf_counter()
                    for r in rows:
                        projected_at[r["command_id"]] = now
                await asyncio.sleep(0.005)

    watchers = [asyncio.create_task(watch_outcomes()), asyncio.create_task(watch_rows())]
    started, n = time.perf_counter(), 0
    sends: list[asyncio.Task[None]] = []
    while time.perf_counter() - started < seconds:
        n += 1
        cmd = _command(
            "ReportProgress",
            {
                "recommendation_id": recs[n % len(recs)],
                "position": f"p{n}",
                "delivery_status": "on_track",
            },
            ADMIN,
        )
        sent.append(cmd)
        waiting.add(cmd.command_id)
        sends.append(asyncio.create_task(gateway.send([cmd])))
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
    await asyncio.gather(*sends)
    deadline = time.perf_counter() + 60
    while len(projected_at) < len(sent) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # polling is the measurement here
    for w in watchers:
        w.cancel()
    lags = [
        max(0.0, projected_at[c] - accepted_at[c]) * 1000 for c in accepted_at if c in projected_at
    ]
    return {
        "commands": len(sent),
        "measured": len(lags),
        "p50_ms": round(statistics.median(lags), 1),
        "p99_ms": round(percentile(lags, 0.99), 1),
    }


async def run(rate: float, seconds: float) -> dict[str, Any]:
    """Freshness at idle and at `rate` commands per second."""
    base = Settings.from_env()
    settings = dataclasses.replace(
        base,
        topic_prefix=f"fresh-{uuid.uuid4().hex[:6]}.",
        db_schema=f"fresh_{uuid.uuid4().hex[:6]}",
    )
    env = {
        **os.environ,
        "RECTRACK_TOPIC_PREFIX": settings.topic_prefix,
        "RECTRACK_DB_SCHEMA": settings.db_schema,
        "RECTRACK_LOG_LEVEL": "warning",
    }
    await ensure_topics(settings)
    pool = await create_pool(settings)
    await migrate(pool)
    processes = [await start_component(env, "decider"), await start_component(env, "projector")]
    gateway = CommandGateway(settings)
    await gateway.start()
    try:
        insp_id = f"fresh-{uuid.uuid4().hex[:6]}"
        insp = _command(
            "PublishInspection",
            {
                "inspection_id": insp_id,
                "title": "Freshness",
                "inspectorate": "HMICS",
                "published_on": "2024-01-10",
            },
            INSPECTOR,
        )
        recs = [
            _command(
                "IssueRecommendation",
                {"inspection_id": insp_id, "number": n, "text": "t"},
                INSPECTOR,
            )
            for n in range(1, 21)
        ]
        owners = [
            _command(
                "AssignOwner",
                {"recommendation_id": r.stream_id, "team": "t", "owner_role": "lead"},
                ADMIN,
            )
            for r in recs
        ]
        await gateway.submit([insp, *recs, *owners], timeout=120)
        ids = [r.stream_id for r in recs]
        idle = await _measure(gateway, pool, ids, 5, min(seconds, 10))
        loaded = await _measure(gateway, pool, ids, rate, seconds)
    finally:
        await gateway.stop()
        for p in processes:
            p.terminate()
            await p.wait()
        await pool.close()
    return {"idle_rate_per_s": 5, "idle": idle, "load_rate_per_s": rate, "load": loaded}
