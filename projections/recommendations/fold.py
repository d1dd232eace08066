"""fold(batch) -> the rows a batch of events leaves in the read model; pure.

The same effect as running `project(event)` for each event in order, computed in memory so a
batch costs a handful of bulk statements instead of about five per event. The per-event
statements stay the reference (and the fallback path); tests hold the two to the same rows.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from events.committee import CommitteeUpdateRecorded
from events.envelope import Envelope
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
from projections.recommendations.project import event_log_row

# What later events change; the rest is set once when the recommendation is issued.
CHANGING_COLUMNS = (
    "owner_team",
    "owner_role",
    "target_date",
    "original_target_date",
    "target_date_revisions",
    "delivery_status",
    "delay_reason",
    "latest_position",
    "closure_pending",
    "last_decision",
    "decision_date",
    "stream_version",
    "last_event_id",
    "last_effective_date",
)
RECOMMENDATION_COLUMNS = (
    "recommendation_id",
    "inspection_id",
    "number",
    "kind",
    "text",
    "tracked",
    "issued_on",
    "issued_recorded_at",
    *CHANGING_COLUMNS,
)
# What fold needs of a stored recommendation: what it changes, and what decides the counts.
STORED_COLUMNS = ("recommendation_id", "inspection_id", "kind", "tracked", *CHANGING_COLUMNS)
STATE_COLUMNS = (
    "recommendation_id",
    "stream_version",
    "valid_from",
    "valid_to",
    "recorded_at",
    "superseded_at",
    "event_id",
    "owner_team",
    "target_date",
    "delivery_status",
    "latest_position",
    "last_decision",
    "decision_date",
)
INSPECTION_COLUMNS = (
    "inspection_id",
    "recorded_at",
    "title",
    "inspectorate",
    "published_on",
    "inspection_type",
    "url",
    "last_event_id",
)
COMMITTEE_COLUMNS = (
    "committee",
    "meeting_date",
    "title",
    "recorded_at",
    "event_id",
    "committee_name",
)
_TYPES = {
    "int": ("number", "target_date_revisions", "stream_version"),
    "bool": ("tracked", "closure_pending"),
    "date": (
        "issued_on",
        "target_date",
        "original_target_date",
        "decision_date",
        "last_effective_date",
    ),
    "timestamptz": ("issued_recorded_at",),
    "uuid": ("last_event_id",),
}
_TYPE_OF = {column: sql for sql, names in _TYPES.items() for column in names}
# One array parameter per column ($1::text[], ...), the recommendation id first.
UPDATE_RECOMMENDATIONS = (
    "UPDATE recommendations r SET "  # noqa: S608
    + ", ".join(f"{c} = u.{c}" for c in CHANGING_COLUMNS)
    + " FROM unnest("
    + ", ".join(
        f"${n}::{_TYPE_OF.get(c, 'text')}[]"
        for n, c in enumerate(("recommendation_id", *CHANGING_COLUMNS), start=1)
    )
    + f") AS u(recommendation_id, {', '.join(CHANGING_COLUMNS)}) "
    "WHERE r.recommendation_id = u.recommendation_id"
)
CLOSE_OPEN_STATES = (
    "UPDATE recommendation_states s SET valid_to = c.valid_to, superseded_at = c.superseded_at "
    "FROM unnest($1::text[], $2::date[], $3::timestamptz[]) "
    "AS c(recommendation_id, valid_to, superseded_at) "
    "WHERE s.recommendation_id = c.recommendation_id AND s.valid_to IS NULL"
)
ADD_COUNTS = (
    "INSERT INTO inspection_counts (inspection_id, total, closed) "
    "SELECT * FROM unnest($1::text[], $2::int[], $3::int[]) "
    "ON CONFLICT (inspection_id) DO UPDATE SET total = inspection_counts.total + EXCLUDED.total, "
    "closed = inspection_counts.closed + EXCLUDED.closed"
)
_VALID_TO = STATE_COLUMNS.index("valid_to")
_SUPERSEDED_AT = STATE_COLUMNS.index("superseded_at")
_CLOSING_DECISIONS = ("closed", "superseded")

Row = dict[str, Any]


class Conflict(ValueError):
    """The batch cannot be folded as it stands (for example a recommendation issued twice)."""


@dataclass
class Folded:
    """Every row a batch writes, ready for bulk statements."""

    event_log: list[tuple[Any, ...]] = field(default_factory=list)
    inspections: list[tuple[Any, ...]] = field(default_factory=list)
    committee_updates: list[tuple[Any, ...]] = field(default_factory=list)
    # Recommendations issued in the batch, as they end it, in RECOMMENDATION_COLUMNS order.
    new_recommendations: list[tuple[Any, ...]] = field(default_factory=list)
    # Stored recommendations the batch changed: the id, then CHANGING_COLUMNS.
    changed_recommendations: list[tuple[Any, ...]] = field(default_factory=list)
    # (recommendation_id, valid_to, superseded_at) for intervals left open by earlier batches.
    closed_before: list[tuple[str, date, datetime]] = field(default_factory=list)
    # New intervals, in STATE_COLUMNS order.
    states: list[tuple[Any, ...]] = field(default_factory=list)
    # (inspection_id, total added, closed added); a row with zeros still has to exist.
    counts: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class _Batch:
    current: Mapping[str, Row]
    rows: dict[str, Row] = field(default_factory=dict)
    states: list[list[Any]] = field(default_factory=list)
    # The newest interval of each recommendation opened by this batch, still open.
    latest: dict[str, list[Any]] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)
    out: Folded = field(default_factory=Folded)

    def recommendation(self, rec_id: str) -> Row | None:
        """The row as this batch has left it so far (None: it does not exist)."""
        row = self.rows.get(rec_id)
        if row is None and rec_id in self.current:
            row = self.rows[rec_id] = dict(self.current[rec_id])
        return row

    def count(self, inspection_id: str, total: int = 0, closed: int = 0) -> None:
        delta = self.counts.setdefault(inspection_id, [0, 0])
        delta[0] += total
        delta[1] += closed


def fold(envelopes: Iterable[Envelope], current: Mapping[str, Row]) -> Folded:
    """The rows that projecting `envelopes` in order writes, given the recommendations' rows.

    `current` holds the stored row (STORED_COLUMNS at least) of every recommendation the
    events name that exists already. Raises Conflict where the statements would fail (a
    recommendation issued twice) and TypeError for an event type with no projection.
    """
    batch = _Batch(current)
    for envelope in envelopes:
        batch.out.event_log.append(event_log_row(envelope))
        _apply(batch, envelope)
    out = batch.out
    for rec_id, row in batch.rows.items():
        if rec_id in batch.current:
            out.changed_recommendations.append((rec_id, *(row[c] for c in CHANGING_COLUMNS)))
        else:
            out.new_recommendations.append(tuple(row[c] for c in RECOMMENDATION_COLUMNS))
    out.states = [tuple(state) for state in batch.states]
    out.counts = [(insp, total, closed) for insp, (total, closed) in batch.counts.items()]
    return out


def _apply(batch: _Batch, e: Envelope) -> None:
    data = e.data
    if isinstance(data, InspectionPublished):
        batch.out.inspections.append(
            (
                data.inspection_id,
                e.recorded_at,
                data.title,
                data.inspectorate,
                data.published_on,
                data.inspection_type,
                data.url,
                e.event_id,
            )
        )
        batch.count(data.inspection_id)
    elif isinstance(data, CommitteeUpdateRecorded):
        batch.out.committee_updates.append(
            (
                data.committee,
                data.meeting_date,
                data.title,
                e.recorded_at,
                e.event_id,
                data.committee_name,
            )
        )
    elif isinstance(data, RecommendationIssued):
        _issue(batch, e, data)
    elif isinstance(data, SigningKeyRegistered | SigningKeyRevoked):
        pass  # only its event_log row, as project.py
    else:
        rec_id = getattr(data, "recommendation_id", None)
        if rec_id is None:
            raise TypeError(f"no projection for {type(data).__name__}")
        row = batch.recommendation(rec_id)
        if row is not None:
            _touch(batch, e, row)
            _snapshot(batch, e, row)


def _issue(batch: _Batch, e: Envelope, data: RecommendationIssued) -> None:
    rec_id = data.recommendation_id
    if batch.recommendation(rec_id) is not None:
        raise Conflict(f"recommendation {rec_id} issued twice")
    row: Row = dict.fromkeys(RECOMMENDATION_COLUMNS)
    row |= {
        "recommendation_id": rec_id,
        "inspection_id": data.inspection_id,
        "number": data.number,
        "kind": data.kind,
        "text": data.text,
        "tracked": data.tracked,
        "issued_on": e.effective_date,
        "issued_recorded_at": e.recorded_at,
        "target_date_revisions": 0,
        "closure_pending": False,
        "stream_version": e.stream_version,
        "last_event_id": e.event_id,
        "last_effective_date": e.effective_date,
    }
    batch.rows[rec_id] = row
    if data.kind == "recommendation" and data.tracked:
        batch.count(data.inspection_id, total=1)
    _snapshot(batch, e, row)


def _touch(batch: _Batch, e: Envelope, row: Row) -> None:
    """What each event type changes in its recommendation's row (as project.py's UPDATEs)."""
    row["stream_version"] = e.stream_version
    row["last_event_id"] = e.event_id
    row["last_effective_date"] = e.effective_date
    data = e.data
    if isinstance(data, OwnerAssigned):
        row["owner_team"] = data.team
        row["owner_role"] = data.owner_role
    elif isinstance(data, TargetDateSet):
        row["target_date"] = data.target_date
        row["original_target_date"] = data.original_target_date
        row["target_date_revisions"] = data.revision
    elif isinstance(data, ProgressReported):
        row["delivery_status"] = data.delivery_status
        row["delay_reason"] = data.delay_reason
        row["latest_position"] = data.position
    elif isinstance(data, ClosureProposed):
        row["closure_pending"] = True
    elif isinstance(data, InspectorateDecisionRecorded):
        row["last_decision"] = data.decision
        row["decision_date"] = e.effective_date
        row["closure_pending"] = False
        closing = data.decision in _CLOSING_DECISIONS
        if closing and row["kind"] == "recommendation" and row["tracked"]:
            batch.count(row["inspection_id"], closed=1)
    elif not isinstance(data, EvidenceSubmitted):
        raise TypeError(f"no projection for {type(data).__name__}")


def _snapshot(batch: _Batch, e: Envelope, row: Row) -> None:
    """Close the recommendation's open interval and open one from its row as it now stands."""
    rec_id = row["recommendation_id"]
    previous = batch.latest.get(rec_id)
    if previous is not None:
        previous[_VALID_TO] = e.effective_date
        previous[_SUPERSEDED_AT] = e.recorded_at
    elif rec_id in batch.current:
        batch.out.closed_before.append((rec_id, e.effective_date, e.recorded_at))
    # In STATE_COLUMNS order.
    state = [
        rec_id,
        row["stream_version"],
        row["last_effective_date"],
        None,
        e.recorded_at,
        None,
        row["last_event_id"],
        row["owner_team"],
        row["target_date"],
        row["delivery_status"],
        row["latest_position"],
        row["last_decision"],
        row["decision_date"],
    ]
    batch.latest[rec_id] = state
    batch.states.append(state)
