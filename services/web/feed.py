"""The event feed for subscribers: pages and a stream from a resumable cursor.

A cursor is the next offset of every partition of the events topic ("0-12.1-40.2-3"), so a
subscriber that stops anywhere and resumes from its last cursor misses nothing and sees
nothing twice. Events come out upcast to their current schema_version.

A cursor is bounded before it reaches Kafka (a partition the topic has, an offset Kafka can
hold, a bounded number of pairs), a page has a deadline, and every consumer is closed, also
when its request is cancelled.
"""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.registry import UnreadableEvent, parse_event
from infra.kafka_clients import groupless_consumer, topic_partitions
from infra.settings import Settings

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 15.0
PAGE_SECONDS = 5.0
MAX_OFFSET = 2**63 - 1  # Kafka offsets are signed 64-bit
MAX_PARTITION = 2**31 - 1  # and partitions signed 32-bit
MAX_PAIRS = 1024
MAX_CURSOR_CHARS = MAX_PAIRS * 32
_PAIR = re.compile(r"([0-9]{1,10})-([0-9]{1,19})")


class BadCursor(ValueError):
    """A cursor that is not of the form partition-offset[.partition-offset...] within bounds."""


@dataclass(frozen=True)
class Cursor:
    """Next offset per partition; partitions not named start at 0."""

    offsets: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        """Read a cursor from a query parameter or Last-Event-ID; empty means the beginning."""
        if not text:
            return cls()
        if len(text) > MAX_CURSOR_CHARS:
            raise BadCursor(f"cursor is longer than {MAX_CURSOR_CHARS} characters")
        parts = text.split(".")
        if len(parts) > MAX_PAIRS:
            raise BadCursor(f"cursor has more than {MAX_PAIRS} partition-offset pairs")
        pairs: list[tuple[int, int]] = []
        for part in parts:
            match = _PAIR.fullmatch(part)
            if match is None:
                raise BadCursor(f"cursor {text[:80]!r} is not partition-offset pairs")
            partition, offset = int(match.group(1)), int(match.group(2))
            if partition > MAX_PARTITION or offset > MAX_OFFSET:
                raise BadCursor(f"cursor pair {part!r} is beyond what Kafka can hold")
            pairs.append((partition, offset))
        if len({p for p, _ in pairs}) != len(pairs):
            raise BadCursor("cursor names a partition twice")
        return cls(tuple(sorted(pairs)))

    def check_partitions(self, partitions: list[int]) -> None:
        """Refuse a cursor naming a partition the topic does not have."""
        unknown = sorted({p for p, _ in self.offsets} - set(partitions))
        if unknown:
            raise BadCursor(
                f"cursor names partition {unknown[0]}; the topic has {len(partitions)} partitions"
            )

    def __str__(self) -> str:
        return ".".join(f"{p}-{o}" for p, o in self.offsets)

    def advanced(self, partition: int, offset: int) -> "Cursor":
        """The cursor after the message at (partition, offset)."""
        rest = [(p, o) for p, o in self.offsets if p != partition]
        return Cursor(tuple(sorted([*rest, (partition, offset + 1)])))


def _feed_item(partition: int, offset: int, value: bytes | None) -> dict[str, Any]:
    try:
        item: dict[str, Any] = parse_event(value or b"").model_dump(mode="json")
        return item
    except UnreadableEvent as exc:
        # Shown, never skipped silently: `rectrack verify` explains it.
        return {"unreadable": {"partition": partition, "offset": offset, "error": str(exc)}}


@asynccontextmanager
async def feed_consumer(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of its own for one feed request, closed however the request ends.

    It is stopped also when starting it failed (it may hold connections already) and when the
    request is cancelled: the stop is shielded, so a second cancellation cannot leave it open.
    """
    consumer = groupless_consumer(settings)
    try:
        await consumer.start()
        yield consumer
    finally:
        await asyncio.shield(consumer.stop())


class Feed:
    """Reads the events topic from a cursor with a consumer of its own (no group)."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic

    async def _position(self, cursor: Cursor) -> list[TopicPartition]:
        known = dict(cursor.offsets)
        partitions = await topic_partitions(self.consumer, self.topic)
        cursor.check_partitions(partitions)
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self.consumer.assign(tps)
        for tp in tps:
            self.consumer.seek(tp, known.get(tp.partition, 0))
        return tps

    async def page(
        self, cursor: Cursor, limit: int, *, seconds: float = PAGE_SECONDS
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Up to `limit` events after the cursor, and the cursor after them.

        The page ends at the log's end as it was when the page began, at `limit` events, or
        when `seconds` have passed, whichever comes first: a partition that yields nothing can
        never keep the request waiting. The cursor is exact either way.
        """
        deadline = time.monotonic() + seconds
        tps = await self._position(cursor)
        ends = await self.consumer.end_offsets(tps)
        known = dict(cursor.offsets)
        pending = [tp for tp in tps if known.get(tp.partition, 0) < ends[tp]]
        items: list[dict[str, Any]] = []
        while pending and len(items) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                log.info("feed_page_deadline", cursor=str(cursor), items=len(items))
                break
            batches = await self.consumer.getmany(
                *pending,
                timeout_ms=max(1, int(min(left, 1.0) * 1000)),
                max_records=limit - len(items),
            )
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue  # after the page's end: the next page starts there
                    items.append(_feed_item(tp.partition, record.offset, record.value))
                    cursor = cursor.advanced(tp.partition, record.offset)
            position = dict(cursor.offsets)
            pending = [tp for tp in pending if position.get(tp.partition, 0) < ends[tp]]
        return items, cursor

    async def stream(self, cursor: Cursor) -> AsyncIterator[str]:
        """Server-sent events from the cursor on, forever; each id is the cursor after it."""
        await self._position(cursor)
        while True:
            batches = await self.consumer.getmany(
                timeout_ms=int(HEARTBEAT_SECONDS * 1000), max_records=500
            )
            if not batches:
                yield ": keep-alive\n\n"
                continue
            for tp, records in batches.items():
                for record in records:
                    cursor = cursor.advanced(tp.partition, record.offset)
                    item = _feed_item(tp.partition, record.offset, record.value)
                    kind = item.get("type", "unreadable")
                    yield f"id: {cursor}\nevent: {kind}\ndata: {orjson.dumps(item).decode()}\n\n"
            await asyncio.sleep(0)
