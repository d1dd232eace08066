"""What the decider needs of Kafka, as small Protocols: aiokafka in production, fakes in tests."""

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from aiokafka.structs import TopicPartition


class Appended(Protocol):
    """Where the broker put a record (aiokafka's RecordMetadata)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class EventProducer(Protocol):
    """Sends records; the returned future resolves once the broker has acknowledged one."""

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> "asyncio.Future[Appended]": ...


class LoggedRecord(Protocol):
    """A record read back from the log."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...


class LogReader(Protocol):
    """Reads chosen partitions from chosen offsets, with no consumer group."""

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[LoggedRecord]]: ...
