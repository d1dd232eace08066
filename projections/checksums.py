"""Checksums of the read-model tables: equal checksums mean equal read models."""

import asyncpg

from infra.database import quote_schema

# Columns that depend on wall-clock time of projection, not on the log, are left out.
TABLES: dict[str, tuple[str, str]] = {
    "event_log": ("*", "event_id"),
    "inspections": ("*", "inspection_id"),
    "recommendations": ("*", "recommendation_id"),
    "recommendation_states": ("*", "recommendation_id, stream_version"),
    "inspection_counts": ("*", "inspection_id"),
    "committee_updates": ("*", "committee, meeting_date"),
    "stream_heads": ("*", "stream_id"),
    "projection_checkpoints": (
        "projection, topic, partition, next_offset",
        "projection, topic, partition",
    ),
    "projection_errors": (
        'projection, topic, partition, "offset", reason',
        'projection, topic, partition, "offset"',
    ),
}


async def table_checksums(conn: asyncpg.Connection, schema: str) -> dict[str, str]:
    """md5 over every row of each read-model table, in primary-key order."""
    result = {}
    for table, (columns, order) in TABLES.items():
        result[table] = await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) "  # noqa: S608
            f"FROM (SELECT {columns} FROM {quote_schema(schema)}.{table}) t"
        )
    return result
