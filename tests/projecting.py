"""Projecting messages straight through the projector's batch function (real PostgreSQL)."""

from collections.abc import Sequence

import asyncpg

from events.topics import Message
from projections.apply import BatchResult, apply_batch
from projections.recommendations.projection import RECOMMENDATIONS


async def project_messages(
    conn: asyncpg.Connection, topic: str, messages: Sequence[Message]
) -> BatchResult:
    """Apply messages to the recommendations read model as one projector batch."""
    return await apply_batch(conn, RECOMMENDATIONS, topic, messages)
