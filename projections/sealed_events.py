"""The hashes the decider sealed, kept so that events of later batches find their seal.

A seal stands on the first event of a decider batch on a partition and lists the hashes of that
batch's events there (events/seals.py). The projector meets the seal before the events it lists,
mostly in the same batch of its own, but not always, nor always in the same process (a restart,
a replay). So every hash of a verified seal whose event has not come in the seal's own batch is
stored in `sealed_events`, in the batch's transaction.

A hash met in its seal's batch is not stored: that event has just continued its stream's chain,
and a copy of it later cannot (the chain is checked before the seal), so whether the table holds
it changes no outcome. Writing a row per event cost replay about 4 % more CPU per event (the
COPY and its primary key); this way the table holds a batch boundary's worth of hashes per
partition. Which rows it holds depends on where batches were cut, so its checksum is not
compared (projections/checksums.py); what it decides is the same wherever they were.
"""

from collections.abc import Iterable

import asyncpg

from events.seals import Seal, SealBook, SealedAt


async def load_seals(conn: asyncpg.Connection, hashes: Iterable[str]) -> dict[str, SealedAt]:
    """The stored seals listing any of these hashes (hex, as events carry them; one query)."""
    rows = await conn.fetch(
        'SELECT hash, key_id, partition, "offset" FROM sealed_events WHERE hash = ANY($1::bytea[])',
        [bytes.fromhex(h) for h in hashes],
    )
    return {r["hash"].hex(): SealedAt(r["key_id"], r["partition"], r["offset"]) for r in rows}


async def copy_seals(conn: asyncpg.Connection, book: SealBook, met: set[str]) -> None:
    """Store the hashes a batch's verified seals list but whose events it did not hold (`met`:
    the ones it did), in bulk (COPY).

    A hash stored already (a seal copied onto the log again, on its own partition: anywhere
    else it does not verify) fails the COPY with a unique violation, an event's error, so the
    batch is redone event by event, which keeps the first.
    """
    rows = [
        (bytes.fromhex(h), at.key_id, at.partition, at.offset)
        for h, at in book.sealed.items()
        if h not in met
    ]
    if rows:
        await conn.copy_records_to_table(
            "sealed_events", records=rows, columns=["hash", "key_id", "partition", "offset"]
        )


async def save_seal(conn: asyncpg.Connection, seal: Seal, partition: int, offset: int) -> None:
    """Store one verified seal, keeping the first seal of a hash listed before."""
    await conn.execute(
        'INSERT INTO sealed_events (hash, key_id, partition, "offset") '
        "SELECT h, $2, $3, $4 FROM unnest($1::bytea[]) AS h ON CONFLICT (hash) DO NOTHING",
        [bytes.fromhex(h) for h in seal.hashes],
        seal.key_id,
        partition,
        offset,
    )


async def is_sealed(conn: asyncpg.Connection, event_hash: str, partition: int, offset: int) -> bool:
    """Whether a stored seal authenticates the event with this hash at this place."""
    at = (await load_seals(conn, [event_hash])).get(event_hash)
    return at is not None and at.covers(partition, offset)
