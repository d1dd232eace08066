"""The event feed for subscribers: pages and a stream from a resumable cursor.

A cursor is the next offset of every partition of the events topic ("0-12.1-40.2-3"), so a
subscriber that stops anywhere and resumes from its last cursor misses nothing and sees
nothing twice. Events come out upcast to their current schema_version.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.registry import UnreadableEvent, parse_event
from infra.kafka_clients import topic_partitions

HEARTBEAT_SECONDS = 15.0


class BadCursor(ValueError):
    """A cursor that is not of the form partition-offset[.partition-offset...]."""


@dataclass(frozen=True)
class Cursor:
    """Next offset per partition; partitions not named start at 0."""

    offsets: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        """Read a cursor from a query parameter or Last-Event-ID; empty means the beginning."""
        if not text:
            return cls()
        try:
            pairs = [part.split("-") for part in text.split(".")]
            offsets = tuple(sorted((int(p), int(o)) for p, o in pairs))
        except ValueError as exc:
            raise BadCursor(f"cursor {text!r} is not partition-offset pairs") from exc
        if any(p < 0 or o < 0 for p, o in offsets):
            raise BadCursor(f"cursor {text!r} has a negative partition or offset")
        return cls(offsets)

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


class Feed:
    """Reads the events topic from a cursor with a consumer of its own (no group)."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic

    async def _position(self, cursor: Cursor) -> list[TopicPartition]:
        known = dict(cursor.offsets)
        tps = [
            TopicPartition(self.topic, p) for p in await topic_partitions(self.consumer, self.topic)
        ]
        self.consumer.assign(tps)
        for tp in tps:
            self.consumer.seek(tp, known.get(tp.partition, 0))
        return tps

    async def page(self, cursor: Cursor, limit: int) -> tuple[list[dict[str, Any]], Cursor]:
        """Up to `limit` events after the cursor, and the cursor after them."""
        tps = await self._position(cursor)
        ends = await self.consumer.end_offsets(tps)
        known = dict(cursor.offsets)
        pending = [tp for tp in tps if known.get(tp.partition, 0) < ends[tp]]
        items: list[dict[str, Any]] = []
        while pending and len(items) < limit:
            batches = await self.consumer.getmany(
                *pending, timeout_ms=1000, max_records=limit - len(items)
            )
            for tp, records in batches.items():
                for record in records:
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
