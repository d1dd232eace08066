"""Time the as-of report over a synthetic read model of N recommendations.

`json` is what GET /report and `report --format json` cost (PostgreSQL writes the JSON);
`model` adds parsing it into the Report model (the table output).

    python -m bench.report_as_of --recommendations 100000 [--runs 7] [--out FILE]

Uses the instance in RECTRACK_HOME / DATABASE_URL (start it with `rectrack up`), in a schema of
its own that it fills with SQL (10 state intervals per recommendation, 20 per inspection).
"""

import dataclasses
import statistics
import time
from datetime import UTC, date, datetime

from infra.database import create_pool, migrate, quote_schema
from infra.settings import Settings
from projections.recommendations import queries

SEED = """
INSERT INTO inspections
  SELECT 'insp-'||i, now(), 'Inspection '||i, 'HMICS', date '2020-01-01', null, null,
         gen_random_uuid()
  FROM generate_series(1, $1::int / 20) i;
INSERT INTO recommendations (recommendation_id, inspection_id, number, kind, text, tracked,
                             issued_on, issued_recorded_at, stream_version, last_event_id,
                             last_effective_date)
  SELECT 'insp-'||i||'/r'||n, 'insp-'||i, n, 'recommendation', 'text', true, date '2020-01-01',
         now(), 10, gen_random_uuid(), date '2024-01-01'
  FROM generate_series(1, $1::int / 20) i, generate_series(1, 20) n;
INSERT INTO recommendation_states
  SELECT r.recommendation_id, v, date '2020-01-01' + v * 60,
         CASE WHEN v < 10 THEN date '2020-01-01' + (v + 1) * 60 END,
         now(), CASE WHEN v < 10 THEN now() END, gen_random_uuid(), 'team-'||(v % 3),
         date '2025-01-01', CASE WHEN v % 2 = 0 THEN 'delayed' ELSE 'on_track' END,
         'position '||v,
         CASE WHEN v = 10 AND r.number % 3 = 0 THEN 'closed' WHEN v > 5 THEN 'kept_open' END,
         CASE WHEN v > 5 THEN date '2020-01-01' + v * 60 END
  FROM recommendations r, generate_series(1, 10) v;
"""


async def run(recommendations: int, runs: int) -> dict[str, object]:
    base = Settings.from_env()
    settings = dataclasses.replace(base, db_schema=f"bench_report_{recommendations}")
    pool = await create_pool(settings)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT count(*) FROM recommendations"):
                for statement in SEED.strip().split(";\n"):
                    await conn.execute(
                        statement, recommendations
                    ) if "$1" in statement else await conn.execute(statement)
                await conn.execute("ANALYZE")
            timings: dict[str, list[float]] = {"json": [], "json_known_at": [], "model": []}
            as_of = date(2024, 9, 18)
            for _ in range(runs):
                for name, known in (("json", None), ("json_known_at", datetime.now(UTC))):
                    started = time.perf_counter()
                    await queries.report_json(conn, as_of=as_of, known_at=known)
                    timings[name].append(time.perf_counter() - started)
                started = time.perf_counter()
                report = await queries.report(conn, as_of=as_of)
                timings["model"].append(time.perf_counter() - started)
            lines = sum(len(i.recommendations) for i in report.inspections)
    finally:
        await pool.close()
    return {
        "recommendations": recommendations,
        "lines": lines,
        "runs": runs,
        "schema": quote_schema(settings.db_schema),
        **{f"{k}_p50_s": round(statistics.median(v), 3) for k, v in timings.items()},
        **{f"{k}_max_s": round(max(v), 3) for k, v in timings.items()},
    }
