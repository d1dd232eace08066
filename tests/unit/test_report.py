"""Status rules and report assembly (pure)."""

from datetime import date
from typing import Any
from uuid import uuid4

from projections.recommendations.report import assemble_report
from projections.status import classify, is_counted

AS_OF = date(2024, 9, 18)


def test_closed_and_superseded_count_as_closed() -> None:
    for decision in ("closed", "superseded"):
        assert (
            classify(
                as_of=AS_OF, last_decision=decision, delivery_status="delayed", target_date=None
            )
            == "closed"
        )


def test_delayed_when_reported_delayed_or_target_passed() -> None:
    assert (
        classify(
            as_of=AS_OF,
            last_decision=None,
            delivery_status="delayed",
            target_date=date(2025, 6, 30),
        )
        == "ongoing_delayed"
    )
    assert (
        classify(
            as_of=AS_OF,
            last_decision="kept_open",
            delivery_status="on_track",
            target_date=date(2024, 9, 17),
        )
        == "ongoing_delayed"
    )


def test_on_track_otherwise_including_target_due_today() -> None:
    assert (
        classify(as_of=AS_OF, last_decision=None, delivery_status=None, target_date=AS_OF)
        == "ongoing_on_track"
    )


def test_counted_only_tracked_recommendations_issued_by_the_date() -> None:
    assert is_counted("recommendation", True, date(2024, 1, 1), AS_OF)
    assert not is_counted("area_for_development", True, date(2024, 1, 1), AS_OF)
    assert not is_counted("recommendation", False, date(2024, 1, 1), AS_OF)
    assert not is_counted("recommendation", True, date(2024, 9, 19), AS_OF)


def row(number: int, **facts: Any) -> dict[str, Any]:
    base = {
        "recommendation_id": f"i/r{number}",
        "inspection_id": "i",
        "number": number,
        "decision": None,
        "decision_date": None,
        "delivery_status": None,
        "target_date": None,
        "owner": None,
        "position": None,
        "last_event_id": uuid4(),
    }
    return base | facts


def test_totals_add_up_and_closed_since_uses_the_decision_date() -> None:
    rows = [
        row(1, decision="closed", decision_date=date(2024, 1, 5)),
        row(2, decision="closed", decision_date=date(2024, 7, 1)),
        row(3, decision="superseded", decision_date=date(2024, 8, 1)),
        row(4, delivery_status="delayed"),
        row(5, delivery_status="on_track", target_date=date(2025, 1, 1)),
        row(6, decision="kept_open", decision_date=date(2024, 8, 1)),
    ]
    report = assemble_report(
        as_of=AS_OF,
        since=date(2024, 3, 12),
        known_at=None,
        inspections=[{"inspection_id": "i", "title": "I"}],
        recommendation_rows=rows,
    )
    line = report.inspections[0]
    assert (line.total, line.closed, line.ongoing_on_track, line.ongoing_delayed) == (6, 3, 2, 1)
    assert line.closed == sum(r.status == "closed" for r in line.recommendations)
    assert line.closed_since == [2, 3]
    assert [r.closure for r in line.recommendations][:3] == ["closed", "closed", "superseded"]
