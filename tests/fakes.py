"""In-memory fakes of the decider's ports: one log that is both its producer and its reader."""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka.structs import TopicPartition

from services.decider.ports import Appended, LoggedRecord


@dataclass(frozen=True)
class Record:
    """A record as the fake log keeps it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class BrokerAway(ConnectionError):
    """The fake broker refuses a send, as a real one does when it is down."""


@dataclass
class InMemoryLog:
    """Partitions of topics as lists. Sends are acknowledged at once unless `refuse_sends`."""

    partitions: int
    records: dict[TopicPartition, list[Record]] = field(default_factory=dict)
    refuse_sends: int = 0  # the next N sends fail, as when the broker goes away mid-batch
    _assigned: list[TopicPartition] = field(default_factory=list)
    _positions: dict[TopicPartition, int] = field(default_factory=dict)

    def topic(self, name: str) -> list[Record]:
        """Every record of a topic, partition by partition."""
        return [r for tp, rs in sorted(self.records.items()) if tp.topic == name for r in rs]

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> "asyncio.Future[Appended]":
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        if self.refuse_sends:
            self.refuse_sends -= 1
            future.set_exception(BrokerAway("broker away"))
            return future
        tp = TopicPartition(topic, partition if partition is not None else 0)
        records = self.records.setdefault(tp, [])
        record = Record(topic, tp.partition, len(records), key, value, tuple(headers or ()))
        records.append(record)
        future.set_result(record)
        return future

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.records.get(tp, [])) for tp in partitions}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._positions[partition] = offset

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[LoggedRecord]]:
        batches: dict[TopicPartition, Sequence[LoggedRecord]] = {}
        for tp in partitions or self._assigned:
            start = self._positions.get(tp, 0)
            batch = self.records.get(tp, [])[start : start + (max_records or 500)]
            if batch:
                batches[tp] = batch
                self._positions[tp] = start + len(batch)
        return batches
