"""What the decider knows of each stream, folded from the log."""

from datetime import date

from pydantic import BaseModel, ConfigDict

from events.envelope import Actor
from events.signing import KeyKind
from events.types import Decision, DeliveryStatus, Kind


class StreamState(BaseModel):
    """What every stream has: its version and the latest business date it has seen."""

    model_config = ConfigDict(frozen=True)

    version: int = 0
    latest_effective_date: date | None = None


class InspectionState(StreamState):
    """A published inspection."""

    inspection_id: str
    published_on: date


class RecommendationState(StreamState):
    """A recommendation's position in its lifecycle."""

    recommendation_id: str
    inspection_id: str
    kind: Kind
    tracked: bool
    owner_team: str | None = None
    owner_role: str | None = None
    original_target_date: date | None = None
    target_date: date | None = None
    target_date_revisions: int = 0
    delivery_status: DeliveryStatus | None = None
    evidence_ids: frozenset[str] = frozenset()
    closure_pending: bool = False
    last_decision: Decision | None = None

    @property
    def finished(self) -> bool:
        """Closed or superseded: nothing but reading may happen any more."""
        return self.last_decision in ("closed", "superseded")


class CommitteeState(StreamState):
    """A committee's reporting points."""

    committee: str
    meeting_dates: tuple[date, ...] = ()


class KeyState(StreamState):
    """A signing key of the log's registry: whose it is, what it may do, whether revoked."""

    key_id: str
    public_key: bytes  # raw, as the decider verifies with it
    principal: Actor
    kind: KeyKind
    revoked: bool = False


AnyState = InspectionState | RecommendationState | CommitteeState | KeyState
