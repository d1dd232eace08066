"""Checksums of a projection's tables: equal checksums mean equal read models."""

from collections.abc import Mapping

import asyncpg

from infra.database import quote_schema
from projections.projection import Projection

# The tables every projection shares. Columns that depend on the wall-clock time of projection,
# not on the log, are left out, and so is `sealed_events`, whose rows depend on where batches
# were cut (projections/sealed_events.py).
SHARED_TABLES: Mapping[str, tuple[str, str]] = {
    "stream_heads": ("*", "stream_id"),
    "projection_checkpoints": (
        "projection, topic, partition, next_offset",
        "projection, topic, partition",
    ),
    "projection_errors": (
        'projection, topic, partition, "offset", reason, stream_id, stream_version, in_chain',
        'projection, topic, partition, "offset"',
    ),
}


async def table_checksums(
    conn: asyncpg.Connection, schema: str, projection: Projection
) -> dict[str, str]:
    """md5 over every row of each table, in primary-key order."""
    result = {}
    for table, (columns, order) in {**projection.tables, **SHARED_TABLES}.items():
        result[table] = await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) "  # noqa: S608
            f"FROM (SELECT {columns} FROM {quote_schema(schema)}.{table}) t"
        )
    return result
