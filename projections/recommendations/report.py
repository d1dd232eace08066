"""The committee report as of a date: its shape (the JSON contract of `report`)."""

from datetime import date, datetime
from typing import Literal

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


# Where "since the last update" starts: a date the caller gave, the latest committee update
# strictly before the as-of date, or nowhere (no earlier update: every closure counts).
SinceBasis = Literal["given", "committee_update", "no_earlier_update"]


class Committee(BaseModel):
    """A committee with a recorded update: its id, and the name it was last given by."""

    committee: str
    # The newest name an update gave it that is not merely its id (None: only ever its id).
    committee_name: str | None = None

    @property
    def shown(self) -> str:
        """The committee as a person reads it: its name, else its id."""
        return self.committee_name or self.committee


class CommitteeUpdate(Committee):
    """A recorded committee update: where "since the last update" starts."""

    meeting_date: date
    title: str


class Report(BaseModel):
    """Total | Closed | Ongoing – on track | Ongoing – delayed per inspection, as of a date."""

    as_of: date
    since: date | None
    known_at: datetime | None
    inspections: list[InspectionLine]
    # Every event by the report's dates (of any stream, within its inspection filter) in the
    # log but not projected: an inspection whose publication is among them has no row at all.
    unprojected_events: int = 0
    # The committee the report was asked for (by its id or its name), as its id and name.
    committee: str | None = None
    committee_name: str | None = None
    since_basis: SinceBasis = "given"
    # The update "since" starts from, when since_basis is committee_update.
    since_update: CommitteeUpdate | None = None
    # One sentence saying what "since the last update" means here (see `since_note`).
    since_note: str = ""


def _day(value: date) -> str:
    return f"{value.day:02d} {value:%B} {value.year:04d}"  # as services.look's `day`


def since_note(
    *,
    as_of: date,
    since: date | None,
    basis: SinceBasis,
    committee: Committee | None,
    update: CommitteeUpdate | None,
) -> str:
    """What "since the last update" means in a report or paper, in one sentence.

    Never silent: when no update of the committee (or, with none asked for, of any committee)
    is recorded before the date, it says so, and that the closures counted are all of them.
    """
    if basis == "given" and since is not None:
        return f"“Since the last update” means since {_day(since)}, the date asked for."
    if basis == "committee_update" and update is not None:
        return (
            f"“Since the last update” means since {_day(update.meeting_date)}, the last "
            f"update to {update.shown} (“{update.title}”)."
        )
    whose = f"to {committee.shown}" if committee else "to any committee"
    return (
        f"No earlier update {whose} is recorded before {_day(as_of)}: “since the last "
        "update” covers everything since each inspection’s publication."
    )
