"""Send commands to the commands topic and wait for their outcomes (API, load, demo)."""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from uuid import UUID

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from events.outcome import Outcome
from events.registry import parse_outcome
from events.streams import partition_key
from infra.kafka_clients import durable_producer, reader, topic_partitions
from infra.settings import Settings
from services.commands import Command, dump_command

Progress = Callable[[int, int], None]
log = structlog.get_logger(__name__)
KEEP_RECENT = 50_000


class OutcomeBook:
    """The outcomes a process may still be asked for, in memory that does not grow with the log.

    Outcomes of commands this process sent and has not yet collected are held until collected;
    of the others only the most recent `keep_recent` are kept (for status polls).
    """

    def __init__(self, keep_recent: int = KEEP_RECENT) -> None:
        self.keep_recent = keep_recent
        self._expected: set[UUID] = set()
        self._held: dict[UUID, Outcome] = {}
        self._recent: OrderedDict[UUID, Outcome] = OrderedDict()

    def expect(self, command_ids: Iterable[UUID]) -> None:
        """Hold these commands' outcomes, already arrived or to come, until released."""
        for cid in command_ids:
            self._expected.add(cid)
            if cid in self._recent:
                self._held[cid] = self._recent.pop(cid)

    def release(self, command_ids: Iterable[UUID]) -> None:
        """Stop holding these outcomes: they join the recent ones."""
        for cid in command_ids:
            self._expected.discard(cid)
            if cid in self._held:
                self._remember(cid, self._held.pop(cid))

    def add(self, outcome: Outcome) -> None:
        """Record an outcome; the first one seen for a command stands."""
        cid = outcome.command_id
        if cid in self._held or cid in self._recent:
            return
        if cid in self._expected:
            self._held[cid] = outcome
        else:
            self._remember(cid, outcome)

    def get(self, command_id: UUID) -> Outcome | None:
        """The outcome of a command, if this process knows it."""
        return self._held.get(command_id) or self._recent.get(command_id)

    def known(self, command_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these commands have a known outcome."""
        return {cid for cid in command_ids if cid in self._held or cid in self._recent}

    def forget(self, command_id: UUID) -> None:
        """Drop a known outcome (so a resent command's outcome is awaited afresh)."""
        self._held.pop(command_id, None)
        self._recent.pop(command_id, None)

    def __len__(self) -> int:
        return len(self._held) + len(self._recent)

    def _remember(self, cid: UUID, outcome: Outcome) -> None:
        self._recent[cid] = outcome
        while len(self._recent) > self.keep_recent:
            self._recent.popitem(last=False)


class CommandGateway:
    """A producer for commands and a reader of outcomes, opened once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer = durable_producer(settings)
        self.outcome_reader: AIOKafkaConsumer = reader(settings)
        self.outcomes = OutcomeBook()
        # The ids each wait_for still misses: the pump strikes arrivals off, so a waiter never
        # rescans what it awaits (that was quadratic in a large load).
        self._missing: list[set[UUID]] = []
        self._arrived = asyncio.Condition()
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, and follow the outcomes topic from its current end."""
        await self.producer.start()
        await self.outcome_reader.start()
        topic = self.settings.topics.outcomes
        partitions = await topic_partitions(self.outcome_reader, topic)
        if not partitions:
            raise RuntimeError(f"topic {topic} does not exist; run `rectrack topics create`")
        tps = [TopicPartition(topic, p) for p in partitions]
        self.outcome_reader.assign(tps)
        await self.outcome_reader.seek_to_end(*tps)
        for tp in tps:  # resolve the end positions now, before any command is sent
            await self.outcome_reader.position(tp)
        self._pump = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        """Disconnect."""
        if self._pump:
            self._pump.cancel()
        await self.outcome_reader.stop()
        await self.producer.stop()

    async def _follow(self) -> None:
        while True:
            try:
                batches = await self.outcome_reader.getmany(timeout_ms=500, max_records=5000)
            except KafkaError as exc:  # the broker is away: keep following once it is back
                log.warning("outcomes_unreachable", error=str(exc)[:200])
                await asyncio.sleep(1)
                continue
            if not batches:
                continue
            async with self._arrived:
                for records in batches.values():
                    for record in records:
                        outcome = parse_outcome(record.value)
                        self.outcomes.add(outcome)
                        for missing in self._missing:
                            missing.discard(outcome.command_id)
                self._arrived.notify_all()

    async def send(self, commands: Sequence[Command]) -> None:
        """Append commands to the commands topic, keyed by inspection; wait for the broker's ack.

        Their outcomes are held until `wait_for` collects them.
        """
        self.outcomes.expect(c.command_id for c in commands)
        futures = [
            await self.producer.send(
                self.settings.topics.commands,
                dump_command(c),
                key=partition_key(c.stream_id),
            )
            for c in commands
        ]
        await asyncio.gather(*futures)

    async def send_raw(self, key: bytes | None, value: bytes) -> None:
        """Append raw bytes to the commands topic (for other systems' producers and tests)."""
        await self.producer.send_and_wait(self.settings.topics.commands, value, key=key)

    async def wait_for(
        self, command_ids: Sequence[UUID], *, timeout: float, progress: Progress | None = None
    ) -> dict[UUID, Outcome]:
        """Outcomes of these commands that arrive within the timeout; then they are released."""
        wanted = set(command_ids)
        self.outcomes.expect(wanted)
        missing = wanted - self.outcomes.known(wanted)
        self._missing.append(missing)
        try:
            await self._until_none_missing(
                missing, len(wanted), time.monotonic() + timeout, progress
            )
            # Collected before the release: released outcomes may be evicted at once.
            return {cid: o for cid in wanted - missing if (o := self.outcomes.get(cid))}
        finally:
            self._missing = [m for m in self._missing if m is not missing]
            self.outcomes.release(wanted)

    async def _until_none_missing(
        self, missing: set[UUID], wanted: int, deadline: float, progress: Progress | None
    ) -> None:
        async with self._arrived:
            while True:
                if progress:
                    progress(wanted - len(missing), wanted)
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(self._arrived.wait(), timeout=remaining)
                except TimeoutError:
                    continue

    async def submit(
        self,
        commands: Sequence[Command],
        *,
        timeout: float = 30.0,
        progress: Progress | None = None,
    ) -> dict[UUID, Outcome]:
        """Send commands and wait for their outcomes."""
        await self.send(commands)
        return await self.wait_for(
            [c.command_id for c in commands], timeout=timeout, progress=progress
        )
