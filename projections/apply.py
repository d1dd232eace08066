"""Apply a batch of log messages to a projection and advance its checkpoint, in one transaction.

Two paths: the whole verified batch written in bulk by the projection's writer, or, at any doubt,
event by event with a savepoint each, recording every failure in `projection_errors`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson
from asyncpg.exceptions._base import DataError as UnencodableArgument  # not re-exported

from events.registry import UnreadableEvent, parse_event, parse_event_doc
from events.topics import Message
from projections.checkpoint import advance_checkpoints, lock_checkpoints
from projections.gc_pause import gc_paused
from projections.projection import BatchWriter, NeedsCare, Projection, Projector
from projections.stream_heads import extend_heads, load_heads, save_head, save_heads, why_not_next

# Errors that belong to one event (bad data, a duplicate) rather than to the database being away.
# A value no column can hold (an integer out of range) already fails in asyncpg, before sending:
# as a bind argument (its client-side DataError) or in a COPY (OverflowError).
EVENT_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    UnencodableArgument,
    OverflowError,
)


@dataclass
class BatchResult:
    """What a batch did: applied, skipped as already applied, or failed and reported."""

    applied: int = 0
    skipped: int = 0
    failed: int = 0


async def apply_batch(
    conn: asyncpg.Connection, projection: Projection, topic: str, messages: Sequence[Message]
) -> BatchResult:
    """Project messages past each partition's checkpoint; redelivered messages change nothing."""
    result = BatchResult()
    async with conn.transaction():
        # Shared with other batches; a replay's switch-over takes it exclusively.
        await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1))", projection.name)
        next_offsets = await lock_checkpoints(conn, projection.name, topic, messages)
        ordered = sorted(messages, key=lambda r: (r.partition, r.offset))
        fresh = [m for m in ordered if m.offset >= next_offsets[m.partition]]
        result.skipped = len(ordered) - len(fresh)
        try:
            # One savepoint for the batch: the fast path.
            with gc_paused():
                async with conn.transaction():
                    await apply_in_bulk(conn, fresh, projection.write_batch)
            result.applied = len(fresh)
        except (NeedsCare, *EVENT_ERRORS):
            # Some event is refused or fails: go event by event, recording each failure.
            for message in fresh:
                error = await _apply_one(conn, message, projection.project)
                if error is None:
                    result.applied += 1
                else:
                    result.failed += 1
                    await _record_error(conn, projection.name, topic, message, error)
        for message in fresh:
            next_offsets[message.partition] = message.offset + 1
        await advance_checkpoints(conn, projection.name, topic, next_offsets)
    return result


async def apply_in_bulk(
    conn: asyncpg.Connection, messages: Sequence[Message], write_batch: BatchWriter
) -> None:
    """Apply a whole batch with the chain checked in memory; raise NeedsCare on any doubt."""
    try:
        # One decoding serves both the model and the chain, which hashes the stored document.
        docs = [orjson.loads(m.value) for m in messages]
        envelopes = [parse_event_doc(doc) for doc in docs]
    except (orjson.JSONDecodeError, UnreadableEvent) as exc:
        raise NeedsCare from exc
    heads = extend_heads(docs, envelopes, await load_heads(conn, {e.stream_id for e in envelopes}))
    await write_batch(conn, envelopes)
    await save_heads(conn, heads)


async def _apply_one(conn: asyncpg.Connection, message: Message, project: Projector) -> str | None:
    try:
        envelope = parse_event(message.value)
        statements = project(envelope)
    except (UnreadableEvent, TypeError) as exc:
        return str(exc)
    refused = await why_not_next(conn, envelope.stream_id, envelope.stream_version, message.value)
    if refused:
        return refused
    try:
        async with conn.transaction():  # a savepoint: one bad event does not undo the batch
            for statement in statements:
                await conn.execute(statement.sql, *statement.args)
            await save_head(conn, envelope)
    except EVENT_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _record_error(
    conn: asyncpg.Connection, projection: str, topic: str, message: Message, reason: str
) -> None:
    await conn.execute(
        'INSERT INTO projection_errors (projection, topic, partition, "offset", reason, raw) '
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        projection,
        topic,
        message.partition,
        message.offset,
        reason[:2000],
        message.value,
    )
