"""The status rules (pure)."""

from datetime import date

from projections.status import classify

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
