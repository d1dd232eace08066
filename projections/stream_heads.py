"""The verified head of every stream's hash chain: only events that continue it are projected."""

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import orjson

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
    conn: asyncpg.Connection, stream_id: str, version: int, raw: bytes
) -> str | None:
    """Why an event does not continue its stream's verified chain, or None."""
    head = await conn.fetchrow(
        "SELECT stream_version, hash FROM stream_heads WHERE stream_id = $1", stream_id
    )
    expected_version = head["stream_version"] + 1 if head else 1
    if version != expected_version:
        return f"chain broken: stream_version {version}, expected {expected_version}"
    reason = chain_break(orjson.loads(raw), head["hash"] if head else None)
    return f"chain broken: {reason}" if reason else None


async def save_head(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """Move one stream's head to this event."""
    await conn.execute(
        "INSERT INTO stream_heads (stream_id, stream_version, hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (stream_id) DO UPDATE SET stream_version = $2, hash = $3",
        envelope.stream_id,
        envelope.stream_version,
        envelope.hash,
    )
