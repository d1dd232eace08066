"""A team system's client of the commands topic (`rectrack send`): sign, produce, await outcomes.

It does what any team system does, in any language (README, "Team systems"): it logs in to
Kafka as its team principal with the credentials file (infra/team_credentials.py), signs each
command's JSON document with the file's key (the signature covers the UTF-8 bytes of the
`payload` string exactly as embedded: events/signing.py), produces it onto the commands topic
keyed by its stream's partition key with the default (murmur2) partitioner, acks=all and
idempotence, and reads the outcomes topic in a consumer group of its own, `NAME.send-…`.

Lines are checked here first, as the decider would check them: a bad line is reported with
its number and fields, and not sent. A line's text is its payload exactly as written, unless
it has no `command_id`: then one is added (the document is written out again) so that its
outcome can be found. A line without `actor` acts as the key's principal; one that names
somebody else is sent as it is and refused by the decider (`actor_mismatch`).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from events.outcome import Outcome
from events.registry import parse_outcome
from events.streams import partition_key
from events.topics import Topics
from infra.kafka_security import group_prefix
from infra.team_credentials import TeamCredentials
from infra.tracing import TRACING, send_traced
from services.domain.commands import InvalidCommand, command_document, parse_command
from services.domain.idempotency import command_digest

log = structlog.get_logger(__name__)

# Checks a line's fields when it names no actor (the decider puts the key's principal there).
_STAND_IN = {"name": "team system", "team": "team system", "role": "viewer"}
MAX_RECORD_BYTES = 1_048_576  # as every producer of the commands topic (the broker's default)


@dataclass(frozen=True)
class Outgoing:
    """One command of a file, ready to sign: its line, id, stream and payload bytes."""

    line: int
    command_id: UUID
    stream_id: str
    payload: bytes
    digest: str  # what the decider's outcome for it says it answered (idempotency.py)


class BadLine(ValueError):
    """A line that is not sent; names the line and each field at fault."""

    def __init__(self, line: int, errors: Sequence[dict[str, str]]) -> None:
        self.line = line
        self.errors = list(errors)
        problems = "; ".join(f"{e['field']}: {e['reason']}" for e in self.errors)
        super().__init__(f"line {line}: {problems}")


def parse_send_line(number: int, raw: bytes) -> Outgoing:
    """The command one line holds, checked; BadLine naming the line and fields when it is not."""
    text = raw.strip()
    try:
        doc: Any = command_document(text)
    except InvalidCommand as exc:
        raise BadLine(number, exc.errors) from None
    if not isinstance(doc, dict):
        raise BadLine(number, [{"field": "(command)", "reason": "must be a JSON object"}])
    if doc.get("loaded_by") is not None:
        reason = "a team system's commands are its own: leave loaded_by out"
        raise BadLine(number, [{"field": "loaded_by", "reason": reason}])
    if doc.get("command_id") is None:
        doc = {**doc, "command_id": str(uuid4())}
        text = orjson.dumps(doc)
    try:
        checked = doc if doc.get("actor") is not None else {**doc, "actor": _STAND_IN}
        command = parse_command(checked)
    except InvalidCommand as exc:
        raise BadLine(number, exc.errors) from None
    return Outgoing(number, command.command_id, command.stream_id, text, command_digest(command))


def read_send_file(path: Path) -> tuple[list[Outgoing], list[BadLine]]:
    """The commands of an NDJSON file and its bad lines; blank lines are skipped.

    A command id used by an earlier line makes a later line bad: its outcome would be the
    earlier one's.
    """
    commands: list[Outgoing] = []
    bad: list[BadLine] = []
    first_line: dict[UUID, int] = {}
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                command = parse_send_line(number, raw)
            except BadLine as exc:
                bad.append(exc)
                continue
            earlier = first_line.setdefault(command.command_id, number)
            if earlier != number:
                reason = f"line {earlier} has this command_id already"
                bad.append(BadLine(number, [{"field": "command_id", "reason": reason}]))
                continue
            commands.append(command)
    return commands, bad


def answers(outcome: Outcome, command: Outgoing, key_id: str) -> bool:
    """Whether an outcome with this command's id is its answer.

    An outcome the decider tied to our key answers it if it is for the same payload (another
    key's outcome under the id is someone else's). A refusal that names no key (the signature
    did not verify, the key is unknown or revoked) cannot say whose command it refused, and is
    taken as this command's: a team key that does not verify any more gets nothing else.
    """
    if outcome.command_id != command.command_id:
        return False
    if outcome.key_id == key_id:
        return outcome.command_digest is None or outcome.command_digest == command.digest
    return outcome.key_id is None and outcome.principal is None and outcome.status == "rejected"


class TeamClient:
    """A team principal's producer of signed commands and reader of their outcomes."""

    def __init__(
        self, credentials: TeamCredentials, topics: Topics, *, group: str | None = None
    ) -> None:
        self.credentials = credentials
        self.topics = topics
        self.signer = credentials.signer()
        # A group of its own for each run: one shared by two runs at once would split the
        # outcomes' partitions between them. It commits nothing, so it goes when it leaves.
        self.group = group or f"{group_prefix(credentials.username)}send-{uuid4().hex[:12]}"
        options = credentials.kafka.client_options()
        self.producer = AIOKafkaProducer(
            **options,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=MAX_RECORD_BYTES,
        )
        self.outcome_reader = AIOKafkaConsumer(
            topics.outcomes,
            **options,
            group_id=self.group,
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )

    async def start(self, timeout: float = 60.0) -> None:
        """Log in, join the group and fix where outcomes are read from: their end now, before
        anything is sent. TimeoutError if the group gives no partitions in time."""
        try:
            await self.producer.start()
            await self.outcome_reader.start()
            deadline = time.monotonic() + timeout
            while not self.outcome_reader.assignment():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no partitions of {self.topics.outcomes} for {self.group}")
                await self.outcome_reader.getmany(timeout_ms=200)  # joins; nothing of ours yet
            for tp in self.outcome_reader.assignment():
                await self.outcome_reader.position(tp)
        except BaseException:
            await self.stop()  # a refused login leaves no client open
            raise

    async def stop(self) -> None:
        """Leave the group and disconnect."""
        await self.outcome_reader.stop()
        await self.producer.stop()

    async def send(self, commands: Iterable[Outgoing]) -> None:
        """Sign and produce each command, keyed by its stream; wait for every acknowledgement."""
        futures = [
            await (
                send_traced(
                    self.producer,
                    self.topics.commands,
                    self.signer.sign(c.payload),
                    key=partition_key(c.stream_id),
                    attributes={"messaging.message.id": str(c.command_id)},
                )
                if TRACING.on
                else self.producer.send(
                    self.topics.commands,
                    self.signer.sign(c.payload),
                    key=partition_key(c.stream_id),
                )
            )
            for c in commands
        ]
        await asyncio.gather(*futures)

    async def outcomes(
        self, commands: Sequence[Outgoing], *, timeout: float
    ) -> AsyncIterator[tuple[Outgoing, Outcome]]:
        """Each command's outcome as it arrives, until all came or the timeout passed."""
        waiting = {c.command_id: c for c in commands}
        deadline = time.monotonic() + timeout
        while waiting and (remaining := deadline - time.monotonic()) > 0:
            batches = await self.outcome_reader.getmany(timeout_ms=int(min(remaining, 1) * 1000))
            for records in batches.values():
                for record in records:
                    try:
                        outcome = parse_outcome(record.value or b"")
                    except ValueError:
                        log.warning("unreadable_outcome", offset=record.offset)
                        continue
                    command = waiting.get(outcome.command_id)
                    if command is not None and answers(outcome, command, self.signer.key_id):
                        del waiting[command.command_id]
                        yield command, outcome
