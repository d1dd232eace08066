"""Projecting messages straight through the projector's batch function (real PostgreSQL)."""

from collections.abc import Sequence

import asyncpg

from events.topics import Message
from projections.batch_writer import write_recommendations
from projections.checkpoint import BatchResult, apply_batch
from projections.recommendations import project as recommendations


async def project_messages(
    conn: asyncpg.Connection, topic: str, messages: Sequence[Message]
) -> BatchResult:
    """Apply messages to the recommendations read model as one projector batch."""
    return await apply_batch(
        conn,
        projection=recommendations.NAME,
        topic=topic,
        messages=messages,
        project=recommendations.project,
        write_batch=write_recommendations,
    )
