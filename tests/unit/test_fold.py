"""fold: a batch's rows computed in memory, refusing what the statements would refuse."""

import pytest

from events.recommendation import OwnerAssigned, RecommendationIssued
from projections.recommendations.fold import (
    RECOMMENDATION_COLUMNS,
    STATE_COLUMNS,
    Conflict,
    fold,
)
from tests.histories import INSP, History


def test_a_recommendation_issued_twice_is_a_conflict() -> None:
    h = History()
    rid = h.rec(1)
    h.add(
        rid,
        "2024-01-11",
        RecommendationIssued(recommendation_id=rid, inspection_id=INSP, number=1, text="again"),
    )
    with pytest.raises(Conflict):
        fold(h.envelopes, {})


def test_an_event_for_an_unknown_recommendation_is_only_logged() -> None:
    h = History()
    h.add(
        f"{INSP}/r9",
        "2024-01-11",
        OwnerAssigned(recommendation_id=f"{INSP}/r9", team="t", owner_role="lead"),
    )
    rows = fold(h.envelopes, {})
    assert len(rows.event_log) == 1
    assert (rows.new_recommendations, rows.states, rows.closed_before) == ([], [], [])


def test_only_the_interval_open_before_the_batch_is_closed_by_statement() -> None:
    h = History()
    rid = h.rec(1)
    first = fold(h.envelopes, {})
    stored = dict(zip(RECOMMENDATION_COLUMNS, first.new_recommendations[0], strict=True))
    for team in ("a", "b"):
        h.add(rid, "2024-02-01", OwnerAssigned(recommendation_id=rid, team=team, owner_role="x"))
    rows = fold(h.envelopes[1:], {rid: stored})
    assert [closed[0] for closed in rows.closed_before] == [rid]
    valid_to = STATE_COLUMNS.index("valid_to")
    assert [state[valid_to] is None for state in rows.states] == [False, True]
