"""Apply a batch of log messages to a projection and advance its checkpoint, in one transaction.

Two paths: the whole verified batch written in bulk by the projection's writer, or, at any doubt,
event by event with a savepoint each, recording every failure in `projection_errors`.

Only events a decider wrote are projected: an event must be authenticated by a seal
(events/seals.py) signed with a trusted decider key, met on its partition at or before it. An
event that is not (forged with a correct hash and link, or sealed by a key nobody trusts) is
recorded ("not authenticated by a decider key: ...") and moves nothing, like a forged one.

No event wedges its stream. An event that continues its stream's verified chain (the right
version, a valid hash linked to the head) but cannot be applied (data no model reads, a value
PostgreSQL refuses) is recorded with `in_chain` and still moves the stream's head, so the
stream's later events project. An event that does not continue its chain (forged, altered,
not an event at all) is recorded and moves nothing. Both are deterministic functions of the
log, so the bulk path, the event-by-event path and a replay build the same tables.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import structlog
from asyncpg.exceptions._base import DataError as UnencodableArgument  # not re-exported

from events.chain import Place, place_of, stream_of
from events.envelope import Envelope
from events.integrity import HASH_FIELD, SEAL_FIELD, digest
from events.registry import UnreadableEvent, parse_event_doc
from events.seals import (
    DeciderKeys,
    InvalidSeal,
    Seal,
    SealBook,
    unauthenticated_reason,
    verified_seal,
)
from events.topics import Message
from infra.gc_pause import gc_paused
from projections.checkpoint import advance_checkpoints, lock_checkpoints
from projections.projection import BatchWriter, NeedsCare, Projection, Projector
from projections.sealed_events import copy_seals, is_sealed, load_seals, save_seal
from projections.stream_heads import extend_heads, load_heads, save_head, save_heads, why_not_next

log = structlog.get_logger(__name__)

# SQLSTATE classes one event's values can cause: 22 data exception (a NUL in text, a number
# out of range), 23 integrity constraint violation (a duplicate key), 54 program limit exceeded
# (a value too big for an index row). Every other class (connection, resources, operator
# intervention, serialization, an error in our own SQL) belongs to the database or the code:
# the batch is retried by the worker, never charged to an event.
EVENT_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
REASON_MAX = 2000


def belongs_to_event(exc: BaseException) -> bool:
    """Whether an error writing an event is the event's own (bad values), not the system's."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in EVENT_SQLSTATE_CLASSES
    # A value no column can hold already fails in asyncpg, before sending: as a bind argument
    # (its client-side DataError) or in a COPY (OverflowError, UnicodeEncodeError).
    return isinstance(exc, UnencodableArgument | OverflowError | UnicodeError)


def storable(text: str) -> str:
    """Text PostgreSQL can hold: NUL and lone surrogates spelled out as escapes.

    Reasons quote the event's values, and the reason of an event refused for a NUL must not
    itself be refused: that would abort the batch and retry it for ever.
    """
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def command_ids(value: bytes) -> dict[str, str]:
    """The command_id and correlation_id an event's bytes name, as text, for the log lines
    about it (none of an event that is not a JSON object, or whose ids are not text)."""
    try:
        doc = orjson.loads(value)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    ids = {k: doc[k] for k in ("command_id", "correlation_id") if isinstance(doc.get(k), str)}
    return {k: v[:64] for k, v in ids.items()}


@dataclass(frozen=True)
class Unapplied:
    """Why one event was not applied, where its stream stands, and whether its head moved."""

    reason: str
    place: Place | None = None
    in_chain: bool = False


class Behind(Exception):
    """The read model lacks events before a batch: a partition's checkpoint is below the batch's
    first offset there. Projecting the batch would leave those events out for good."""

    def __init__(self, missing: dict[int, tuple[int, int]]) -> None:
        # partition -> (the read model's next offset, the batch's first offset)
        self.missing = missing
        super().__init__(
            "the read model is behind the batch: "
            + ", ".join(f"partition {p} at {c}, batch from {f}" for p, (c, f) in missing.items())
        )

    @property
    def upto(self) -> dict[int, int]:
        """Each partition's offset the read model must reach before the batch."""
        return {partition: first for partition, (_, first) in self.missing.items()}


@dataclass
class BatchResult:
    """What a batch did: applied, skipped as already applied, or failed and reported."""

    applied: int = 0
    skipped: int = 0
    failed: int = 0


async def apply_batch(
    conn: asyncpg.Connection,
    projection: Projection,
    topic: str,
    messages: Sequence[Message],
    *,
    keys: DeciderKeys,
    contiguous: bool = False,
) -> BatchResult:
    """Project messages past each partition's checkpoint; redelivered messages change nothing.

    `keys`: the decider keys whose seals authenticate events. `contiguous`: refuse, with
    `Behind` and nothing written, a batch that starts past a partition's checkpoint (the
    projector, which must never skip an event; tests may project a chosen subset of a topic).
    """
    result = BatchResult()
    async with conn.transaction():
        # Shared with other batches; a replay's switch-over takes it exclusively.
        await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1))", projection.name)
        next_offsets = await lock_checkpoints(conn, projection.name, topic, messages)
        ordered = sorted(messages, key=lambda r: (r.partition, r.offset))
        if contiguous:
            first: dict[int, int] = {}
            for m in ordered:
                first.setdefault(m.partition, m.offset)
            missing = {p: (next_offsets[p], o) for p, o in first.items() if o > next_offsets[p]}
            if missing:
                raise Behind(missing)
        fresh = [m for m in ordered if m.offset >= next_offsets[m.partition]]
        result.skipped = len(ordered) - len(fresh)
        try:
            # One savepoint for the batch: the fast path.
            with gc_paused():
                async with conn.transaction():
                    await apply_in_bulk(conn, fresh, projection.write_batch, keys)
            result.applied = len(fresh)
        except Exception as exc:
            if not isinstance(exc, NeedsCare) and not belongs_to_event(exc):
                raise  # the database is away or the code is wrong: the worker retries
            # Some event is refused or fails: go event by event, recording each failure.
            for message in fresh:
                # Whatever is logged about this event names the command it came from.
                bound = structlog.contextvars.bind_contextvars(**command_ids(message.value))
                try:
                    unapplied = await _apply_one(conn, message, projection.project, keys)
                    if unapplied is None:
                        result.applied += 1
                    else:
                        result.failed += 1
                        await _record_error(conn, projection.name, topic, message, unapplied)
                finally:
                    structlog.contextvars.reset_contextvars(**bound)
        for message in fresh:
            next_offsets[message.partition] = message.offset + 1
        await advance_checkpoints(conn, projection.name, topic, next_offsets)
    return result


async def apply_in_bulk(
    conn: asyncpg.Connection,
    messages: Sequence[Message],
    write_batch: BatchWriter,
    keys: DeciderKeys,
) -> None:
    """Apply a whole batch with the chain checked in memory; raise NeedsCare on any doubt."""
    try:
        # One decoding serves both the model and the chain, which hashes the stored document.
        docs = [orjson.loads(m.value) for m in messages]
        for doc in docs:
            stream_of(doc)  # the event-by-event path's test of a stream and version, too
        envelopes = [parse_event_doc(doc) for doc in docs]
        # One signature per seal, verified once; a seal that does not verify is some event's.
        seals = batch_seals(messages, docs, keys)
    except Exception as exc:  # decoding is pure: whatever fails here is some event's fault
        raise NeedsCare from exc
    # The chain check recomputes every hash, so a seal's first hash compared with its carrier's
    # stored hash above is compared with its content.
    heads = extend_heads(docs, envelopes, await load_heads(conn, {e.stream_id for e in envelopes}))
    met = await require_sealed(conn, messages, envelopes, seals)
    await write_batch(conn, envelopes)
    await save_heads(conn, heads)
    await copy_seals(conn, seals, met)


def batch_seals(messages: Sequence[Message], docs: Sequence[Any], keys: DeciderKeys) -> SealBook:
    """The verified seals of a batch; InvalidSeal at the first that does not verify."""
    book = SealBook()
    for message, doc in zip(messages, docs, strict=True):
        if SEAL_FIELD in doc:
            where = (message.partition, message.offset)
            book.add(verified_seal(doc[SEAL_FIELD], doc.get(HASH_FIELD), keys, *where), *where)
    return book


async def require_sealed(
    conn: asyncpg.Connection,
    messages: Sequence[Message],
    envelopes: Sequence[Envelope],
    seals: SealBook,
) -> set[str]:
    """Raise NeedsCare unless every event is authenticated by this batch's seals or stored ones
    (one query, for the events whose seal came in an earlier batch); the hashes of the events
    this batch's own seals authenticate."""
    sealed = seals.sealed
    missing = []
    met = set()  # the hashes this batch's seals list and its events hold: not worth storing
    for m, e in zip(messages, envelopes, strict=True):
        at = sealed.get(e.hash)  # `SealBook.authenticates`, inlined: once per event
        if at is None or at.partition != m.partition or at.offset > m.offset:
            missing.append((m, e.hash))
        else:
            met.add(e.hash)
    if not missing:
        return met
    stored = await load_seals(conn, (h for _, h in missing))
    for message, event_hash in missing:
        at = stored.get(event_hash)
        if at is None or not at.covers(message.partition, message.offset):
            raise NeedsCare
    return met


async def _apply_one(
    conn: asyncpg.Connection, message: Message, project: Projector, keys: DeciderKeys
) -> Unapplied | None:
    try:
        doc = orjson.loads(message.value)
    except ValueError as exc:  # orjson.JSONDecodeError is one
        return Unapplied(f"unreadable event: {exc}")
    # A seal counts wherever it stands, whatever becomes of its own event (as in the bulk path,
    # where a batch goes through only if every event does).
    seal, own_seal = _own_seal(doc, keys, message)
    if seal is not None:
        await save_seal(conn, seal, message.partition, message.offset)
    try:
        place = place_of(doc)
    except ValueError as exc:
        return Unapplied(f"unreadable event: {exc}")
    if storable(place.stream_id) != place.stream_id:
        # No genuine stream has such an id (the decider names streams from slugs), and
        # PostgreSQL could not even look its head up.
        return Unapplied("unreadable event: stream_id holds characters PostgreSQL cannot store")
    refused = await why_not_next(conn, place.stream_id, place.stream_version, doc)
    if refused:
        return Unapplied(refused, place)
    # The chain check verified the stored hash: it is the hash of this content.
    if not await is_sealed(conn, doc[HASH_FIELD], message.partition, message.offset):
        # Refused like a forged event: the head stays, so the stream's genuine next event
        # (linked to the genuine head) still projects.
        return Unapplied(unauthenticated_reason(own_seal, message.partition), place)
    # The event is its stream's next: the head moves whether or not the event applies, so
    # one event the read model cannot hold never stops the ones after it.
    reason = await _apply_statements(conn, doc, project)
    await save_head(conn, place.stream_id, place.stream_version, doc[HASH_FIELD])
    return None if reason is None else Unapplied(reason, place, in_chain=True)


def _own_seal(
    doc: Any, keys: DeciderKeys, message: Message
) -> tuple[Seal | None, InvalidSeal | None]:
    """The event's own seal, verified against the hash of its content, or why it is refused."""
    if not isinstance(doc, dict) or SEAL_FIELD not in doc:
        return None, None
    try:
        own_hash = digest(doc)
    except TypeError:  # orjson refuses to encode it again: no decider wrote this
        return None, InvalidSeal("its event cannot be hashed")
    try:
        seal = verified_seal(doc[SEAL_FIELD], own_hash, keys, message.partition, message.offset)
    except InvalidSeal as exc:
        return None, exc
    return seal, None


async def _apply_statements(
    conn: asyncpg.Connection, doc: dict[str, Any], project: Projector
) -> str | None:
    """Why the event's statements could not be applied, or None when they were."""
    try:
        envelope = parse_event_doc(doc)
        statements = project(envelope)
    except UnreadableEvent as exc:
        return str(exc)
    except Exception as exc:  # parsing and `project` are pure: a failure is this event's
        return f"{type(exc).__name__}: {exc}"
    try:
        async with conn.transaction():  # a savepoint: one bad event does not undo the batch
            for statement in statements:
                await conn.execute(statement.sql, *statement.args)
    except Exception as exc:
        if not belongs_to_event(exc):
            raise
        return f"{type(exc).__name__}: {exc}"
    return None


_RECORD = (
    'INSERT INTO projection_errors (projection, topic, partition, "offset", reason, raw, '
    "stream_id, stream_version, in_chain, effective_date, event_recorded_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
)


async def _record_error(
    conn: asyncpg.Connection, projection: str, topic: str, message: Message, unapplied: Unapplied
) -> None:
    place = unapplied.place  # when given, its stream id is storable (see _apply_one)
    reason = storable(unapplied.reason)[:REASON_MAX]
    where = (place.stream_id, place.stream_version) if place else (None, None)
    log.warning(
        "event_not_projected",
        projection=projection,
        partition=message.partition,
        offset=message.offset,
        stream_id=where[0],
        stream_version=where[1],
        in_chain=unapplied.in_chain,
        reason=reason[:300],
    )
    args = (projection, topic, message.partition, message.offset, reason, message.value)
    when = (place.effective_date, place.recorded_at) if place else (None, None)
    try:
        async with conn.transaction():
            await conn.execute(_RECORD, *args, *where, unapplied.in_chain, *when)
    except Exception as exc:
        if not belongs_to_event(exc):
            raise
        # The dates the event states are out of any column's range: keep where it is and why.
        await conn.execute(_RECORD, *args, *where, unapplied.in_chain, None, None)
