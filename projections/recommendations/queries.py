"""Read queries over the recommendations read model (history tables, not log replays)."""

from datetime import date, datetime

import asyncpg
import orjson

from projections.recommendations.handover import HandoverPack, build_handover
from projections.recommendations.history import HistoryEntry, entry_from_row
from projections.recommendations.report import Report, assemble_report

# Latest value of each attribute per counted recommendation, bounded by business date ($1)
# and, optionally, by what the system had recorded by a moment ($2).
_LATEST_FACTS = """
WITH counted AS (
    SELECT recommendation_id, inspection_id, number
    FROM recommendations
    WHERE kind = 'recommendation' AND tracked AND issued_on <= $1
      AND ($2::timestamptz IS NULL OR issued_recorded_at <= $2)
      AND ($3::text IS NULL OR inspection_id = $3)
), latest AS (
    SELECT DISTINCT ON (h.recommendation_id, h.attribute)
           h.recommendation_id, h.attribute, h.value, h.effective_date, h.event_id
    FROM recommendation_history h
    JOIN counted c USING (recommendation_id)
    WHERE h.effective_date <= $1 AND ($2::timestamptz IS NULL OR h.recorded_at <= $2)
    ORDER BY h.recommendation_id, h.attribute, h.effective_date DESC, h.stream_version DESC
)
SELECT c.recommendation_id, c.inspection_id, c.number,
       max(l.value) FILTER (WHERE l.attribute = 'decision') AS decision,
       max(l.effective_date) FILTER (WHERE l.attribute = 'decision') AS decision_date,
       max(l.value) FILTER (WHERE l.attribute = 'delivery_status') AS delivery_status,
       max(l.value) FILTER (WHERE l.attribute = 'target_date')::date AS target_date,
       max(l.value) FILTER (WHERE l.attribute = 'owner') AS owner,
       max(l.value) FILTER (WHERE l.attribute = 'position') AS position,
       (array_agg(l.event_id) FILTER (WHERE l.attribute = 'event'))[1] AS last_event_id
FROM counted c LEFT JOIN latest l USING (recommendation_id)
GROUP BY c.recommendation_id, c.inspection_id, c.number
"""

_INSPECTIONS = """
SELECT inspection_id, title FROM inspections
WHERE published_on <= $1 AND ($2::text IS NULL OR inspection_id = $2)
  AND ($3::timestamptz IS NULL OR recorded_at <= $3)
ORDER BY published_on, inspection_id
"""

_LAST_UPDATE_BEFORE = """
SELECT max(meeting_date) FROM committee_updates
WHERE meeting_date < $1 AND ($2::timestamptz IS NULL OR recorded_at <= $2)
"""


async def report(
    conn: asyncpg.Connection,
    *,
    as_of: date,
    since: date | None = None,
    known_at: datetime | None = None,
    inspection_id: str | None = None,
) -> Report:
    """The committee table as of a business date, optionally as known at a past moment."""
    if since is None:
        since = await conn.fetchval(_LAST_UPDATE_BEFORE, as_of, known_at)
    inspections = await conn.fetch(_INSPECTIONS, as_of, inspection_id, known_at)
    rows = await conn.fetch(_LATEST_FACTS, as_of, known_at, inspection_id)
    return assemble_report(
        as_of=as_of,
        since=since,
        known_at=known_at,
        inspections=[dict(r) for r in inspections],
        recommendation_rows=[dict(r) for r in rows],
    )


async def current_counts(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """(total, closed) per inspection from the incrementally maintained counts."""
    rows = await conn.fetch("SELECT inspection_id, total, closed FROM inspection_counts")
    return {r["inspection_id"]: (r["total"], r["closed"]) for r in rows}


async def history(conn: asyncpg.Connection, recommendation_id: str) -> list[HistoryEntry]:
    """Every event of a recommendation, in order."""
    rows = await conn.fetch(
        "SELECT stream_version, event_id, type, effective_date, recorded_at, actor_name, "
        "actor_team, actor_role, loaded_by, data FROM event_log WHERE stream_id = $1 "
        "ORDER BY stream_version",
        recommendation_id,
    )
    return [
        entry_from_row(
            {
                **dict(r),
                "data": orjson.loads(r["data"]),
                "loaded_by": orjson.loads(r["loaded_by"]) if r["loaded_by"] else None,
            }
        )
        for r in rows
    ]


async def handover(
    conn: asyncpg.Connection, recommendation_id: str, *, as_of: date
) -> HandoverPack | None:
    """The handover pack of a recommendation, or None if there is no such recommendation."""
    entries = await history(conn, recommendation_id)
    if not entries:
        return None
    return build_handover(recommendation_id, entries, as_of=as_of)
