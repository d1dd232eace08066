"""The committee paper: assembled from the read models for a meeting date (I/O), then rendered."""

import math
from collections import defaultdict
from datetime import date, datetime

import asyncpg
from pydantic import BaseModel

from events.types import EARLIEST_BUSINESS_DATE, Slug, latest_business_date
from projections.recommendations import queries
from projections.recommendations.handover import HandoverPack
from projections.recommendations.report import (
    CommitteeUpdate,
    InspectionLine,
    Report,
    SinceBasis,
)

DELAY_CAUSES = {
    "legislation": "New legislation delayed",
    "system": "National systems (for example the COS roll-out) delayed",
    "resourcing": "Staff turnover and abstraction to major operations",
    "dependency": "Dependency on partners",
    "other": "Other causes",
    "target_passed": "Target date passed without a delay being reported",
}

# The meetings a paper can be for: the business dates commands accept (events.types), since
# each chart point is one report query, and matplotlib and the HTML dates cannot hold every
# date Python can; a committee meets in neither 1066 nor 2500.
EARLIEST_MEETING = EARLIEST_BUSINESS_DATE
# A chart shows at most CHART_YEARS before the meeting, in at most CHART_POINTS month starts
# (every month when they fit, else every few months), plus the CHART_COMMITTEE_DATES latest
# committee dates in that window and the meeting: at most about 85 report queries, whatever
# dates the log holds (a publication in year 1 once meant 24,000 of them, a minute's work).
CHART_YEARS = 25
CHART_POINTS = 60
CHART_COMMITTEE_DATES = 24


def check_meeting(meeting: date, today: date | None = None) -> date:
    """`meeting` if a paper can be built for it; ValueError naming the field otherwise."""
    latest = latest_business_date(today)
    if not EARLIEST_MEETING <= meeting <= latest:
        raise ValueError(f"meeting must be between {EARLIEST_MEETING} and {latest}, got {meeting}")
    return meeting


class ClosedRecommendation(BaseModel):
    """A recommendation closed since the last update, and why."""

    number: int
    text: str
    closure: str
    decided_on: date | None
    rationale: str


class OpenRecommendation(BaseModel):
    """An open recommendation's position for the committee."""

    number: int
    text: str
    status: str
    owner: str | None
    target_date: date | None
    target_moved: int
    last_position: str | None
    last_reported_on: date | None
    outstanding_asks: list[str]


class InspectionSection(BaseModel):
    """One inspection's part of the paper."""

    line: InspectionLine
    closures: list[ClosedRecommendation]
    progress: list[OpenRecommendation]
    chart: list[tuple[date, int, int]]  # (date, closed, open)


class Risk(BaseModel):
    """A delay cause and the recommendations behind it."""

    cause: str
    label: str
    recommendations: list[str]


class Paper(BaseModel):
    """Everything the improvement update for one meeting says, and where it came from."""

    meeting: date
    # The committee's id, validated, because it is printed into the shell command that
    # rebuilds the paper; the name it was given by, shown in the paper (None: only its id).
    committee: Slug | None
    since: date | None
    known_at: datetime | None
    sections: list[InspectionSection]
    risks: list[Risk]
    committee_dates: list[date]
    log_events: int
    log_last_recorded_at: datetime | None
    committee_name: str | None = None
    since_basis: SinceBasis = "no_earlier_update"
    since_update: CommitteeUpdate | None = None
    # What "since the last update" means in this paper; says so when no earlier update exists.
    since_note: str = ""

    @property
    def committee_shown(self) -> str | None:
        """The committee as a person reads it: its name, else its id (None: no committee)."""
        return self.committee_name or self.committee


def _closure(pack: HandoverPack) -> ClosedRecommendation:
    last = pack.decisions[-1] if pack.decisions else None
    return ClosedRecommendation(
        number=pack.number,
        text=pack.text,
        closure=pack.closure or "closed",
        decided_on=last.decided_on if last else None,
        rationale=last.rationale if last else "",
    )


def _progress(pack: HandoverPack) -> OpenRecommendation:
    position = pack.last_position
    return OpenRecommendation(
        number=pack.number,
        text=pack.text,
        status=pack.status,
        owner=pack.owners[-1].shown_team if pack.owners else None,
        target_date=pack.target_date,
        target_moved=pack.target_date_revisions,
        last_position=position.position if position else None,
        last_reported_on=position.reported_on if position else None,
        outstanding_asks=pack.outstanding_asks,
    )


def _cause(pack: HandoverPack) -> str:
    position = pack.last_position
    if position and position.delivery_status == "delayed" and position.delay_reason:
        return position.delay_reason
    return "target_passed"


def _month_start(day: date, months_later: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months_later
    return date(index // 12, index % 12 + 1, 1)


def chart_dates(first: date, meeting: date, committee_dates: list[date]) -> list[date]:
    """The chart's points: month starts from the first publication to the meeting, every
    committee date between, and the meeting; bounded (see CHART_YEARS) whatever the dates."""
    window = date(max(meeting.year - CHART_YEARS, 1), meeting.month, 1)
    start = min(max(first, window, EARLIEST_MEETING), meeting)
    months = (meeting.year - start.year) * 12 + meeting.month - start.month
    step = max(1, math.ceil((months + 1) / CHART_POINTS))
    points = {meeting}
    points.update(max(_month_start(start, offset), start) for offset in range(0, months + 1, step))
    shown = sorted(d for d in set(committee_dates) if start <= d <= meeting)
    points.update(shown[-CHART_COMMITTEE_DATES:])
    return sorted(points)


async def _series(
    conn: asyncpg.Connection, dates: list[date], known_at: datetime | None
) -> dict[str, list[tuple[date, int, int]]]:
    series: dict[str, list[tuple[date, int, int]]] = defaultdict(list)
    for day in dates:
        report = await queries.report(conn, as_of=day, since=day, known_at=known_at)
        for line in report.inspections:
            series[line.inspection_id].append((day, line.closed, line.total - line.closed))
    return series


async def _packs(conn: asyncpg.Connection, report: Report) -> dict[str, HandoverPack]:
    packs = {}
    for line in report.inspections:
        for rec in line.recommendations:
            pack = await queries.handover(
                conn, rec["recommendation_id"], as_of=report.as_of, known_at=report.known_at
            )
            if pack is not None:
                packs[rec["recommendation_id"]] = pack
    return packs


async def build_paper(
    conn: asyncpg.Connection,
    *,
    meeting: date,
    committee: str | None = None,
    known_at: datetime | None = None,
) -> Paper:
    """Assemble the improvement update for a meeting, from the read models alone.

    `committee` is its id or its name; one that names no committee with a recorded update
    raises `queries.UnknownCommittee` (rather than count "since the last update" from nowhere).
    """
    asked, basis, update, since, note = await queries.since_of(
        conn, as_of=meeting, known_at=known_at, committee=committee
    )
    # The same committee as since_of: without it the report would take "since" from any
    # committee's last update when this one has none.
    report = await queries.report(
        conn, as_of=meeting, since=since, known_at=known_at, committee=committee
    )
    packs = await _packs(conn, report)
    updates = [
        u["meeting_date"]
        for u in await queries.committee_updates(conn)
        if asked is None or u["committee"] == asked.committee
    ]
    first = min((p.issued_on for p in packs.values() if p.issued_on), default=meeting)
    series = await _series(conn, chart_dates(first, meeting, updates), known_at)
    sections, risks = [], defaultdict(list)
    for line in report.inspections:
        line_packs = [packs[r["recommendation_id"]] for r in line.recommendations]
        closed_since = set(line.closed_since)
        for pack in line_packs:
            if pack.status == "ongoing_delayed":
                risks[_cause(pack)].append(f"{line.title}, recommendation {pack.number}")
        sections.append(
            InspectionSection(
                line=line,
                closures=[_closure(p) for p in line_packs if p.number in closed_since],
                progress=[_progress(p) for p in line_packs if p.status != "closed"],
                chart=series.get(line.inspection_id, []),
            )
        )
    events, last = await queries.log_position(conn, known_at)
    return Paper(
        meeting=meeting,
        committee=asked.committee if asked else None,
        committee_name=asked.committee_name if asked else None,
        since_basis=basis,
        since_update=update,
        since_note=note,
        since=since,
        known_at=known_at,
        sections=sections,
        risks=[
            Risk(cause=c, label=DELAY_CAUSES[c], recommendations=risks[c])
            for c in DELAY_CAUSES
            if risks.get(c)
        ],
        committee_dates=sorted(d for d in updates if d <= meeting),
        log_events=events,
        log_last_recorded_at=last,
    )
