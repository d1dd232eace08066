"""Apply a batch of log messages and the (partition, offset) checkpoint in one transaction."""

import gc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from asyncpg.exceptions._base import DataError as UnencodableArgument  # not re-exported

from events.envelope import Envelope
from events.integrity import chain_break
from events.registry import UnreadableEvent, parse_event, parse_event_doc
from events.topics import Message
from projections.statements import Statement

Projector = Callable[[Envelope], list[Statement]]
# Writes a whole verified batch's effect in bulk; raises NeedsCare when it cannot.
BatchWriter = Callable[[asyncpg.Connection, Sequence[Envelope]], Awaitable[None]]

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
    conn: asyncpg.Connection,
    *,
    projection: str,
    topic: str,
    messages: Sequence[Message],
    project: Projector,
    write_batch: BatchWriter,
) -> BatchResult:
    """Project messages past each partition's checkpoint; redelivered messages change nothing.

    `write_batch` writes a whole verified batch in bulk (the fast path); `project` gives one
    event's statements, for the event-by-event fallback that records each failure.
    """
    result = BatchResult()
    async with conn.transaction():
        # Shared with other batches; a replay's switch-over takes it exclusively.
        await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1))", projection)
        next_offsets = await _lock_checkpoints(conn, projection, topic, messages)
        ordered = sorted(messages, key=lambda r: (r.partition, r.offset))
        fresh = [m for m in ordered if m.offset >= next_offsets[m.partition]]
        result.skipped = len(ordered) - len(fresh)
        try:
            # One savepoint for the batch: the fast path.
            with _gc_paused():
                async with conn.transaction():
                    await _apply_all(conn, fresh, write_batch)
            result.applied = len(fresh)
        except (NeedsCare, *EVENT_ERRORS):
            # Some event is refused or fails: go event by event, recording each failure.
            for message in fresh:
                error = await _apply_one(conn, message, project)
                if error is None:
                    result.applied += 1
                else:
                    result.failed += 1
                    await _record_error(conn, projection, topic, message, error)
        for message in fresh:
            next_offsets[message.partition] = message.offset + 1
        await conn.executemany(
            "UPDATE projection_checkpoints SET next_offset = $4, updated_at = now() "
            "WHERE projection = $1 AND topic = $2 AND partition = $3",
            [(projection, topic, p, offset) for p, offset in next_offsets.items()],
        )
    return result


async def _lock_checkpoints(
    conn: asyncpg.Connection, projection: str, topic: str, messages: Sequence[Message]
) -> dict[int, int]:
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


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch takes the fast path.

    A batch allocates tens of thousands of objects (documents, envelopes, rows) that stay alive
    until it is written, and every collection their allocation triggers walks them all again:
    at 100k events that was about a quarter of the projector's CPU time. Garbage in reference
    cycles waits for the next collection after the batch; a batch is bounded, so is the wait.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class NeedsCare(Exception):
    """An event of the batch cannot take the fast path; the batch is redone event by event."""


async def _apply_all(
    conn: asyncpg.Connection, messages: Sequence[Message], write_batch: BatchWriter
) -> None:
    """Apply a whole batch with the chain checked in memory; raise NeedsCare on any doubt."""
    try:
        # One decoding serves both the model and the chain, which hashes the stored document.
        docs = [orjson.loads(m.value) for m in messages]
        envelopes = [parse_event_doc(doc) for doc in docs]
    except (orjson.JSONDecodeError, UnreadableEvent) as exc:
        raise NeedsCare from exc
    rows = await conn.fetch(
        "SELECT stream_id, stream_version, hash FROM stream_heads WHERE stream_id = ANY($1)",
        list({e.stream_id for e in envelopes}),
    )
    heads = _verified_heads(
        docs, envelopes, {r["stream_id"]: (r["stream_version"], r["hash"]) for r in rows}
    )
    await write_batch(conn, envelopes)
    await conn.execute(
        "INSERT INTO stream_heads (stream_id, stream_version, hash) "
        "SELECT * FROM unnest($1::text[], $2::int[], $3::text[]) "
        "ON CONFLICT (stream_id) DO UPDATE "
        "SET stream_version = EXCLUDED.stream_version, hash = EXCLUDED.hash",
        *columns([(stream, version, digest) for stream, (version, digest) in heads.items()], 3),
    )


def _verified_heads(
    docs: Sequence[Any], envelopes: Sequence[Envelope], heads: dict[str, tuple[int, str]]
) -> dict[str, tuple[int, str]]:
    """The streams' heads after the batch, each event checked against the one before it."""
    for doc, envelope in zip(docs, envelopes, strict=True):
        version, last_hash = heads.get(envelope.stream_id, (0, None))
        if envelope.stream_version != version + 1 or chain_break(doc, last_hash):
            raise NeedsCare
        heads[envelope.stream_id] = (envelope.stream_version, envelope.hash)
    return heads


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows turned into one list per column, for `unnest` of array parameters."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


async def _apply_one(conn: asyncpg.Connection, message: Message, project: Projector) -> str | None:
    try:
        envelope = parse_event(message.value)
        statements = project(envelope)
    except (UnreadableEvent, TypeError) as exc:
        return str(exc)
    refused = await _chain_break(conn, envelope.stream_id, envelope.stream_version, message.value)
    if refused:
        return refused
    try:
        async with conn.transaction():  # a savepoint: one bad event does not undo the batch
            for statement in statements:
                await conn.execute(statement.sql, *statement.args)
            await conn.execute(
                "INSERT INTO stream_heads (stream_id, stream_version, hash) VALUES ($1, $2, $3) "
                "ON CONFLICT (stream_id) DO UPDATE SET stream_version = $2, hash = $3",
                envelope.stream_id,
                envelope.stream_version,
                envelope.hash,
            )
    except EVENT_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _chain_break(
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


async def checkpoints(conn: asyncpg.Connection, projection: str, topic: str) -> dict[int, int]:
    """The next offset to project in each partition."""
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM projection_checkpoints "
        "WHERE projection = $1 AND topic = $2",
        projection,
        topic,
    )
    return {r["partition"]: r["next_offset"] for r in rows}
