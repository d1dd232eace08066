"""The status rules of the committee tables, in one place; pure."""

from datetime import date
from typing import Literal

Status = Literal["closed", "ongoing_on_track", "ongoing_delayed"]
Closure = Literal["closed", "superseded"]

# How each status reads in a table, a paper or a handover pack.
STATUS_WORDS: dict[str, str] = {
    "closed": "Closed",
    "ongoing_on_track": "Ongoing – on track",
    "ongoing_delayed": "Ongoing – delayed",
}


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


def status_sql(*, decision: str, delivery_status: str, target_date: str, as_of: str) -> str:
    """The same rule as `classify`, as a SQL expression over the given column names.

    Kept beside `classify` and tested against it, so the rule lives in one module.
    """
    return (
        f"CASE WHEN {decision} IN ('closed', 'superseded') THEN 'closed' "
        f"WHEN {delivery_status} = 'delayed' OR {target_date} < {as_of} THEN 'ongoing_delayed' "
        "ELSE 'ongoing_on_track' END"
    )


def closure_sql(decision: str) -> str:
    """The same rule as `closure_of`, as a SQL expression."""
    return f"CASE WHEN {decision} IN ('closed', 'superseded') THEN {decision} END"
