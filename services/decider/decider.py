"""The decider: state folded from the log, pure decide, durable append, outcome.

One decider owns each partition of the commands topic and, because the topics are
co-partitioned, is the single writer of the same partition of the events topic.
"""

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import orjson
import structlog
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from opentelemetry.trace import Span, SpanContext, StatusCode

from events.ed25519 import load_public_key, verify
from events.outcome import Outcome
from events.registry import (
    UnreadableEvent,
    dump_outcome,
    parse_event_doc,
    parse_outcome,
    seal_and_dump,
)
from events.seals import MAX_SEALED_HASHES, DeciderKeys, SealCheck, Sealer, with_seal
from events.signing import NotSigned, SignedCommand, parse_signed_command
from events.streams import partition_key
from events.topics import Message, Topics
from infra.retry import retry_delay
from infra.tracing import (
    TRACING,
    consuming_batch,
    consuming_message,
    send_traced,
)
from services.decider.memory import DeciderState
from services.decider.metrics import COMMANDS_ACCEPTED, COMMANDS_REJECTED, DEAD_LETTERS
from services.decider.ports import Appended, EventProducer, LogReader
from services.decider.verifier import BatchVerifier, Job
from services.domain.authentication import (
    ActorMismatch,
    Unauthenticated,
    claimed_command_id,
    command_of,
    misregistered_anchor,
    signing_key,
)
from services.domain.commands import Command, InvalidCommand
from services.domain.decide import Accepted, decide
from services.domain.envelopes import inspection_for, new_envelope
from services.domain.idempotency import Claim, command_digest, same_command
from services.domain.rejections import Reason
from services.domain.state import KeyState

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
IdFactory = Callable[[], UUID]


def _read_wire(value: bytes) -> SignedCommand | NotSigned:
    """The signed command a message holds, or why it holds none (raised later, in order)."""
    try:
        return parse_signed_command(value)
    except NotSigned as exc:
        return exc


@dataclass(frozen=True, slots=True)
class Decided:
    """An event decided in this batch, waiting to be sent with the batch's seals."""

    partition: int
    key: bytes
    hash: str
    value: bytes
    # The span of the command that decided it, when tracing: the event's record carries it on.
    trace: SpanContext | None = None


def _count(outcomes: Sequence[Outcome], dead_lettered: int) -> None:
    """The metrics of a confirmed batch: its outcomes by type or reason, its dead letters."""
    for outcome in outcomes:
        if outcome.status == "accepted":
            COMMANDS_ACCEPTED.labels(outcome.command_type or "unknown").inc()
        else:
            COMMANDS_REJECTED.labels(outcome.reason or "unknown").inc()
    if dead_lettered:
        DEAD_LETTERS.inc(dead_lettered)


def _describe(span: Span, outcome: Outcome, *, dead_lettered: bool) -> None:
    """A command's span says which command it was and what became of it."""
    span.set_attribute("rectrack.command_id", str(outcome.command_id))
    span.set_attribute("messaging.message.id", str(outcome.command_id))
    if outcome.correlation_id is not None:
        span.set_attribute("rectrack.correlation_id", str(outcome.correlation_id))
    if outcome.command_type is not None:
        span.set_attribute("rectrack.command_type", outcome.command_type)
    if outcome.stream_id is not None:
        span.set_attribute("rectrack.stream_id", outcome.stream_id)
    span.set_attribute("rectrack.outcome", outcome.status)
    if outcome.reason is not None:
        span.set_attribute("rectrack.reason", outcome.reason)
    if dead_lettered:  # a rejection is an answer; a message no one can act on is a failure
        span.set_status(StatusCode.ERROR, f"dead-lettered: {outcome.reason}")


def utc_now() -> datetime:
    """The system clock, in UTC."""
    return datetime.now(UTC)


class Decider:
    """Handles batches of command messages; all Kafka I/O of the write side is here."""

    def __init__(
        self,
        topics: Topics,
        producer: EventProducer,
        log_reader: LogReader,
        *,
        partitions: int,
        anchors: Mapping[str, KeyState] | None = None,
        verifier: BatchVerifier | None = None,
        sealer: Sealer,
        keys: DeciderKeys,
        clock: Clock = utc_now,
        new_id: IdFactory = uuid4,
    ) -> None:
        self.topics = topics
        self.producer = producer
        self.log_reader = log_reader
        self.partitions = partitions
        self.sealer = sealer
        self.keys = keys
        self.clock = clock
        self.new_id = new_id
        # Keys trusted by configuration (services/domain/authentication.py), by key id.
        self.anchors: Mapping[str, KeyState] = dict(anchors or {})
        self._public_keys: dict[bytes, Ed25519PublicKey] = {}
        # Verifies large batches' signatures in a helper process (None: all in this one).
        self.verifier = verifier
        self.state = DeciderState()
        self._seals = SealCheck(keys)
        self._unconfirmed: list[asyncio.Future[Appended]] = []
        # Dead letters written by the batch being decided; counted once it is confirmed.
        self._dead_lettered = 0
        self._decided: list[Decided] = []
        self._all_partitions = list(range(partitions))
        self._partitions_by_key: dict[bytes, int] = {}
        self._log_commands = log.is_enabled_for(logging.INFO)

    async def handle_durably(self, messages: Sequence[Message]) -> list[Outcome]:
        """Handle a batch, retrying while the broker is away; it must not end unhandled.

        A retry is safe: catching up on the log finds whatever the failed attempt appended, and
        those commands get their first outcome again instead of a second event.
        """
        attempt = 0
        while True:
            try:
                return await self.handle(messages)
            except (KafkaError, OSError) as exc:
                self._unconfirmed, self._decided = [], []
                delay = retry_delay(attempt)
                log.warning(
                    "decider_retry", error=str(exc)[:300], retry_in=delay, commands=len(messages)
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def handle(self, messages: Sequence[Message]) -> list[Outcome]:
        """Decide each message in order; every message gets exactly one outcome (see
        `_handle`). Traced, the batch has a span, and each command one in its own trace."""
        if TRACING.on:
            with consuming_batch(self.topics.commands, messages):
                return await self._handle(messages, self._handle_one_traced)
        return await self._handle(messages, self._handle_one)

    async def _handle(
        self,
        messages: Sequence[Message],
        handle_one: Callable[
            [Message, SignedCommand | NotSigned, tuple[int, bytes] | None],
            Awaitable[Outcome],
        ],
    ) -> list[Outcome]:
        """Decide each message in order; every message gets exactly one outcome.

        The whole batch is decided first; then its events are sent without waiting, in order
        (idempotent producer), the first on each partition carrying the seal over all of
        them there, and every outcome is published only after all of them are acknowledged,
        so "accepted" always means "appended". Should anything fail, what this batch folded into
        memory may not be in the log: the state is dropped and rebuilt from the log.

        Every partition is caught up on, not only the batch's: a command id is one key across
        all inspections, so the decider must have seen its use on any partition to refuse a
        reuse. With one decider (as `rectrack run` starts it) every partition is its own and
        its own writes need no re-reading, so this costs one ListOffsets call per batch.
        """
        self._dead_lettered = 0
        try:
            # The helper starts on the signatures while the catch-up waits for the broker: a
            # head start it needs on two busy cores. Its answers count only for the public
            # key a command's key still has at its turn, so what the catch-up folds is safe.
            wires = [_read_wire(m.value) for m in messages]
            jobs = await self._verify_beside(wires)
            await self.catch_up(self._all_partitions)
            outcomes = [
                await handle_one(m, wire, jobs.get(i))
                for i, (m, wire) in enumerate(zip(messages, wires, strict=True))
            ]
            if self.verifier is not None:
                self.verifier.finish()
            await self._send_sealed()
            await self._confirm(self.topics.events)
            for outcome in outcomes:
                await self._publish_outcome(outcome)
            await self._confirm(self.topics.outcomes)
            _count(outcomes, self._dead_lettered)
            return outcomes
        except BaseException:
            self.state, self._seals = DeciderState(), SealCheck(self.keys)
            self._unconfirmed, self._decided = [], []
            if self.verifier is not None:
                self.verifier.finish()
            raise

    async def _send_sealed(self) -> None:
        """Send the batch's events in order; the first on each partition carries its seal.

        A seal signs the hashes of every event of this batch on its partition, in log order,
        so a reader verifies one signature for all of them (events/seals.py). A partition
        with more events than a seal may list gets a seal per run of that many.
        """
        decided, self._decided = self._decided, []
        by_partition: dict[int, list[int]] = {}
        for i, event in enumerate(decided):
            by_partition.setdefault(event.partition, []).append(i)
        seals: dict[int, dict[str, Any]] = {}
        for partition, indices in by_partition.items():
            for start in range(0, len(indices), MAX_SEALED_HASHES):
                run = indices[start : start + MAX_SEALED_HASHES]
                seals[run[0]] = self.sealer.seal(partition, [decided[i].hash for i in run])
        for i, event in enumerate(decided):
            value = with_seal(event.value, seals[i]) if i in seals else event.value
            if event.trace is not None:  # with its command's trace context in its headers
                self._unconfirmed.append(
                    await send_traced(
                        self.producer,
                        self.topics.events,
                        value,
                        key=event.key,
                        partition=event.partition,
                        parent=event.trace,
                    )
                )
                continue
            self._unconfirmed.append(
                await self.producer.send(
                    self.topics.events, value, key=event.key, partition=event.partition
                )
            )

    async def _confirm(self, topic: str) -> None:
        """Wait for every pending send; remember how far our own writes reach."""
        pending, self._unconfirmed = self._unconfirmed, []
        # Awaiting each future in turn costs less than gather's callbacks, fails the same way.
        for future in pending:
            metadata = await future
            if metadata.topic == topic:  # our own writes need no re-reading
                tp = TopicPartition(metadata.topic, metadata.partition)
                self.state.next_offsets[tp] = max(
                    self.state.next_offsets.get(tp, 0), metadata.offset + 1
                )

    async def catch_up(self, partitions: Sequence[int]) -> int:
        """Fold what was appended to these partitions since we last read them (by anyone).

        Events give each stream's state and the accepted command ids with their claims; the
        outcomes topic gives the rejected ones, so a repeated command gets its first outcome,
        and a reused id its refusal, even after a restart.
        """
        folded = await self._read_up_to_end(self.topics.events, partitions, self._fold_event)
        folded += await self._read_up_to_end(self.topics.outcomes, partitions, self._fold_outcome)
        return folded

    async def _read_up_to_end(
        self, topic: str, partitions: Sequence[int], fold: Callable[[int, int, bytes], None]
    ) -> int:
        positions = self.state.next_offsets
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await self.log_reader.end_offsets(tps)
        behind = [tp for tp in tps if positions.get(tp, 0) < ends[tp]]
        if not behind:
            return 0
        self.log_reader.assign(behind)
        for tp in behind:
            self.log_reader.seek(tp, positions.get(tp, 0))
        folded = 0
        while any(positions.get(tp, 0) < ends[tp] for tp in behind):
            batches = await self.log_reader.getmany(*behind, timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    fold(tp.partition, record.offset, record.value or b"")
                    positions[tp] = record.offset + 1
                    folded += 1
        log.info(
            "decider_caught_up",
            topic=topic,
            partitions=[tp.partition for tp in behind],
            messages=folded,
        )
        return folded

    def _fold_event(self, partition: int, offset: int, value: bytes) -> None:
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            log.error("unreadable_event_in_log", partition=partition, offset=offset, error=str(exc))
            return
        # Only what a decider sealed is a fact: a forged event folded here would change what
        # is decided, and link the stream's next genuine event to it, which the projector
        # would then refuse as not continuing the chain.
        refusal = self._seals.refusal(doc, partition, offset)
        if refusal is not None:
            log.error(
                "unauthenticated_event_in_log", partition=partition, offset=offset, error=refusal
            )
            return
        try:
            self.state.fold(parse_event_doc(doc))
        except UnreadableEvent as exc:
            # Never decide on a fact we cannot read; `rectrack verify` reports it.
            log.error("unreadable_event_in_log", partition=partition, offset=offset, error=str(exc))

    def _fold_outcome(self, partition: int, offset: int, value: bytes) -> None:
        try:
            outcome = parse_outcome(value)
        except ValueError as exc:
            log.error("unreadable_outcome", partition=partition, offset=offset, error=str(exc))
            return
        if outcome.status == "rejected":
            self.state.remember(outcome)  # which keeps neither reuse refusals nor anonymous ones

    async def _verify_beside(
        self, wires: Sequence[SignedCommand | NotSigned]
    ) -> dict[int, tuple[int, bytes]]:
        """Hand the batch's signatures to the helper process, for keys known at its start.

        Returns, per message index, (job index, public key): the helper's answer counts only
        if the key the command names still has that public key when the command's turn
        comes (services/decider/verifier.py).
        """
        if self.verifier is None:
            return {}
        jobs: list[Job] = []
        placed: dict[int, tuple[int, bytes]] = {}
        for index, wire in enumerate(wires):
            if isinstance(wire, NotSigned):
                continue
            try:
                key = signing_key(wire.key_id, self.state.streams, self.anchors)
            except Unauthenticated:
                continue  # unknown now; perhaps registered earlier in this batch: see then
            placed[index] = (len(jobs), key.public_key)
            jobs.append((key.public_key, wire.signature, wire.payload.encode("utf-8")))
        return placed if await self.verifier.submit(jobs) else {}

    async def _handle_one(
        self,
        message: Message,
        wire: SignedCommand | NotSigned,
        job: tuple[int, bytes] | None = None,
    ) -> Outcome:
        try:
            if isinstance(wire, NotSigned):
                raise wire
            key = signing_key(wire.key_id, self.state.streams, self.anchors)
            verified = None
            if self.verifier is not None and job is not None and job[1] == key.public_key:
                verified = self.verifier.verified(job[0])
            if verified is None:
                verified = self._verifies(wire, key)
            if not verified:
                raise Unauthenticated(f"the signature does not verify with key {key.key_id}")
            command = command_of(wire, key)
        except (NotSigned, Unauthenticated) as exc:
            return await self._refuse(message, Reason.UNAUTHENTICATED, str(exc))
        except ActorMismatch as exc:
            return await self._refuse(
                message, Reason.ACTOR_MISMATCH, str(exc), exc.command, key.key_id
            )
        except InvalidCommand as exc:
            return await self._reject_malformed(message, exc)
        if not self._log_commands:  # nothing logs a command's lines below info but a warning
            return await self._handle_command(message, command, wire)
        # Every line logged while this command is handled names it (infra/logs.py).
        bound = structlog.contextvars.bind_contextvars(
            command_id=str(command.command_id),
            correlation_id=str(command.correlation_id or command.command_id),
        )
        try:
            return await self._handle_command(message, command, wire)
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    async def _handle_one_traced(
        self,
        message: Message,
        wire: SignedCommand | NotSigned,
        job: tuple[int, bytes] | None = None,
    ) -> Outcome:
        """`_handle_one` under a span in the command's trace; the events it decides carry
        that span's context on to the projector."""
        with consuming_message(self.topics.commands, message) as span:
            decided, dead_lettered = len(self._decided), self._dead_lettered
            outcome = await self._handle_one(message, wire, job)
            context = span.get_span_context()
            for i in range(decided, len(self._decided)):
                self._decided[i] = replace(self._decided[i], trace=context)
            _describe(span, outcome, dead_lettered=self._dead_lettered > dead_lettered)
            return outcome

    def _verifies(self, signed: SignedCommand, key: KeyState) -> bool:
        public = self._public_keys.get(key.public_key)
        if public is None:  # loaded once per key, not per command
            public = self._public_keys[key.public_key] = load_public_key(key.public_key)
        return verify(public, signed.signature, signed.payload.encode("utf-8"))

    async def _handle_command(
        self, message: Message, command: Command, signed: SignedCommand
    ) -> Outcome:
        # A command's stream id is derived anew on each read; derive it once per command.
        stream_id = command.stream_id
        claim = Claim(
            self.state.principal(command.actor, command.loaded_by), command_digest(command)
        )
        first = self.state.first_claim(command.command_id)
        if first is None:
            outcome = await self._decide(command, stream_id, message, claim, signed)
            self.state.remember(outcome)
            self._log_command("command_decided", command, stream_id, outcome)
            return outcome
        if same_command(first, claim, stream_id) and (
            repeated := self.state.outcome_of(command.command_id)
        ):
            self._log_command("command_repeated", command, stream_id, repeated)
            return repeated
        # Another sender, or another payload, under a taken id: refused, not remembered, so
        # the id's first record (and the outcome its sender polls) stands.
        log.warning(
            "command_id_reused",
            command_id=str(command.command_id),
            correlation_id=str(command.correlation_id or command.command_id),
            command_type=command.type,
            stream_id=stream_id,
            sender=f"{command.actor.name} ({command.actor.team}, {command.actor.role})",
            key_id=signed.key_id,
        )
        return self._rejected(
            command,
            Reason.COMMAND_ID_REUSED,
            f"command_id {command.command_id} is already taken by another command (another "
            "sender's, or one with another payload); nothing was appended: send this command "
            "with a new command_id",
            claim,
            signed.key_id,
        )

    def _log_command(self, event: str, command: Command, stream_id: str, outcome: Outcome) -> None:
        # Below info (as in benchmarks) even building the fields cost a few % per command.
        if not self._log_commands:
            return
        log.info(  # command_id and correlation_id are bound around the command (_handle_one)
            event,
            command_type=command.type,
            stream_id=stream_id,
            status=outcome.status,
            reason=outcome.reason,
            key_id=outcome.key_id,  # who signed it, for the audit trail of the logs
        )

    async def _decide(
        self,
        command: Command,
        stream_id: str,
        message: Message,
        claim: Claim,
        signed: SignedCommand,
    ) -> Outcome:
        home = self.home_partition(stream_id)
        if home != message.partition:
            return self._rejected(
                command,
                Reason.INVALID_COMMAND,
                f"command for {stream_id} arrived on partition {message.partition}; "
                f"key it by {partition_key(stream_id).decode()!r} (partition {home})",
                claim,
                signed.key_id,
            )
        stream = self.state.streams.get(stream_id)
        verdict = misregistered_anchor(command, self.anchors) or decide(
            command,
            stream=stream,
            inspection=inspection_for(self.state.streams, command, stream_id),
            today=self._today(),
        )
        if not isinstance(verdict, Accepted):
            return self._rejected(command, verdict.reason, verdict.detail, claim, signed.key_id)
        unsealed = new_envelope(
            command,
            stream_id,
            verdict,
            stream,
            event_id=self.new_id(),
            recorded_at=self.clock(),
            command_digest=claim.digest,
            command_signature=signed.as_recorded(),
        )
        envelope, value = seal_and_dump(unsealed, self.state.heads.get(stream_id))
        # Sent with the batch's seal once the whole batch is decided; see handle().
        self._decided.append(Decided(home, partition_key(stream_id), envelope.hash, value))
        # The next command of this batch sees it.
        return self.state.fold(envelope, command.type)

    def home_partition(self, stream_id: str) -> int:
        """The partition the producers' default partitioner gives this stream's key."""
        key = partition_key(stream_id)
        partition = self._partitions_by_key.get(key)
        if partition is None:  # murmur2 in pure Python: once per key, not per command
            all_partitions = list(range(self.partitions))
            partition = int(DefaultPartitioner()(key, all_partitions, all_partitions))
            self._partitions_by_key[key] = partition
        return partition

    def _today(self) -> date:
        return self.clock().date()

    def _rejected(
        self, command: Command, reason: Reason, detail: str, claim: Claim, key_id: str
    ) -> Outcome:
        return Outcome(
            command_id=command.command_id,
            correlation_id=command.correlation_id or command.command_id,
            status="rejected",
            command_type=command.type,
            stream_id=command.stream_id,
            reason=reason.value,
            detail=detail,
            recorded_at=self.clock(),
            principal=claim.principal,
            command_digest=claim.digest,
            key_id=key_id,
        )

    async def _refuse(
        self,
        message: Message,
        reason: Reason,
        detail: str,
        command: Command | None = None,
        key_id: str | None = None,
    ) -> Outcome:
        """A message refused for who sent it: dead-lettered, answered, nothing appended.

        The outcome names no sender (no principal), so it is never a record of its command
        id: an unsigned or forged message cannot take an id from, nor answer, the real sender.
        """
        command_id = (
            command.command_id if command is not None else claimed_command_id(message.value)
        ) or self._position_id(message)
        outcome = Outcome(
            command_id=command_id,
            correlation_id=command.correlation_id if command is not None else None,
            status="rejected",
            command_type=command.type if command is not None else None,
            stream_id=command.stream_id if command is not None else None,
            reason=reason.value,
            detail=detail[:2000],
            recorded_at=self.clock(),
            key_id=key_id,
        )
        await self._dead_letter(message, f"{reason.value}: {detail}")
        log.warning(
            "command_refused",
            reason=reason.value,
            command_id=str(command_id),
            correlation_id=str(command.correlation_id or command_id) if command else None,
            key_id=key_id,
            partition=message.partition,
            offset=message.offset,
            detail=detail[:500],
        )
        return outcome

    def _position_id(self, message: Message) -> UUID:
        """A stable id for a message that has none, so a redelivery reuses it."""
        return uuid5(NAMESPACE_URL, f"{self.topics.commands}/{message.partition}/{message.offset}")

    async def _reject_malformed(self, message: Message, exc: InvalidCommand) -> Outcome:
        command_id = exc.command_id or self._position_id(message)
        outcome = Outcome(
            command_id=command_id,
            status="rejected",
            reason=Reason.INVALID_COMMAND.value,
            detail=str(exc)[:2000],
            recorded_at=self.clock(),
        )
        await self._dead_letter(message, str(exc))
        log.warning(
            "command_malformed",
            command_id=str(command_id),
            partition=message.partition,
            offset=message.offset,
            error=str(exc)[:500],
        )
        return outcome

    async def _dead_letter(self, message: Message, reason: str) -> None:
        record = {
            "topic": self.topics.commands,
            "partition": message.partition,
            "offset": message.offset,
            "reason": reason[:2000],
            "recorded_at": self.clock().isoformat(),
            "value_base64": base64.b64encode(message.value[:1_000_000]).decode(),
        }
        self._unconfirmed.append(
            await self.producer.send(self.topics.dead_letters, orjson.dumps(record))
        )
        self._dead_lettered += 1

    async def _publish_outcome(self, outcome: Outcome) -> None:
        key, partition = None, None
        if outcome.stream_id:
            # The partition the key gives (topics are co-partitioned), without hashing it again.
            key, partition = (
                partition_key(outcome.stream_id),
                self.home_partition(outcome.stream_id),
            )
        self._unconfirmed.append(
            await self.producer.send(
                self.topics.outcomes, dump_outcome(outcome), key=key, partition=partition
            )
        )
