"""The committee report as of a date: its shape and its assembly from query rows; pure."""

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from projections.status import Closure, Status, classify, closure_of


class RecommendationLine(BaseModel):
    """One counted recommendation in the report."""

    number: int
    recommendation_id: str
    status: Status
    closure: Closure | None
    owner: str | None
    target_date: date | None
    latest_position: str | None
    last_event_id: UUID | None


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


class Report(BaseModel):
    """Total | Closed | Ongoing – on track | Ongoing – delayed per inspection, as of a date."""

    as_of: date
    since: date | None
    known_at: datetime | None
    inspections: list[InspectionLine]


def _line(row: Mapping[str, Any], as_of: date) -> RecommendationLine:
    return RecommendationLine(
        number=row["number"],
        recommendation_id=row["recommendation_id"],
        status=classify(
            as_of=as_of,
            last_decision=row["decision"],
            delivery_status=row["delivery_status"],
            target_date=row["target_date"],
        ),
        closure=closure_of(row["decision"]),
        owner=row["owner"],
        target_date=row["target_date"],
        latest_position=row["position"],
        last_event_id=row["last_event_id"],
    )


def _closed_since(row: Mapping[str, Any], since: date | None) -> bool:
    decided_on: date | None = row["decision_date"]
    return bool(
        closure_of(row["decision"]) and decided_on and (since is None or decided_on > since)
    )


def assemble_report(
    *,
    as_of: date,
    since: date | None,
    known_at: datetime | None,
    inspections: Iterable[Mapping[str, Any]],
    recommendation_rows: Iterable[Mapping[str, Any]],
) -> Report:
    """Build the report from inspection rows and per-recommendation latest-fact rows."""
    by_inspection: dict[str, list[Mapping[str, Any]]] = {}
    for row in recommendation_rows:
        by_inspection.setdefault(row["inspection_id"], []).append(row)
    lines = []
    for insp in inspections:
        rows = sorted(by_inspection.get(insp["inspection_id"], []), key=lambda r: r["number"])
        recs = [_line(r, as_of) for r in rows]
        lines.append(
            InspectionLine(
                inspection_id=insp["inspection_id"],
                title=insp["title"],
                total=len(recs),
                closed=sum(r.status == "closed" for r in recs),
                ongoing_on_track=sum(r.status == "ongoing_on_track" for r in recs),
                ongoing_delayed=sum(r.status == "ongoing_delayed" for r in recs),
                closed_since=[r["number"] for r in rows if _closed_since(r, since)],
                recommendations=recs,
            )
        )
    return Report(as_of=as_of, since=since, known_at=known_at, inspections=lines)
