"""The decider's memory: every stream's state and head, and the outcome of each command seen."""

from dataclasses import dataclass, field
from uuid import UUID

from aiokafka.structs import TopicPartition

from events.envelope import Envelope
from events.outcome import Outcome
from services.domain.evolve import evolve
from services.domain.state import AnyState

_OUTCOME_FIELDS = tuple(Outcome.model_fields)


def _compact(outcome: Outcome) -> tuple[object, ...]:
    return tuple(getattr(outcome, name) for name in _OUTCOME_FIELDS)


@dataclass
class DeciderState:
    """What the decider knows: every stream's state, and the outcome of each command seen."""

    streams: dict[str, AnyState] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)  # stream id -> hash of its last event
    # Each command's outcome as a plain tuple of its field values: as a model it kept 1.4 KB per
    # command, three quarters of the decider's memory (tracemalloc), most of it pydantic's own.
    outcomes: dict[UUID, tuple[object, ...]] = field(default_factory=dict)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def remember(self, outcome: Outcome) -> None:
        """Keep a command's outcome; the first one stands."""
        if outcome.command_id not in self.outcomes:  # fold has kept every accepted one already
            self.outcomes[outcome.command_id] = _compact(outcome)

    def outcome_of(self, command_id: UUID) -> Outcome | None:
        """The outcome a command already had, if any."""
        values = self.outcomes.get(command_id)
        return (
            None if values is None else Outcome(**dict(zip(_OUTCOME_FIELDS, values, strict=True)))
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
        )
        self.outcomes[envelope.command_id] = _compact(outcome)
        return outcome
