"""The recommendations projection's fast path: a verified batch folded in memory, written in bulk.

About five statements per event became a fixed handful per batch: COPY for the rows that are
only ever added, one `unnest` statement for each kind of row that changes.
"""

from collections.abc import Sequence
from typing import Any

import asyncpg

from events.envelope import Envelope
from projections.projection import NeedsCare
from projections.recommendations.fold import (
    ADD_COUNTS,
    CHANGING_COLUMNS,
    CLOSE_OPEN_STATES,
    COMMITTEE_COLUMNS,
    INSPECTION_COLUMNS,
    RECOMMENDATION_COLUMNS,
    STATE_COLUMNS,
    STORED_COLUMNS,
    UPDATE_RECOMMENDATIONS,
    fold,
)
from projections.recommendations.project import EVENT_LOG_COLUMNS
from projections.statements import columns


async def write_recommendations(conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
    """Write a batch's effect on the recommendations read model (not its stream heads)."""
    rec_ids = {getattr(e.data, "recommendation_id", None) for e in envelopes} - {None}
    stored = await conn.fetch(
        f"SELECT {', '.join(STORED_COLUMNS)} FROM recommendations "  # noqa: S608
        "WHERE recommendation_id = ANY($1::text[])",
        list(rec_ids),
    )
    try:
        rows = fold(envelopes, {r["recommendation_id"]: dict(r) for r in stored})
    except Exception as exc:
        # fold is pure: whatever it raises (a Conflict, an event type with no projection, or
        # a defect yet unknown) is some event's fault, and the event-by-event path finds which.
        raise NeedsCare from exc
    await _copy(conn, "event_log", EVENT_LOG_COLUMNS, rows.event_log)
    await _copy(conn, "inspections", INSPECTION_COLUMNS, rows.inspections)
    await _copy(conn, "committee_updates", COMMITTEE_COLUMNS, rows.committee_updates)
    await _copy(conn, "recommendations", RECOMMENDATION_COLUMNS, rows.new_recommendations)
    if rows.changed_recommendations:
        await conn.execute(
            UPDATE_RECOMMENDATIONS,
            *columns(rows.changed_recommendations, len(CHANGING_COLUMNS) + 1),
        )
    if rows.closed_before:
        # Before the new intervals go in, or it would close the newest of them too.
        await conn.execute(CLOSE_OPEN_STATES, *columns(rows.closed_before, 3))
    await _copy(conn, "recommendation_states", STATE_COLUMNS, rows.states)
    if rows.counts:
        await conn.execute(ADD_COUNTS, *columns(rows.counts, 3))


async def _copy(
    conn: asyncpg.Connection, table: str, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    if rows:
        await conn.copy_records_to_table(table, records=rows, columns=list(names))
