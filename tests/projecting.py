"""Projecting messages straight through the projector's batch function (real PostgreSQL)."""

from collections.abc import Sequence

import asyncpg

from events.seals import DeciderKeys
from events.topics import Message
from projections.apply import BatchResult, apply_batch
from projections.recommendations.projection import RECOMMENDATIONS
from tests.sealing import TEST_DECIDER_KEYS


async def project_messages(
    conn: asyncpg.Connection,
    topic: str,
    messages: Sequence[Message],
    keys: DeciderKeys = TEST_DECIDER_KEYS,
) -> BatchResult:
    """Apply messages to the recommendations read model as one projector batch (trusting the
    test decider key unless told otherwise)."""
    return await apply_batch(conn, RECOMMENDATIONS, topic, messages, keys=keys)
