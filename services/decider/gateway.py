"""Send commands to the commands topic and wait for their outcomes (API, load, demo).

Every command is signed with the gateway's key (services/decider/keys.py): the decider then
takes the command's actor as given, because the API and the CLI authenticated it themselves
(a bearer token; the author of a load file and the admin who loads it).
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError

from events.outcome import Outcome, Principal
from events.registry import parse_outcome
from events.signing import Signer
from events.streams import partition_key
from infra.kafka_clients import durable_producer, groupless_consumer, topic_partitions
from infra.settings import Settings
from infra.tracing import TRACING, send_traced
from services.decider.keys import gateway_signer, self_registration_message
from services.decider.outcome_book import KEEP_RECENT, OutcomeBook
from services.domain.commands import Command, dump_command
from services.domain.idempotency import Claim, answers, claim_of, principal_of

DecidedProgress = Callable[[int, int], None]  # (decided, sent)
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SignedCommands:
    """Commands with their records as the gateway sends them: partition key, signed bytes."""

    commands: Sequence[Command]
    records: list[tuple[bytes, bytes]]


class CommandGateway:
    """A producer for commands and a reader of outcomes, opened once per process."""

    def __init__(self, settings: Settings, signer: Signer | None = None) -> None:
        self.settings = settings
        self.signer = signer or gateway_signer(settings)
        self.producer: AIOKafkaProducer = durable_producer(settings)
        self.outcome_reader: AIOKafkaConsumer = groupless_consumer(settings)
        self.outcomes = OutcomeBook()
        # Who sent each recent command through this process, so a status poll can tell "still
        # pending" from "unknown" (bounded like the outcome book).
        self._senders: OrderedDict[UUID, Principal] = OrderedDict()
        # The ids each wait_for still misses, with the claim an outcome must answer: the pump
        # strikes arrivals off, so a waiter never rescans what it awaits (that was quadratic in
        # a large load).
        self._missing: list[dict[UUID, Claim | None]] = []
        self._arrived = asyncio.Condition()
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, register the gateway's key, and follow the outcomes topic from its end.

        The registration (services/domain/authentication.py) is sent at every start, always
        the same command: the decider appends it once, for a key it trusts as an anchor, so
        the log names the key before (or beside) the first command it signs.
        """
        await self.producer.start()
        key, value = self_registration_message(self.signer, "gateway")
        await self.producer.send_and_wait(self.settings.topics.commands, value, key=key)
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
                            cid = outcome.command_id
                            if cid in missing and answers(outcome, missing[cid]):
                                del missing[cid]
                self._arrived.notify_all()

    def sign(self, commands: Sequence[Command]) -> SignedCommands:
        """The records `send` would append for these commands, signed with the gateway's key.

        For a caller that signs ahead of sending (the benchmark, which measures the decider and
        keeps the gateway's signing, 26 µs per command, out of its clock).
        """
        return SignedCommands(
            commands,
            [(partition_key(c.stream_id), self.signer.sign(dump_command(c))) for c in commands],
        )

    async def send(
        self, commands: Sequence[Command] | SignedCommands, *, ack_timeout: float | None = None
    ) -> None:
        """Append commands to the commands topic, keyed by inspection; wait for the broker's ack.

        Their outcomes are held until `wait_for` collects them. With `ack_timeout`, a log that
        has not acknowledged them all within that many seconds (no leader, too few replicas in
        sync) raises KafkaTimeoutError: not acknowledged, so the caller may say "try again" and
        the client resend with the same command ids (a late append is then answered as a
        repeat, never doubled).
        """
        signed = commands if isinstance(commands, SignedCommands) else self.sign(commands)
        commands = signed.commands
        self.outcomes.expect(c.command_id for c in commands)
        for c in commands:
            self._senders[c.command_id] = principal_of(c.actor, c.loaded_by)
        while len(self._senders) > KEEP_RECENT:
            self._senders.popitem(last=False)
        loop = asyncio.get_running_loop()
        deadline = None if ack_timeout is None else loop.time() + ack_timeout
        futures = []
        for c, (key, value) in zip(commands, signed.records, strict=True):
            sending = (
                self._send_traced(c, key, value)
                if TRACING.on
                else self.producer.send(self.settings.topics.commands, value, key=key)
            )
            if deadline is not None:  # the producer may wait for a partition leader first
                sending = asyncio.wait_for(sending, max(0.0, deadline - loop.time()))
            try:
                futures.append(await sending)
            except TimeoutError:
                raise _not_acknowledged(ack_timeout) from None
        if deadline is None:
            await asyncio.gather(*futures)
            return
        # `wait`, not `wait_for`: the producer's own futures are never cancelled under it.
        _, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
        if pending:
            raise _not_acknowledged(ack_timeout)
        for future in futures:
            future.result()

    async def _send_traced(
        self, command: Command, key: bytes, value: bytes
    ) -> "asyncio.Future[Any]":
        """Send one signed command under a producer span (a child of the HTTP request's, in the
        API), its context in the record's headers: the decider continues the trace from there."""
        return await send_traced(
            self.producer,
            self.settings.topics.commands,
            value,
            key=key,
            attributes=command_attributes(command),
        )

    def sent_by(self, command_id: UUID, principal: Principal) -> bool:
        """Whether this principal sent this command through this process (recently)."""
        return self._senders.get(command_id) == principal

    async def send_raw(self, key: bytes | None, value: bytes) -> None:
        """Append raw bytes, unsigned, to the commands topic (tests of what others may send)."""
        await self.producer.send_and_wait(self.settings.topics.commands, value, key=key)

    async def wait_for(
        self,
        commands: Sequence[Command | UUID],
        *,
        timeout: float,
        progress: DecidedProgress | None = None,
    ) -> dict[UUID, Outcome]:
        """Outcomes of these commands that arrive within the timeout; then they are released.

        A command is answered only by an outcome for its own sender and payload (another
        sender's outcome under the same id is not its answer: services/domain/idempotency.py).
        A bare command id, of a command sent elsewhere, is answered by the id's real outcome.
        """
        wanted: dict[UUID, Claim | None] = {}
        for c in commands:
            if isinstance(c, UUID):
                wanted.setdefault(c, None)
            else:  # the first command with an id stands for it, as the decider sees it
                wanted.setdefault(c.command_id, claim_of(c))
        self.outcomes.expect(wanted)
        missing = {
            cid: claim for cid, claim in wanted.items() if self.outcomes.get(cid, claim) is None
        }
        self._missing.append(missing)
        try:
            await self._until_none_missing(
                missing, len(wanted), time.monotonic() + timeout, progress
            )
            # Collected before the release: released outcomes may be evicted at once.
            return {
                cid: o
                for cid, claim in wanted.items()
                if cid not in missing and (o := self.outcomes.get(cid, claim))
            }
        finally:
            self._missing = [m for m in self._missing if m is not missing]
            self.outcomes.release(wanted)

    async def _until_none_missing(
        self,
        missing: dict[UUID, Claim | None],
        wanted: int,
        deadline: float,
        progress: DecidedProgress | None,
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
        progress: DecidedProgress | None = None,
        ack_timeout: float | None = None,
    ) -> dict[UUID, Outcome]:
        """Send commands and wait for their outcomes (see `send` for `ack_timeout`)."""
        await self.send(commands, ack_timeout=ack_timeout)
        return await self.wait_for(commands, timeout=timeout, progress=progress)


def command_attributes(command: Command) -> dict[str, str]:
    """The attributes of a command's producer span: which command, of which conversation."""
    return {
        "messaging.message.id": str(command.command_id),
        "rectrack.command_id": str(command.command_id),
        "rectrack.correlation_id": str(command.correlation_id or command.command_id),
        "rectrack.command_type": command.type,
    }


def _not_acknowledged(seconds: float | None) -> KafkaTimeoutError:
    return KafkaTimeoutError(f"the log did not acknowledge the commands within {seconds} s")
