"""The verified head of every stream's hash chain: only events that continue it are projected.

The head moves past every event that continues the chain, also one the projection could not
apply (recorded in projection_errors): the chain is the log's, not the read model's, and a
head stuck on such an event would refuse every later event of its stream for ever.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from events.envelope import Envelope
from events.integrity import chain_break
from projections.projection import NeedsCare
from projections.statements import columns

Heads = dict[str, tuple[int, str]]  # stream id -> (stream_version, hash) of its last event


async def load_heads(conn: asyncpg.Connection, stream_ids: Iterable[str]) -> Heads:
    """The stored heads of these streams (one query)."""
    rows = await conn.fetch(
        "SELECT stream_id, stream_version, hash FROM stream_heads WHERE stream_id = ANY($1)",
        list(stream_ids),
    )
    return {r["stream_id"]: (r["stream_version"], r["hash"]) for r in rows}


def extend_heads(docs: Sequence[Any], envelopes: Sequence[Envelope], heads: Heads) -> Heads:
    """The heads after a batch, each event checked against the one before it; pure.

    Raises NeedsCare at the first event that does not continue its stream's chain.
    """
    for doc, envelope in zip(docs, envelopes, strict=True):
        version, last_hash = heads.get(envelope.stream_id, (0, None))
        if envelope.stream_version != version + 1 or chain_break(doc, last_hash):
            raise NeedsCare
        heads[envelope.stream_id] = (envelope.stream_version, envelope.hash)
    return heads


async def save_heads(conn: asyncpg.Connection, heads: Heads) -> None:
    """Store heads (one statement)."""
    await conn.execute(
        "INSERT INTO stream_heads (stream_id, stream_version, hash) "
        "SELECT * FROM unnest($1::text[], $2::int[], $3::text[]) "
        "ON CONFLICT (stream_id) DO UPDATE "
        "SET stream_version = EXCLUDED.stream_version, hash = EXCLUDED.hash",
        *columns([(stream, version, digest) for stream, (version, digest) in heads.items()], 3),
    )


async def why_not_next(
    conn: asyncpg.Connection, stream_id: str, version: int, doc: dict[str, Any]
) -> str | None:
    """Why an event (its decoded document) does not continue its stream's verified chain."""
    head = await conn.fetchrow(
        "SELECT stream_version, hash FROM stream_heads WHERE stream_id = $1", stream_id
    )
    expected_version = head["stream_version"] + 1 if head else 1
    if version != expected_version:
        return f"chain broken: stream_version {version}, expected {expected_version}"
    reason = chain_break(doc, head["hash"] if head else None)
    return f"chain broken: {reason}" if reason else None


async def save_head(conn: asyncpg.Connection, stream_id: str, version: int, digest: str) -> None:
    """Move one stream's head to this event (applied or not: it is the chain's next)."""
    await conn.execute(
        "INSERT INTO stream_heads (stream_id, stream_version, hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (stream_id) DO UPDATE SET stream_version = $2, hash = $3",
        stream_id,
        version,
        digest,
    )
