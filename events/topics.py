"""Topic names. A prefix lets tests and side-by-side instances own their topics."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """The four topics of one rectrack instance."""

    commands: str
    events: str
    outcomes: str
    dead_letters: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> "Topics":
        """Names for an instance; the default prefix gives `rectrack.commands` and so on."""
        return cls(
            commands=f"{prefix}rectrack.commands",
            events=f"{prefix}rectrack.events",
            outcomes=f"{prefix}rectrack.outcomes",
            dead_letters=f"{prefix}rectrack.deadletters",
        )

    def all(self) -> tuple[str, ...]:
        """Every topic name, for creation and checks."""
        return (self.commands, self.events, self.outcomes, self.dead_letters)


@dataclass(frozen=True)
class Message:
    """One message read from a topic, as workers hand it to the code that parses it.

    `headers` are the record's, as the client read them (only trace context is read from
    them, by infra/tracing.py, and only when tracing is on); nothing else depends on them.
    """

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] = ()
