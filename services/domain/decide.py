"""decide(command, state) -> event or rejection: every write-side rule, and nothing else."""

from dataclasses import dataclass
from datetime import date

from events.committee import CommitteeUpdateRecorded
from events.envelope import Actor, EventData
from events.inspection import InspectionPublished
from events.keys import SigningKeyRegistered, SigningKeyRevoked
from events.names import id_key
from events.recommendation import (
    ClosureProposed,
    EvidenceSubmitted,
    InspectorateDecisionRecorded,
    OwnerAssigned,
    ProgressReported,
    RecommendationIssued,
    TargetDateSet,
)
from services.domain.commands import (
    AssignOwner,
    Command,
    IssueRecommendation,
    ProposeClosure,
    PublishInspection,
    RecordCommitteeUpdate,
    RecordInspectorateDecision,
    RegisterSigningKey,
    ReportProgress,
    RevokeSigningKey,
    SetTargetDate,
    SubmitEvidence,
)
from services.domain.permissions import LOADERS, refusal
from services.domain.rejections import Reason
from services.domain.state import (
    AnyState,
    CommitteeState,
    InspectionState,
    KeyState,
    RecommendationState,
)


@dataclass(frozen=True)
class Accepted:
    """The command holds: append this event at this business date."""

    event: EventData
    effective_date: date


@dataclass(frozen=True)
class Rejected:
    """The command breaks a rule: no event, and a stable reason."""

    reason: Reason
    detail: str


Verdict = Accepted | Rejected


class _Rule(Exception):
    """Raised inside decide to short-circuit with a rejection."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejected(reason, detail)


def decide(
    command: Command,
    *,
    stream: AnyState | None,
    inspection: InspectionState | None,
    today: date,
) -> Verdict:
    """Judge a command against its stream's state and its inspection's; pure."""
    try:
        if command.loaded_by is not None and command.loaded_by.role not in LOADERS:
            raise _Rule(Reason.FORBIDDEN, "loading a file needs the admin role")
        # Before any rule of state: a role that can never send this type learns only that.
        denied = refusal(command.actor.role, command.type)
        if denied is not None:
            raise _Rule(Reason.FORBIDDEN, denied)
        effective = command.effective_date or today
        event = _decide_data(command, stream, inspection)
        _check_version(command, stream)
        _check_dates(effective, stream, inspection, today)
        return Accepted(event, effective)
    except _Rule as rule:
        return rule.rejection


def _check_version(command: Command, stream: AnyState | None) -> None:
    current = stream.version if stream else 0
    if command.expected_version is not None and command.expected_version != current:
        raise _Rule(
            Reason.VERSION_CONFLICT,
            f"expected_version {command.expected_version} but {command.stream_id} is at {current}",
        )


def _check_dates(
    effective: date,
    stream: AnyState | None,
    inspection: InspectionState | None,
    today: date,
) -> None:
    if effective > today:
        raise _Rule(Reason.EFFECTIVE_DATE_IN_FUTURE, f"effective_date {effective} is after {today}")
    if inspection and effective < inspection.published_on:
        raise _Rule(
            Reason.EFFECTIVE_DATE_BEFORE_PUBLICATION,
            f"effective_date {effective} is before the inspection's publication "
            f"{inspection.published_on}",
        )
    latest = stream.latest_effective_date if stream else None
    if latest and effective < latest:
        raise _Rule(
            Reason.EFFECTIVE_DATE_OUT_OF_ORDER,
            f"effective_date {effective} is before the stream's latest {latest}",
        )


def _open_recommendation(command: Command, stream: AnyState | None) -> RecommendationState:
    if not isinstance(stream, RecommendationState):
        raise _Rule(Reason.RECOMMENDATION_NOT_FOUND, f"no recommendation {command.stream_id}")
    if stream.finished:
        raise _Rule(
            Reason.RECOMMENDATION_CLOSED,
            f"{command.stream_id} was {stream.last_decision}; it can only be read",
        )
    return stream


def _owned_recommendation(command: Command, stream: AnyState | None) -> RecommendationState:
    rec = _open_recommendation(command, stream)
    role, team = command.actor.role, command.actor.team
    # Teams compare by id: "Team A" on a token owns what was assigned to "team-a" (events/names).
    owns = rec.owner_team is not None and id_key(team) == id_key(rec.owner_team)
    if role == "admin" or (role == "contributor" and owns):
        return rec
    owner = rec.owner_team or "no team"
    raise _Rule(
        Reason.FORBIDDEN,
        f"{command.type} needs an admin or a contributor of the owning team ({owner})",
    )


def _decide_data(
    command: Command, stream: AnyState | None, inspection: InspectionState | None
) -> EventData:
    data = command.data
    match data:
        case PublishInspection():
            return _publish_inspection(command, data, stream)
        case IssueRecommendation():
            return _issue_recommendation(command, data, stream, inspection)
        case AssignOwner():
            return _assign_owner(command, data, stream)
        case SetTargetDate():
            return _set_target_date(command, data, stream)
        case ReportProgress():
            _owned_recommendation(command, stream)
            return ProgressReported(**data.model_dump())
        case SubmitEvidence():
            return _submit_evidence(command, data, stream)
        case ProposeClosure():
            return _propose_closure(command, data, stream)
        case RecordInspectorateDecision():
            return _record_decision(command, data, stream)
        case RecordCommitteeUpdate():
            return _record_committee_update(command, data, stream)
        case RegisterSigningKey():
            return _register_key(data, stream)
        case RevokeSigningKey():
            return _revoke_key(data, stream)
    raise TypeError(f"no rule for {type(data).__name__}")


def _publish_inspection(
    command: Command, data: PublishInspection, stream: AnyState | None
) -> EventData:
    if stream is not None:
        raise _Rule(
            Reason.INSPECTION_ALREADY_PUBLISHED, f"inspection {data.inspection_id} already exists"
        )
    effective = command.effective_date
    if effective is not None and effective < data.published_on:
        raise _Rule(
            Reason.EFFECTIVE_DATE_BEFORE_PUBLICATION,
            f"effective_date {effective} is before published_on {data.published_on}",
        )
    return InspectionPublished(**data.model_dump())


def _issue_recommendation(
    command: Command,
    data: IssueRecommendation,
    stream: AnyState | None,
    inspection: InspectionState | None,
) -> EventData:
    if inspection is None:
        raise _Rule(Reason.INSPECTION_NOT_FOUND, f"no inspection {data.inspection_id}")
    if stream is not None:
        raise _Rule(
            Reason.RECOMMENDATION_NUMBER_TAKEN,
            f"{data.kind} {data.number} of {data.inspection_id} already exists",
        )
    return RecommendationIssued(recommendation_id=command.stream_id, **data.model_dump())


def _assign_owner(command: Command, data: AssignOwner, stream: AnyState | None) -> EventData:
    rec = _open_recommendation(command, stream)
    return OwnerAssigned(
        **data.model_dump(exclude={"team"}),
        team=data.team_id,
        team_name=data.team,
        previous_team=rec.owner_team,
        previous_owner_role=rec.owner_role,
    )


def _set_target_date(command: Command, data: SetTargetDate, stream: AnyState | None) -> EventData:
    rec = _owned_recommendation(command, stream)
    first = rec.original_target_date is None
    return TargetDateSet(
        **data.model_dump(),
        original_target_date=data.target_date if first else rec.original_target_date,
        revision=0 if first else rec.target_date_revisions + 1,
    )


def _submit_evidence(command: Command, data: SubmitEvidence, stream: AnyState | None) -> EventData:
    rec = _owned_recommendation(command, stream)
    if data.evidence_id in rec.evidence_ids:
        raise _Rule(Reason.EVIDENCE_ID_TAKEN, f"evidence {data.evidence_id} was already submitted")
    return EvidenceSubmitted(**data.model_dump())


def _propose_closure(command: Command, data: ProposeClosure, stream: AnyState | None) -> EventData:
    rec = _owned_recommendation(command, stream)
    unknown = sorted(set(data.evidence_ids) - rec.evidence_ids)
    if unknown:
        raise _Rule(
            Reason.EVIDENCE_NOT_FOUND,
            f"evidence not submitted for {rec.recommendation_id}: {', '.join(unknown)}",
        )
    if rec.closure_pending:
        raise _Rule(Reason.CLOSURE_ALREADY_PROPOSED, "a closure proposal is already pending")
    return ClosureProposed(**data.model_dump())


def _record_decision(
    command: Command, data: RecordInspectorateDecision, stream: AnyState | None
) -> EventData:
    rec = _open_recommendation(command, stream)
    if data.decision == "closed" and not rec.closure_pending:
        raise _Rule(Reason.NO_CLOSURE_PROPOSED, "closing needs a pending closure proposal")
    return InspectorateDecisionRecorded(**data.model_dump())


def _record_committee_update(
    command: Command, data: RecordCommitteeUpdate, stream: AnyState | None
) -> EventData:
    committee = data.committee_id
    if isinstance(stream, CommitteeState) and data.meeting_date in stream.meeting_dates:
        given = "" if data.committee == committee else f" ({data.committee})"
        raise _Rule(
            Reason.COMMITTEE_UPDATE_EXISTS,
            f"committee {committee}{given} already has an update for {data.meeting_date}",
        )
    return CommitteeUpdateRecorded(
        **data.model_dump(exclude={"committee"}), committee=committee, committee_name=data.committee
    )


def _register_key(data: RegisterSigningKey, stream: AnyState | None) -> EventData:
    # Once per key, revoked or not: a revoked key never comes back, a new one is registered.
    if stream is not None:
        raise _Rule(Reason.KEY_ALREADY_REGISTERED, f"key {data.key_id} is already registered")
    principal = data.principal
    return SigningKeyRegistered(
        key_id=data.key_id,
        public_key=data.public_key,
        principal=Actor(name=principal.name, team=principal.team, role=principal.role),
        kind=data.kind,
        source=data.source,
    )


def _revoke_key(data: RevokeSigningKey, stream: AnyState | None) -> EventData:
    if not isinstance(stream, KeyState):
        raise _Rule(Reason.KEY_NOT_FOUND, f"no key {data.key_id} is registered")
    if stream.revoked:
        raise _Rule(Reason.KEY_ALREADY_REVOKED, f"key {data.key_id} is already revoked")
    return SigningKeyRevoked(key_id=data.key_id, reason=data.reason, source=data.source)
