"""Side-by-side figures in one run: decider vs raw produce/consume, replay vs raw read + COPY,
then queries at idle and while ingest runs over the replayed history, and peak memory.

    python -m bench.run --events 10000 [--seed 1] [--query-seconds 20] [--ingest-rate 200]
                        [--out bench/results/10000.json]

Needs a running broker and database (`rectrack up`); uses topics and a schema of its own and
starts its own decider, projector and API processes, so nothing of the instance's data is
touched.
"""

import asyncio
import dataclasses
import os
import resource
import time
import uuid
from typing import Any

from aiokafka import TopicPartition

from bench.generate import commands
from bench.processes import cpu_seconds, peak_rss_mb, start_component
from bench.queries import under_ingest
from infra.database import analyze, create_pool, migrate, quote_schema
from infra.decider_keys import trusted_decider_keys
from infra.kafka_clients import (
    durable_producer,
    ensure_topics,
    groupless_consumer,
    topic_partitions,
)
from infra.settings import Settings
from projections.recommendations.projection import RECOMMENDATIONS
from projections.replay import catch_up, end_offsets
from services.decider.gateway import CommandGateway
from services.domain.commands import parse_command_bytes


async def decide(
    settings: Settings, lines: list[bytes], base_env: dict[str, str]
) -> dict[str, float | None]:
    """Commands/s through a real decider process: from the first send to the last outcome."""
    env = {
        **base_env,
        "RECTRACK_TOPIC_PREFIX": settings.topic_prefix,
        "RECTRACK_HOME": str(settings.home),
        "RECTRACK_LOG_LEVEL": "warning",
    }
    decider = await start_component(env, "decider")
    gateway = CommandGateway(settings)
    await gateway.start()
    try:
        warm = parse_command_bytes(lines[0])
        await gateway.submit([warm], timeout=120)  # the decider is up and assigned
        # Parsed and signed before the clock starts: this measures the decider, and signing
        # is the gateway's cost (BENCHMARKS.md), as parsing is the client's.
        rest = gateway.sign([parse_command_bytes(line) for line in lines[1:]])
        # CPU as well as wall time: on a shared machine it varies far less between runs.
        own_before = cpu_seconds(decider.pid, children=False) or 0.0
        all_before = cpu_seconds(decider.pid) or 0.0
        started = time.perf_counter()
        await gateway.send(rest)
        outcomes = await gateway.wait_for([c.command_id for c in rest.commands], timeout=3600)
        seconds = time.perf_counter() - started
        own_cpu = (cpu_seconds(decider.pid, children=False) or 0.0) - own_before
        all_cpu = (cpu_seconds(decider.pid) or 0.0) - all_before
        decider_peak = peak_rss_mb(decider.pid)
    finally:
        await gateway.stop()
        decider.terminate()
        await asyncio.wait_for(decider.wait(), timeout=60)
    accepted = sum(o.status == "accepted" for o in outcomes.values())
    decided = len(rest.commands)
    return {
        "decider_peak_rss_mb": decider_peak,
        "decide_commands": decided,
        "decide_accepted": accepted,
        "decide_seconds": round(seconds, 2),
        "decide_per_s": round(decided / seconds, 1),
        "decide_cpu_us_per_command": round(own_cpu / decided * 1e6, 1),
        "decide_helper_cpu_us_per_command": round((all_cpu - own_cpu) / decided * 1e6, 1),
    }


async def raw_produce_consume(settings: Settings, lines: list[bytes]) -> dict[str, float]:
    """The limit for the decider: produce the same bytes (acks=all) and consume them back."""
    scratch = dataclasses.replace(settings, topic_prefix=settings.topic_prefix + "raw.")
    await ensure_topics(scratch)
    producer = durable_producer(scratch)
    consumer = groupless_consumer(scratch)
    await producer.start()
    await consumer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(scratch.topics.commands, line, key=str(i % 97).encode())
            for i, line in enumerate(lines)
        ]
        await asyncio.gather(*futures)
        topic = scratch.topics.commands
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        while got < len(lines):
            got += sum(len(r) for r in (await consumer.getmany(timeout_ms=1000)).values())
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()
    return {"raw_produce_consume_per_s": round(len(lines) / seconds, 1)}


async def replay(settings: Settings) -> dict[str, float]:
    """Events/s to rebuild the read models from offset 0 into `settings.db_schema` (fresh)."""
    fresh = settings
    pool = await create_pool(fresh, max_size=1)
    consumer = groupless_consumer(settings)
    await consumer.start()
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            ends = await end_offsets(consumer, settings.topics.events)
            started = time.perf_counter()
            events = await catch_up(
                consumer,
                conn,
                RECOMMENDATIONS,
                settings.topics.events,
                ends,
                trusted_decider_keys(settings),  # as `rectrack replay` does: seals verified
                None,
                started,
            )
            await analyze(conn, fresh.db_schema)  # as `rectrack replay` does before switching
            seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
        await pool.close()
    return {
        "replay_events": events,
        "replay_seconds": round(seconds, 2),
        "replay_per_s": round(events / seconds, 1),
    }


async def raw_read_copy(settings: Settings) -> dict[str, float]:
    """The limit for replay: getmany the same topic and COPY its rows into a bare table."""
    consumer = groupless_consumer(settings)
    await consumer.start()
    pool = await create_pool(settings, max_size=1)
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE TEMP TABLE {table} (p int, o bigint, v bytea)")
            ends = await end_offsets(consumer, settings.topics.events)
            consumer.assign(list(ends))
            await consumer.seek_to_beginning(*ends)
            started = time.perf_counter()
            done = 0
            total = sum(ends.values())
            while done < total:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                rows = [(tp.partition, r.offset, r.value) for tp, rs in batches.items() for r in rs]
                if rows:
                    await conn.copy_records_to_table(table, records=rows)
                done += len(rows)
            seconds = time.perf_counter() - started
    finally:
        await pool.close()
        await consumer.stop()
    return {"raw_read_copy_per_s": round(total / seconds, 1)}


async def run(
    events: int,
    seed: int,
    env: dict[str, str] | None = None,
    *,
    query_seconds: float = 20,
    ingest_rate: float = 200,
) -> dict[str, Any]:
    """Every measurement, side by side, on a fresh history of `events` commands."""
    env = dict(os.environ) if env is None else env
    base = Settings.from_env(env)
    run_id = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        base,
        topic_prefix=f"bench-{events}-{seed}-{run_id}.",
        db_schema=f"bench_replay_{run_id}",
    )
    await ensure_topics(settings)
    lines = list(commands(events, seed))
    result: dict[str, Any] = {"events": events, "seed": seed}
    result |= await decide(settings, lines, env)
    result |= await raw_produce_consume(settings, lines)
    result |= await replay(settings)
    result |= await raw_read_copy(settings)
    try:
        result |= await under_ingest(settings, lines, env, rate=ingest_rate, seconds=query_seconds)
    finally:
        await _drop_schema(settings)
    result["decide_vs_raw"] = round(result["decide_per_s"] / result["raw_produce_consume_per_s"], 3)
    result["replay_vs_raw"] = round(result["replay_per_s"] / result["raw_read_copy_per_s"], 3)
    result["peak_rss_mb"] = {
        **result.pop("peak_rss_mb"),
        "decider_during_decide": result.pop("decider_peak_rss_mb"),
        "bench_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    return result


async def _drop_schema(settings: Settings) -> None:
    pool = await create_pool(settings, max_size=1)
    try:
        await pool.execute(f"DROP SCHEMA IF EXISTS {quote_schema(settings.db_schema)} CASCADE")
    finally:
        await pool.close()
