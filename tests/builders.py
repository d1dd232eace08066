"""Test data builders shared by unit and integration tests (no I/O)."""

from datetime import date
from typing import Any
from uuid import uuid4

from services.domain.commands import Command, parse_command

INSPECTOR = {"name": "Inspector Test", "team": "hmics", "role": "inspector"}
ADMIN = {"name": "Admin Test", "team": "improvement", "role": "admin"}


def contributor(team: str = "team-a") -> dict[str, str]:
    """A contributor actor of a team."""
    return {"name": f"Contributor {team}", "team": team, "role": "contributor"}


def command(
    type_: str,
    data: dict[str, Any],
    *,
    actor: dict[str, str] | None = None,
    effective_date: date | None = date(2024, 6, 1),
    **extra: Any,
) -> Command:
    """A parsed command with sensible defaults."""
    doc: dict[str, Any] = {"type": type_, "data": data, "actor": actor or INSPECTOR, **extra}
    if effective_date is not None:
        doc["effective_date"] = effective_date.isoformat()
    return parse_command(doc)


def publish(inspection_id: str | None = None, published_on: str = "2024-01-10") -> Command:
    """PublishInspection of a fresh (or given) inspection."""
    return command(
        "PublishInspection",
        {
            "inspection_id": inspection_id or f"insp-{uuid4().hex[:10]}",
            "title": "A thematic inspection",
            "inspectorate": "HMICS",
            "published_on": published_on,
        },
        effective_date=date.fromisoformat(published_on),
    )


def issue(inspection_id: str, number: int, **data: Any) -> Command:
    """IssueRecommendation number N of an inspection."""
    return command(
        "IssueRecommendation",
        {
            "inspection_id": inspection_id,
            "number": number,
            "text": f"Recommendation {number}",
            **data,
        },
        effective_date=date(2024, 1, 10),
    )


def rec_command(
    type_: str, rec_id: str, actor: dict[str, str] | None = None, **data: Any
) -> Command:
    """A command on a recommendation stream."""
    return command(type_, {"recommendation_id": rec_id, **data}, actor=actor or ADMIN)
