"""Events of a recommendation's stream (stream id = `{inspection_id}/r{n}` or `/afd{n}`)."""

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import EventData
from events.types import (
    Decision,
    DelayReason,
    DeliveryStatus,
    Kind,
    RecordedLongText,
    RecordedShortText,
    Sha256,
    Slug,
)


class RecommendationIssued(EventData):
    """The inspectorate made a recommendation (or an area for development)."""

    recommendation_id: str
    inspection_id: Slug
    number: int = Field(ge=1, le=10_000)
    kind: Kind = "recommendation"
    text: RecordedLongText
    tracked: bool = True


class OwnerAssigned(EventData):
    """A team took ownership; the previous owner is kept so handovers are visible.

    Schema version 2 added `team_name`: the team as the command gave it (a name such as
    "Partnerships, Prevention & Community Wellbeing", or its id); `team` is the id derived from
    it (`events.names.derive_id`), which ownership is checked by. Version 1 events recorded the
    team as given, in `team` alone: their `team_name` is None.
    """

    recommendation_id: str
    team: RecordedShortText
    owner_role: RecordedShortText
    note: RecordedLongText | None = None
    previous_team: str | None = None
    previous_owner_role: str | None = None
    team_name: RecordedShortText | None = None


def team_name_not_recorded(data: dict[str, Any]) -> dict[str, Any]:
    """Upcast OwnerAssigned 1 -> 2: version 1 recorded the team as given, in `team` alone."""
    return {"team_name": None, **data}


class TargetDateSet(EventData):
    """A target date was set or revised; the first one is kept and revisions counted."""

    recommendation_id: str
    target_date: date
    reason: RecordedLongText
    agreed_with_inspectorate: bool
    original_target_date: date
    revision: int = Field(ge=0)


class ProgressReported(EventData):
    """The owning team reported its position and whether delivery is on track."""

    recommendation_id: str
    position: RecordedLongText
    delivery_status: DeliveryStatus
    delay_reason: DelayReason | None = None


def _absent(value: object) -> bool:
    return value is None


class Document(BaseModel):
    """A document submitted as evidence, identified by its content hash (SHA-256).

    `size` (bytes) and `media_type` say what rectrack stored under that hash when the document
    was uploaded (`POST /recommendations/{id}/evidence`). Both are None for a document cited by
    hash only: every one recorded before rectrack stored documents (EvidenceSubmitted schema
    version 1), or one a team system cites without them. None is left out of the JSON, so
    those events dump, and hash, exactly as they were written.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RecordedShortText
    sha256: Sha256
    size: int | None = Field(default=None, ge=0, exclude_if=_absent)
    media_type: RecordedShortText | None = Field(default=None, exclude_if=_absent)


class EvidenceSubmitted(EventData):
    """Evidence of improvement was submitted (for example an Evidence Summary Form)."""

    recommendation_id: str
    evidence_id: RecordedShortText
    summary: RecordedLongText
    documents: tuple[Document, ...] = ()


def evidence_submitted_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Upcast EvidenceSubmitted 1 -> 2: version 1 named each document by name and hash only.

    Version 2 documents also carry size and media type; for a version 1 document they were
    never recorded, and rectrack did not hold its bytes, so both are None ("not recorded").
    """
    documents = data.get("documents")
    if not isinstance(documents, list):
        return data  # absent (no documents), or malformed: the model says which
    return {
        **data,
        "documents": [
            {"size": None, "media_type": None, **d} if isinstance(d, dict) else d for d in documents
        ],
    }


class ClosureProposed(EventData):
    """The body proposed the recommendation for closure on the strength of its evidence."""

    recommendation_id: str
    rationale: RecordedLongText
    evidence_ids: tuple[RecordedShortText, ...] = Field(min_length=1)


class InspectorateDecisionRecorded(EventData):
    """The inspectorate closed, kept open, asked for more evidence, or superseded it."""

    recommendation_id: str
    decision: Decision
    rationale: RecordedLongText
