"""Hand-written event histories with explicit business and system times (no I/O)."""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from events.envelope import Actor, Envelope, EventData
from events.integrity import seal
from events.recommendation import RecommendationIssued
from events.registry import current_version, dump_event
from events.streams import partition_key
from events.topics import Message
from tests.sealing import partition_of, sealed, sealed_group

INSP = "audit-insp"
ACTOR = Actor(name="Writer", team="team-a", role="admin")
T1 = datetime(2024, 9, 10, 12, tzinfo=UTC)


class History:
    """Builds envelopes with per-stream versions and explicit business and system times."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.heads: dict[str, str] = {}
        self.envelopes: list[Envelope] = []

    def add(self, stream: str, on: str, data: EventData, recorded: datetime = T1) -> None:
        self.versions[stream] = self.versions.get(stream, 0) + 1
        envelope = seal(
            Envelope(
                event_id=uuid.uuid4(),
                type=type(data).__name__,
                schema_version=current_version(type(data).__name__),
                stream_id=stream,
                stream_version=self.versions[stream],
                effective_date=date.fromisoformat(on),
                recorded_at=recorded,
                command_id=uuid.uuid4(),
                correlation_id=uuid.uuid4(),
                actor=ACTOR,
                data=data,
            ),
            self.heads.get(stream),
        )
        self.heads[stream] = envelope.hash
        self.envelopes.append(envelope)

    def rec(self, n: int, on: str = "2024-01-10", **kwargs: Any) -> str:
        rid = (
            f"{INSP}/r{n}"
            if kwargs.get("kind", "recommendation") == "recommendation"
            else f"{INSP}/afd{n}"
        )
        self.add(
            rid,
            on,
            RecommendationIssued(
                recommendation_id=rid,
                inspection_id=INSP,
                number=n,
                text=f"Recommendation {n}",
                **kwargs,
            ),
        )
        return rid

    def messages(self, seal_every: int = 1) -> list[Message]:
        """The envelopes as partition 0's messages, in order, sealed by the test decider in
        batches of `seal_every` events."""
        values: list[bytes] = []
        for start in range(0, len(self.envelopes), seal_every):
            batch = self.envelopes[start : start + seal_every]
            values += sealed_group([dump_event(e) for e in batch])
        return [
            Message(0, i, partition_key(e.stream_id), value)
            for i, (e, value) in enumerate(zip(self.envelopes, values, strict=True))
        ]

    def records(self, partitions: int) -> list[tuple[bytes, int, bytes]]:
        """(key, partition, value) of each event, to produce to a real topic of this many
        partitions: on the partition its key gives, sealed on its own for that partition."""
        found = []
        for e in self.envelopes:
            key = partition_key(e.stream_id)
            partition = partition_of(key, partitions)
            found.append((key, partition, sealed(dump_event(e), partition=partition)))
        return found
