"""An in-memory decider for unit tests: decide, wrap, evolve; no I/O."""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from uuid import uuid4

from events.envelope import Envelope
from events.registry import event_type_name
from events.streams import inspection_of
from services.commands import Command
from services.domain.decide import Accepted, Verdict, decide
from services.domain.evolve import evolve
from services.domain.state import AnyState, InspectionState

TODAY = date(2024, 9, 18)


class World:
    """The decider's view, built by deciding and folding commands one by one."""

    def __init__(self) -> None:
        self.streams: dict[str, AnyState] = {}
        self.log: list[Envelope] = []

    def run(self, cmd: Command, today: date = TODAY) -> Verdict:
        stream = self.streams.get(cmd.stream_id)
        insp_id = inspection_of(cmd.stream_id) or getattr(cmd.data, "inspection_id", None)
        inspection = self.streams.get(insp_id) if insp_id else None
        verdict = decide(
            cmd,
            stream=stream,
            inspection=inspection if isinstance(inspection, InspectionState) else None,
            today=today,
        )
        if isinstance(verdict, Accepted):
            envelope = Envelope(
                event_id=uuid4(),
                type=event_type_name(verdict.event),
                stream_id=cmd.stream_id,
                stream_version=(stream.version if stream else 0) + 1,
                effective_date=verdict.effective_date,
                recorded_at=datetime.now(UTC),
                command_id=cmd.command_id,
                correlation_id=cmd.command_id,
                actor=cmd.actor,
                data=verdict.event,
            )
            self.streams[cmd.stream_id] = evolve(stream, envelope)
            self.log.append(envelope)
        return verdict

    def given(self, commands: Sequence[Command]) -> "World":
        for cmd in commands:
            verdict = self.run(cmd)
            assert isinstance(verdict, Accepted), verdict
        return self
