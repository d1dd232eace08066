"""An in-memory decider for unit tests: decide, wrap, evolve; no I/O."""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from uuid import uuid4

from events.envelope import Envelope
from services.domain.commands import Command
from services.domain.decide import Accepted, Verdict, decide
from services.domain.envelopes import inspection_for, new_envelope
from services.domain.evolve import evolve
from services.domain.state import AnyState

TODAY = date(2024, 9, 18)


class World:
    """The decider's view, built by deciding and folding commands one by one."""

    def __init__(self) -> None:
        self.streams: dict[str, AnyState] = {}
        self.log: list[Envelope] = []

    def run(self, cmd: Command, today: date = TODAY) -> Verdict:
        stream = self.streams.get(cmd.stream_id)
        inspection = inspection_for(self.streams, cmd, cmd.stream_id)
        verdict = decide(cmd, stream=stream, inspection=inspection, today=today)
        if isinstance(verdict, Accepted):
            envelope = new_envelope(
                cmd, cmd.stream_id, verdict, stream, event_id=uuid4(), recorded_at=datetime.now(UTC)
            )
            self.streams[cmd.stream_id] = evolve(stream, envelope)
            self.log.append(envelope)
        return verdict

    def given(self, commands: Sequence[Command]) -> "World":
        for cmd in commands:
            verdict = self.run(cmd)
            assert isinstance(verdict, Accepted), verdict
        return self
