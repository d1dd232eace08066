"""Each projection's (topic, partition) → next offset, kept in the read model's transaction."""

from collections.abc import Sequence

import asyncpg

from events.topics import Message


async def lock_checkpoints(
    conn: asyncpg.Connection, projection: str, topic: str, messages: Sequence[Message]
) -> dict[int, int]:
    """The next offset of each partition these messages come from, locked until commit."""
    partitions = sorted({r.partition for r in messages})
    await conn.executemany(
        "INSERT INTO projection_checkpoints (projection, topic, partition, next_offset) "
        "VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
        [(projection, topic, p) for p in partitions],
    )
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM projection_checkpoints "
        "WHERE projection = $1 AND topic = $2 AND partition = ANY($3::int[]) FOR UPDATE",
        projection,
        topic,
        partitions,
    )
    return {r["partition"]: r["next_offset"] for r in rows}


async def advance_checkpoints(
    conn: asyncpg.Connection, projection: str, topic: str, next_offsets: dict[int, int]
) -> None:
    """Store the next offset of each partition."""
    await conn.executemany(
        "UPDATE projection_checkpoints SET next_offset = $4, updated_at = now() "
        "WHERE projection = $1 AND topic = $2 AND partition = $3",
        [(projection, topic, p, offset) for p, offset in next_offsets.items()],
    )


async def checkpoints(conn: asyncpg.Connection, projection: str, topic: str) -> dict[int, int]:
    """The next offset to project in each partition."""
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM projection_checkpoints "
        "WHERE projection = $1 AND topic = $2",
        projection,
        topic,
    )
    return {r["partition"]: r["next_offset"] for r in rows}
