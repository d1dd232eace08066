"""Projections are pure: an event becomes parameterised SQL statements."""

from datetime import UTC, date, datetime
from uuid import uuid4

from events.envelope import Actor, Envelope, EventData
from events.inspection import InspectionPublished
from events.recommendation import InspectorateDecisionRecorded, RecommendationIssued
from projections.recommendations.project import project
from projections.statements import Statement


def wrap(data: EventData, stream_id: str, version: int = 1) -> Envelope:
    return Envelope(
        event_id=uuid4(),
        type=type(data).__name__,
        stream_id=stream_id,
        stream_version=version,
        effective_date=date(2024, 1, 10),
        recorded_at=datetime.now(UTC),
        command_id=uuid4(),
        correlation_id=uuid4(),
        actor=Actor(name="A", team="t", role="inspector"),
        data=data,
    )


def tables(statements: list[Statement]) -> list[str]:
    return [s.sql.split()[2] for s in statements]


def test_every_event_is_logged_first() -> None:
    event = wrap(
        InspectionPublished(
            inspection_id="i", title="T", inspectorate="HMICS", published_on=date(2024, 1, 10)
        ),
        "i",
    )
    statements = project(event)
    assert statements[0].sql.startswith("INSERT INTO event_log")
    assert statements[0].args[0] == event.event_id


def test_a_tracked_recommendation_counts_an_untracked_does_not() -> None:
    tracked = project(
        wrap(
            RecommendationIssued(recommendation_id="i/r1", inspection_id="i", number=1, text="t"),
            "i/r1",
        )
    )
    untracked = project(
        wrap(
            RecommendationIssued(
                recommendation_id="i/r2", inspection_id="i", number=2, text="t", tracked=False
            ),
            "i/r2",
        )
    )
    assert "inspection_counts" in tables(tracked)
    assert "inspection_counts" not in tables(untracked)


def test_only_closing_decisions_touch_the_closed_count() -> None:
    closing = project(
        wrap(
            InspectorateDecisionRecorded(
                recommendation_id="i/r1", decision="closed", rationale="r"
            ),
            "i/r1",
            5,
        )
    )
    keeping = project(
        wrap(
            InspectorateDecisionRecorded(
                recommendation_id="i/r1", decision="kept_open", rationale="r"
            ),
            "i/r1",
            5,
        )
    )
    assert any("closed = closed + 1" in s.sql for s in closing)
    assert not any("closed = closed + 1" in s.sql for s in keeping)


def test_values_are_parameters_never_sql_text() -> None:
    nasty = "'); DROP TABLE recommendations; --"
    statements = project(
        wrap(
            RecommendationIssued(recommendation_id="i/r1", inspection_id="i", number=1, text=nasty),
            "i/r1",
        )
    )
    assert all(nasty not in s.sql for s in statements)
    assert any(nasty in s.args for s in statements)
