"""A recommendation's story in plain words, event by event; pure."""

from datetime import date, datetime
from functools import singledispatch
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from events.committee import CommitteeUpdateRecorded
from events.envelope import Actor, EventData
from events.inspection import InspectionPublished
from events.recommendation import (
    ClosureProposed,
    Document,
    EvidenceSubmitted,
    InspectorateDecisionRecorded,
    OwnerAssigned,
    ProgressReported,
    RecommendationIssued,
    TargetDateSet,
)
from events.registry import parse_event_data


class HistoryEntry(BaseModel):
    """One event of a recommendation, for people: what happened, when, by whom."""

    stream_version: int
    event_id: UUID
    type: str
    summary: str
    effective_date: date
    recorded_at: datetime
    actor: Actor
    loaded_by: Actor | None = None
    evidence_ids: list[str] = []
    documents: list[Document] = []
    rationale: str | None = None
    data: EventData


def entry_from_row(row: dict[str, Any]) -> HistoryEntry:
    """Build an entry from an event_log row (data and loaded_by already decoded)."""
    data = parse_event_data(row["type"], row["data"])
    return HistoryEntry(
        stream_version=row["stream_version"],
        event_id=row["event_id"],
        type=row["type"],
        summary=describe(data),
        effective_date=row["effective_date"],
        recorded_at=row["recorded_at"],
        actor=Actor(name=row["actor_name"], team=row["actor_team"], role=row["actor_role"]),
        loaded_by=Actor.model_validate(row["loaded_by"]) if row["loaded_by"] else None,
        evidence_ids=_evidence_ids(data),
        documents=list(data.documents) if isinstance(data, EvidenceSubmitted) else [],
        rationale=getattr(data, "rationale", None),
        data=data,
    )


def _evidence_ids(data: EventData) -> list[str]:
    if isinstance(data, EvidenceSubmitted):
        return [data.evidence_id]
    if isinstance(data, ClosureProposed):
        return list(data.evidence_ids)
    return []


DECISION_WORDS = {
    "closed": "The inspectorate closed it",
    "kept_open": "The inspectorate kept it open",
    "more_evidence_requested": "The inspectorate asked for more evidence",
    "superseded": "The inspectorate treated it as superseded",
}


@singledispatch
def describe(data: EventData) -> str:
    """What an event means, in one sentence."""
    return type(data).__name__


@describe.register
def _(data: InspectionPublished) -> str:
    return f"{data.inspectorate} published “{data.title}” on {data.published_on:%d %B %Y}."


@describe.register
def _(data: RecommendationIssued) -> str:
    kind = "Recommendation" if data.kind == "recommendation" else "Area for development"
    tracked = "" if data.tracked else " (addressed to another body: not tracked)"
    return f"{kind} {data.number} issued{tracked}: {data.text}"


@describe.register
def _(data: OwnerAssigned) -> str:
    handover = f"Handed over from {data.previous_team} to" if data.previous_team else "Assigned to"
    note = f" Note: {data.note}" if data.note else ""
    return f"{handover} {data.team_name or data.team} ({data.owner_role}).{note}"


@describe.register
def _(data: TargetDateSet) -> str:
    agreed = "agreed with" if data.agreed_with_inspectorate else "not agreed with"
    if data.revision == 0:
        return f"Target date set to {data.target_date:%d %B %Y} ({agreed} the inspectorate)."
    return (
        f"Target date moved to {data.target_date:%d %B %Y} (revision {data.revision}, original "
        f"{data.original_target_date:%d %B %Y}, {agreed} the inspectorate): {data.reason}"
    )


@describe.register
def _(data: ProgressReported) -> str:
    status = "on track" if data.delivery_status == "on_track" else f"delayed ({data.delay_reason})"
    return f"Progress reported, {status}: {data.position}"


@describe.register
def _(data: EvidenceSubmitted) -> str:
    docs = f" ({len(data.documents)} document(s))" if data.documents else ""
    return f"Evidence {data.evidence_id} submitted{docs}: {data.summary}"


@describe.register
def _(data: ClosureProposed) -> str:
    return f"Proposed for closure on evidence {', '.join(data.evidence_ids)}: {data.rationale}"


@describe.register
def _(data: InspectorateDecisionRecorded) -> str:
    return f"{DECISION_WORDS[data.decision]}: {data.rationale}"


@describe.register
def _(data: CommitteeUpdateRecorded) -> str:
    committee = data.committee_name or data.committee
    return f"{committee} received “{data.title}” on {data.meeting_date:%d %B %Y}."
