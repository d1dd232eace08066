"""evolve(state, event) -> state: the one fold used by the decider and the tests."""

from functools import singledispatch
from typing import Any

from events.committee import CommitteeUpdateRecorded
from events.ed25519 import decode_public_key
from events.envelope import Envelope, EventData
from events.inspection import InspectionPublished
from events.keys import SigningKeyRegistered, SigningKeyRevoked
from events.recommendation import (
    ClosureProposed,
    EvidenceSubmitted,
    InspectorateDecisionRecorded,
    OwnerAssigned,
    ProgressReported,
    RecommendationIssued,
    TargetDateSet,
)
from services.domain.state import (
    AnyState,
    CommitteeState,
    InspectionState,
    KeyState,
    RecommendationState,
)

# What every event changes: the stream's version and its latest business date.
Advance = dict[str, Any]


def evolve(state: AnyState | None, envelope: Envelope) -> AnyState:
    """Apply one event to its stream's state, advancing version and business date."""
    # Each rule applies the advance in its own copy: one model copy per event, not two.
    advance = {
        "version": envelope.stream_version,
        "latest_effective_date": envelope.effective_date,
    }
    return _apply(envelope.data, state, advance)


@singledispatch
def _apply(data: EventData, state: AnyState | None, advance: Advance) -> AnyState:
    raise TypeError(f"no evolve rule for {type(data).__name__}")


def _recommendation(state: AnyState | None) -> RecommendationState:
    if not isinstance(state, RecommendationState):
        raise TypeError("event of a recommendation applied to another kind of stream")
    return state


@_apply.register
def _(data: InspectionPublished, state: AnyState | None, advance: Advance) -> AnyState:
    return InspectionState(
        inspection_id=data.inspection_id, published_on=data.published_on, **advance
    )


@_apply.register
def _(data: RecommendationIssued, state: AnyState | None, advance: Advance) -> AnyState:
    return RecommendationState(
        recommendation_id=data.recommendation_id,
        inspection_id=data.inspection_id,
        kind=data.kind,
        tracked=data.tracked,
        **advance,
    )


@_apply.register
def _(data: OwnerAssigned, state: AnyState | None, advance: Advance) -> AnyState:
    return _recommendation(state).model_copy(
        update={"owner_team": data.team, "owner_role": data.owner_role, **advance}
    )


@_apply.register
def _(data: TargetDateSet, state: AnyState | None, advance: Advance) -> AnyState:
    return _recommendation(state).model_copy(
        update={
            "target_date": data.target_date,
            "original_target_date": data.original_target_date,
            "target_date_revisions": data.revision,
            **advance,
        }
    )


@_apply.register
def _(data: ProgressReported, state: AnyState | None, advance: Advance) -> AnyState:
    return _recommendation(state).model_copy(
        update={"delivery_status": data.delivery_status, **advance}
    )


@_apply.register
def _(data: EvidenceSubmitted, state: AnyState | None, advance: Advance) -> AnyState:
    rec = _recommendation(state)
    return rec.model_copy(update={"evidence_ids": rec.evidence_ids | {data.evidence_id}, **advance})


@_apply.register
def _(data: ClosureProposed, state: AnyState | None, advance: Advance) -> AnyState:
    return _recommendation(state).model_copy(update={"closure_pending": True, **advance})


@_apply.register
def _(data: InspectorateDecisionRecorded, state: AnyState | None, advance: Advance) -> AnyState:
    return _recommendation(state).model_copy(
        update={"last_decision": data.decision, "closure_pending": False, **advance}
    )


@_apply.register
def _(data: CommitteeUpdateRecorded, state: AnyState | None, advance: Advance) -> AnyState:
    dates = state.meeting_dates if isinstance(state, CommitteeState) else ()
    return CommitteeState(
        committee=data.committee, meeting_dates=(*dates, data.meeting_date), **advance
    )


@_apply.register
def _(data: SigningKeyRegistered, state: AnyState | None, advance: Advance) -> AnyState:
    return KeyState(
        key_id=data.key_id,
        public_key=decode_public_key(data.public_key),
        principal=data.principal,
        kind=data.kind,
        **advance,
    )


@_apply.register
def _(data: SigningKeyRevoked, state: AnyState | None, advance: Advance) -> AnyState:
    if not isinstance(state, KeyState):
        raise TypeError("a key revoked before it was registered")
    return state.model_copy(update={"revoked": True, **advance})
