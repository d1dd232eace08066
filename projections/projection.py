"""What the generic projector, replay, lag and verification need to know about a read model."""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from events.envelope import Envelope
from projections.statements import Statement

# One event's statements, for the event-by-event path that records each failure.
Projector = Callable[[Envelope], list[Statement]]
# Writes a whole verified batch's effect in bulk; raises NeedsCare when it cannot.
BatchWriter = Callable[[asyncpg.Connection, Sequence[Envelope]], Awaitable[None]]


class NeedsCare(Exception):
    """An event of the batch cannot take the fast path; the batch is redone event by event."""


@dataclass(frozen=True)
class Projection:
    """A read model built from the events topic.

    `tables` names its own tables with the columns a checksum compares and their order;
    `newest_event_sql` answers the recorded_at of the newest event it holds.
    """

    name: str
    project: Projector
    write_batch: BatchWriter
    tables: Mapping[str, tuple[str, str]]
    newest_event_sql: str
