"""The status rules of the committee tables, in one place; pure."""

from datetime import date
from typing import Literal

Status = Literal["closed", "ongoing_on_track", "ongoing_delayed"]
Closure = Literal["closed", "superseded"]

CLOSING_DECISIONS: frozenset[str] = frozenset({"closed", "superseded"})


def is_counted(kind: str, tracked: bool, issued_on: date, as_of: date) -> bool:
    """Counted: a tracked recommendation (not an area for development) issued by the date."""
    return kind == "recommendation" and tracked and issued_on <= as_of


def closure_of(last_decision: str | None) -> Closure | None:
    """'closed' or 'superseded' when the latest decision ends the recommendation."""
    if last_decision == "closed":
        return "closed"
    if last_decision == "superseded":
        return "superseded"
    return None


def classify(
    *,
    as_of: date,
    last_decision: str | None,
    delivery_status: str | None,
    target_date: date | None,
) -> Status:
    """Closed; else delayed if reported delayed or the target date in force has passed."""
    if closure_of(last_decision):
        return "closed"
    if delivery_status == "delayed" or (target_date is not None and target_date < as_of):
        return "ongoing_delayed"
    return "ongoing_on_track"
