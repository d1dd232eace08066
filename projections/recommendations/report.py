"""The committee report as of a date: its shape (the JSON contract of `report`)."""

from datetime import date, datetime

from pydantic import BaseModel
from typing_extensions import TypedDict

from projections.status import Closure, Status


class RecommendationLine(TypedDict):
    """One counted recommendation in the report, as JSON (built by PostgreSQL)."""

    number: int
    recommendation_id: str
    status: Status
    closure: Closure | None
    owner: str | None
    target_date: str | None  # ISO date
    latest_position: str | None
    last_event_id: str  # the event that last changed it (uuid)
    # True when an event of its stream (by the report's dates) is in the log but could not be
    # projected: the line shows what was projected, which may not be the whole story.
    incomplete: bool


class InspectionLine(BaseModel):
    """One inspection's row of the committee table, with the recommendations behind it."""

    inspection_id: str
    title: str
    total: int
    closed: int
    ongoing_on_track: int
    ongoing_delayed: int
    closed_since: list[int]
    recommendations: list[RecommendationLine]
    # Events of this inspection's streams (its own and its recommendations') that are in the
    # log but could not be projected; a recommendation whose issue is among them has no line.
    unprojected_events: int = 0


class Report(BaseModel):
    """Total | Closed | Ongoing – on track | Ongoing – delayed per inspection, as of a date."""

    as_of: date
    since: date | None
    known_at: datetime | None
    inspections: list[InspectionLine]
    # Every event by the report's dates (of any stream, within its inspection filter) in the
    # log but not projected: an inspection whose publication is among them has no row at all.
    unprojected_events: int = 0
