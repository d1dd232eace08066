"""Projecting messages straight through the projector's batch function (real PostgreSQL)."""

from collections.abc import Sequence

import asyncpg

from events.topics import Message
from projections.batch_writer import apply_recommendations_batch
from projections.checkpoint import BatchResult


async def project_messages(
    conn: asyncpg.Connection, topic: str, messages: Sequence[Message]
) -> BatchResult:
    """Apply messages to the recommendations read model as one projector batch."""
    return await apply_recommendations_batch(conn, topic, messages)
