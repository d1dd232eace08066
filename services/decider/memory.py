"""The decider's memory: every stream's state and head, and the outcome of each command seen."""

import sys
from dataclasses import dataclass, field
from typing import cast
from uuid import UUID

from aiokafka.structs import TopicPartition

from events.envelope import Actor, Envelope
from events.outcome import Outcome, Principal
from services.domain.evolve import evolve
from services.domain.idempotency import is_reuse_answer, principal_of
from services.domain.state import AnyState

_OUTCOME_FIELDS = tuple(Outcome.model_fields)
_PRINCIPAL = _OUTCOME_FIELDS.index("principal")
_DIGEST = _OUTCOME_FIELDS.index("command_digest")
_STREAM = _OUTCOME_FIELDS.index("stream_id")
_KEY_ID = _OUTCOME_FIELDS.index("key_id")

PrincipalKey = tuple[str, str, str, Actor | None]


@dataclass
class DeciderState:
    """What the decider knows: every stream's state, and the outcome of each command seen."""

    streams: dict[str, AnyState] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)  # stream id -> hash of its last event
    # Each command's outcome as a plain tuple of its field values: as a model it kept 1.4 KB per
    # command, three quarters of the decider's memory (tracemalloc), most of it pydantic's own.
    # The tuple holds the command's claim too (principal, payload digest): the principal as
    # one instance shared by all of a sender's commands, the digest as 32 raw bytes.
    outcomes: dict[UUID, tuple[object, ...]] = field(default_factory=dict)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    principals: dict[PrincipalKey, Principal] = field(default_factory=dict)

    def principal(self, actor: Actor, loaded_by: Actor | None) -> Principal:
        """The shared Principal of this actor and loader (built once per sender)."""
        key = (actor.name, actor.team, actor.role, loaded_by)
        found = self.principals.get(key)
        if found is None:
            found = self.principals[key] = principal_of(actor, loaded_by)
        return found

    def _compact(self, outcome: Outcome) -> tuple[object, ...]:
        values = [getattr(outcome, name) for name in _OUTCOME_FIELDS]
        principal = outcome.principal
        if principal is not None:
            loaded_by = principal.loaded_by
            values[_PRINCIPAL] = self.principals.setdefault(
                (principal.name, principal.team, principal.role, loaded_by), principal
            )
        if outcome.command_digest is not None:
            values[_DIGEST] = bytes.fromhex(outcome.command_digest)
        if outcome.key_id is not None:  # one string per key, not one per command
            values[_KEY_ID] = sys.intern(outcome.key_id)
        return tuple(values)

    def remember(self, outcome: Outcome) -> None:
        """Keep an outcome as its command id's record; the first one stands.

        Two kinds of outcome are answers only, never records: the refusal of a reused id
        (it must not take the id from its first user), and an outcome that names no sender
        (a malformed message's, or one written before outcomes named their principal): no
        later command could prove to be its sender's, so keeping it would only let it squat.
        """
        if outcome.principal is None or is_reuse_answer(outcome):
            return
        if outcome.command_id not in self.outcomes:  # fold has kept every accepted one already
            self.outcomes[outcome.command_id] = self._compact(outcome)

    def outcome_of(self, command_id: UUID) -> Outcome | None:
        """The outcome a command already had, if any."""
        values = self.outcomes.get(command_id)
        if values is None:
            return None
        fields = dict(zip(_OUTCOME_FIELDS, values, strict=True))
        digest = fields["command_digest"]
        if isinstance(digest, bytes):
            fields["command_digest"] = digest.hex()
        return Outcome.model_validate(fields)

    def first_claim(
        self, command_id: UUID
    ) -> tuple[Principal | None, str | None, str | None] | None:
        """(principal, payload digest, stream id) of the command that first used this id."""
        values = self.outcomes.get(command_id)
        if values is None:
            return None
        digest = values[_DIGEST]
        return (
            cast(Principal | None, values[_PRINCIPAL]),
            digest.hex() if isinstance(digest, bytes) else None,
            cast(str | None, values[_STREAM]),
        )

    def fold(self, envelope: Envelope, command_type: str | None = None) -> Outcome:
        """Apply one appended event: the stream advances and its command counts as accepted."""
        self.streams[envelope.stream_id] = evolve(self.streams.get(envelope.stream_id), envelope)
        self.heads[envelope.stream_id] = envelope.hash
        outcome = Outcome(
            command_id=envelope.command_id,
            correlation_id=envelope.correlation_id,
            status="accepted",
            command_type=command_type,
            stream_id=envelope.stream_id,
            stream_version=envelope.stream_version,
            event_ids=(envelope.event_id,),
            recorded_at=envelope.recorded_at,
            principal=self.principal(envelope.actor, envelope.loaded_by),
            command_digest=envelope.command_digest,
            key_id=envelope.command_signature.key_id if envelope.command_signature else None,
        )
        self.outcomes[envelope.command_id] = self._compact(outcome)
        return outcome
