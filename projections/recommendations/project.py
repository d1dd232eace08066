"""project(event) -> SQL statements for the recommendations read model; pure."""

from functools import singledispatch

from events.committee import CommitteeUpdateRecorded
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
from projections.statements import Statement

NAME = "recommendations"


def project(envelope: Envelope) -> list[Statement]:
    """Statements that apply one event to the read model, including its event_log row."""
    statements = [_log_row(envelope), *_project(envelope.data, envelope)]
    rec_id = getattr(envelope.data, "recommendation_id", None)
    if rec_id is not None:
        # Every event of a recommendation closes its previous state interval and opens a new
        # one, so reports as of any date name the event that last changed the recommendation.
        statements += [_close_state(envelope, rec_id), _open_state(envelope, rec_id)]
    return statements


EVENT_LOG_COLUMNS = (
    "event_id",
    "stream_id",
    "stream_version",
    "type",
    "effective_date",
    "recorded_at",
    "command_id",
    "actor_name",
    "actor_team",
    "actor_role",
    "loaded_by",
    "data",
)


def event_log_row(e: Envelope) -> tuple[object, ...]:
    """An event's event_log row, in EVENT_LOG_COLUMNS order (JSON columns as text)."""
    return (
        e.event_id,
        e.stream_id,
        e.stream_version,
        e.type,
        e.effective_date,
        e.recorded_at,
        e.command_id,
        e.actor.name,
        e.actor.team,
        e.actor.role,
        e.loaded_by.model_dump_json() if e.loaded_by else None,
        e.data.model_dump_json(),
    )


def _log_row(e: Envelope) -> Statement:
    return Statement(
        "INSERT INTO event_log (event_id, stream_id, stream_version, type, effective_date, "
        "recorded_at, command_id, actor_name, actor_team, actor_role, loaded_by, data) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb)",
        event_log_row(e),
    )


def _close_state(e: Envelope, rec_id: str) -> Statement:
    return Statement(
        "UPDATE recommendation_states SET valid_to = $2, superseded_at = $3 "
        "WHERE recommendation_id = $1 AND valid_to IS NULL",
        (rec_id, e.effective_date, e.recorded_at),
    )


def _open_state(e: Envelope, rec_id: str) -> Statement:
    """Snapshot the recommendation's current row (already updated by this event)."""
    return Statement(
        "INSERT INTO recommendation_states (recommendation_id, stream_version, valid_from, "
        "recorded_at, event_id, owner_team, target_date, delivery_status, latest_position, "
        "last_decision, decision_date) "
        "SELECT recommendation_id, stream_version, last_effective_date, $2, last_event_id, "
        "owner_team, target_date, delivery_status, latest_position, last_decision, decision_date "
        "FROM recommendations WHERE recommendation_id = $1",
        (rec_id, e.recorded_at),
    )


def _touch(e: Envelope, rec_id: str, assignments: str = "", *values: object) -> Statement:
    """Update a recommendation's version and last event, plus any other columns given."""
    extra = f", {assignments}" if assignments else ""
    return Statement(
        f"UPDATE recommendations SET stream_version = $2, last_event_id = $3, "  # noqa: S608
        f"last_effective_date = $4{extra} WHERE recommendation_id = $1",
        (rec_id, e.stream_version, e.event_id, e.effective_date, *values),
    )


@singledispatch
def _project(data: EventData, e: Envelope) -> list[Statement]:
    raise TypeError(f"no projection for {type(data).__name__}")


@_project.register
def _(data: SigningKeyRegistered | SigningKeyRevoked, e: Envelope) -> list[Statement]:
    # The key registry lives in the log (the decider folds it); the read model keeps only
    # the events' event_log rows, where "who could sign for which team when" can be asked.
    return []


@_project.register
def _(data: InspectionPublished, e: Envelope) -> list[Statement]:
    return [
        Statement(
            "INSERT INTO inspections (inspection_id, title, inspectorate, published_on, "
            "inspection_type, url, last_event_id, recorded_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            (
                data.inspection_id,
                data.title,
                data.inspectorate,
                data.published_on,
                data.inspection_type,
                data.url,
                e.event_id,
                e.recorded_at,
            ),
        ),
        Statement(
            "INSERT INTO inspection_counts (inspection_id) VALUES ($1) ON CONFLICT DO NOTHING",
            (data.inspection_id,),
        ),
    ]


@_project.register
def _(data: RecommendationIssued, e: Envelope) -> list[Statement]:
    rec_id = data.recommendation_id
    statements = [
        Statement(
            "INSERT INTO recommendations (recommendation_id, inspection_id, number, kind, text, "
            "tracked, issued_on, issued_recorded_at, stream_version, last_event_id, "
            "last_effective_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $7)",
            (
                rec_id,
                data.inspection_id,
                data.number,
                data.kind,
                data.text,
                data.tracked,
                e.effective_date,
                e.recorded_at,
                e.stream_version,
                e.event_id,
            ),
        ),
    ]
    if data.kind == "recommendation" and data.tracked:
        statements.append(
            Statement(
                "INSERT INTO inspection_counts (inspection_id, total) VALUES ($1, 1) "
                "ON CONFLICT (inspection_id) DO UPDATE SET total = inspection_counts.total + 1",
                (data.inspection_id,),
            )
        )
    return statements


@_project.register
def _(data: OwnerAssigned, e: Envelope) -> list[Statement]:
    rid = data.recommendation_id
    return [
        _touch(e, rid, "owner_team = $5, owner_role = $6", data.team, data.owner_role),
    ]


@_project.register
def _(data: TargetDateSet, e: Envelope) -> list[Statement]:
    rid = data.recommendation_id
    return [
        _touch(
            e,
            rid,
            "target_date = $5, original_target_date = $6, target_date_revisions = $7",
            data.target_date,
            data.original_target_date,
            data.revision,
        ),
    ]


@_project.register
def _(data: ProgressReported, e: Envelope) -> list[Statement]:
    rid = data.recommendation_id
    return [
        _touch(
            e,
            rid,
            "delivery_status = $5, delay_reason = $6, latest_position = $7",
            data.delivery_status,
            data.delay_reason,
            data.position,
        ),
    ]


@_project.register
def _(data: EvidenceSubmitted, e: Envelope) -> list[Statement]:
    return [_touch(e, data.recommendation_id)]


@_project.register
def _(data: ClosureProposed, e: Envelope) -> list[Statement]:
    return [_touch(e, data.recommendation_id, "closure_pending = true")]


@_project.register
def _(data: InspectorateDecisionRecorded, e: Envelope) -> list[Statement]:
    rid = data.recommendation_id
    statements = [
        _touch(
            e,
            rid,
            "last_decision = $5, decision_date = $4, closure_pending = false",
            data.decision,
        ),
    ]
    if data.decision in ("closed", "superseded"):
        statements.append(
            Statement(
                "UPDATE inspection_counts SET closed = closed + 1 WHERE inspection_id = "
                "(SELECT inspection_id FROM recommendations WHERE recommendation_id = $1 "
                "AND kind = 'recommendation' AND tracked)",
                (rid,),
            )
        )
    return statements


@_project.register
def _(data: CommitteeUpdateRecorded, e: Envelope) -> list[Statement]:
    return [
        Statement(
            "INSERT INTO committee_updates "
            "(committee, meeting_date, title, recorded_at, event_id, committee_name) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            (
                data.committee,
                data.meeting_date,
                data.title,
                e.recorded_at,
                e.event_id,
                data.committee_name,
            ),
        )
    ]
