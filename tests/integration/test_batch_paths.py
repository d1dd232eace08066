"""The bulk fast path and the per-event fallback (project's statements) build the same tables.

One history with every event type, projected in batches of several sizes (so state intervals
and counts cross batch boundaries) into a schema per path; the table checksums must agree.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import date

import pytest

from events.committee import CommitteeUpdateRecorded
from events.inspection import InspectionPublished
from events.recommendation import (
    ClosureProposed,
    EvidenceSubmitted,
    InspectorateDecisionRecorded,
    OwnerAssigned,
    ProgressReported,
    RecommendationIssued,
    TargetDateSet,
)
from events.topics import Message
from infra.database import create_pool, migrate
from infra.settings import Settings
from projections import apply
from projections.apply import apply_batch
from projections.checksums import table_checksums
from projections.projection import NeedsCare
from projections.recommendations.projection import RECOMMENDATIONS
from tests.histories import History

pytestmark = pytest.mark.integration


def every_kind_of_event() -> History:
    h = History()
    for i, insp in enumerate(("paths-a", "paths-b")):
        h.add(
            insp,
            f"2024-0{i + 1}-10",
            InspectionPublished(
                inspection_id=insp, title=insp, inspectorate="HMICS", published_on=date(2024, 1, 10)
            ),
        )
        for n, kind, tracked in (
            (1, "recommendation", True),
            (2, "recommendation", False),
            (3, "area_for_development", True),
            (4, "recommendation", True),
        ):
            rid = f"{insp}/r{n}"
            h.add(
                rid,
                "2024-02-01",
                RecommendationIssued(
                    recommendation_id=rid,
                    inspection_id=insp,
                    number=n,
                    kind=kind,
                    text=f"t{n}",
                    tracked=tracked,
                ),
            )
            h.add(
                rid,
                "2024-02-02",
                OwnerAssigned(recommendation_id=rid, team="ppcw", owner_role="lead"),
            )
            h.add(
                rid,
                "2024-02-03",
                TargetDateSet(
                    recommendation_id=rid,
                    target_date=date(2024, 6, 30),
                    reason="plan",
                    agreed_with_inspectorate=True,
                    original_target_date=date(2024, 6, 30),
                    revision=0,
                ),
            )
            h.add(
                rid,
                "2024-03-01",
                ProgressReported(
                    recommendation_id=rid,
                    position="late",
                    delivery_status="delayed",
                    delay_reason="system",
                ),
            )
            h.add(
                rid,
                "2024-04-01",
                EvidenceSubmitted(recommendation_id=rid, evidence_id="e1", summary="ESF"),
            )
            h.add(
                rid,
                "2024-04-02",
                ClosureProposed(recommendation_id=rid, rationale="met", evidence_ids=("e1",)),
            )
            decision = ("closed", "kept_open", "superseded", "more_evidence_requested")[n - 1]
            h.add(
                rid,
                "2024-05-01",
                InspectorateDecisionRecorded(
                    recommendation_id=rid, decision=decision, rationale="r"
                ),
            )
        h.add(
            "committee:ppc",
            f"2024-0{i + 6}-12",
            CommitteeUpdateRecorded(
                committee="ppc", meeting_date=date(2024, i + 6, 12), title="Update"
            ),
        )
    return h


async def build(
    settings: Settings,
    messages: Sequence[Message],
    size: int,
    failures: int = 0,
) -> dict[str, str]:
    own = dataclasses.replace(settings, db_schema=f"paths_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            failed = 0
            for start in range(0, len(messages), size):
                result = await apply_batch(
                    conn, RECOMMENDATIONS, "t", messages[start : start + size]
                )
                failed += result.failed
            assert failed == failures
            return await table_checksums(conn, own.db_schema, RECOMMENDATIONS)
    finally:
        await pool.close()


@pytest.mark.parametrize("size", [1, 5, 13, 1000])
async def test_bulk_writer_builds_what_the_per_event_statements_build(
    settings: Settings, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = every_kind_of_event().messages()
    bulk = await build(settings, messages, size)

    async def refuse(*_: object) -> None:
        raise NeedsCare

    monkeypatch.setattr(apply, "apply_in_bulk", refuse)
    one_by_one = await build(settings, messages, size)
    assert bulk == one_by_one


async def test_a_value_postgresql_cannot_hold_is_recorded_not_retried(settings: Settings) -> None:
    h = History()
    rid = h.rec(1)
    h.add(
        rid,
        "2024-02-03",
        TargetDateSet(
            recommendation_id=rid,
            target_date=date(2024, 6, 30),
            reason="plan",
            agreed_with_inspectorate=True,
            original_target_date=date(2024, 6, 30),
            revision=2**40,  # valid for the model, too big for an integer column
        ),
    )
    own = dataclasses.replace(settings, db_schema=f"paths_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            result = await apply_batch(conn, RECOMMENDATIONS, "t", h.messages())
            errors = await conn.fetchval("SELECT count(*) FROM projection_errors")
    finally:
        await pool.close()
    assert (result.applied, result.failed, errors) == (1, 1, 1)


def with_events_postgresql_refuses() -> History:
    """Two streams, each with an event whose NUL PostgreSQL refuses, and events after it."""
    h = History()
    h.add(
        "nul",
        "2024-01-10",
        InspectionPublished(
            inspection_id="nul", title="N", inspectorate="HMICS", published_on=date(2024, 1, 10)
        ),
    )
    h.add(
        "nul/r1",
        "2024-01-10",
        RecommendationIssued(
            recommendation_id="nul/r1", inspection_id="nul", number=1, text="\x00"
        ),
    )
    h.add(
        "nul/r1", "2024-02-02", OwnerAssigned(recommendation_id="nul/r1", team="t", owner_role="o")
    )
    h.add(
        "nul/r2",
        "2024-01-10",
        RecommendationIssued(recommendation_id="nul/r2", inspection_id="nul", number=2, text="t"),
    )
    for position, on in (("a\x00b", "2024-03-01"), ("back on track", "2024-04-01")):
        h.add(
            "nul/r2",
            on,
            ProgressReported(
                recommendation_id="nul/r2", position=position, delivery_status="on_track"
            ),
        )
    h.add(
        "nul/r2",
        "2024-05-01",
        InspectorateDecisionRecorded(
            recommendation_id="nul/r2", decision="kept_open", rationale="r"
        ),
    )
    return h


async def test_an_event_that_cannot_be_applied_moves_its_head_on_both_paths(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exactly the two refused events fail: had a head stopped at one, the events after it in
    # its stream would fail too ("chain broken"), and so would the count.
    messages = with_events_postgresql_refuses().messages()
    sizes = (1, 2, 3, 1000)
    bulk = [await build(settings, messages, size, failures=2) for size in sizes]

    async def refuse(*_: object) -> None:
        raise NeedsCare

    monkeypatch.setattr(apply, "apply_in_bulk", refuse)
    one_by_one = [await build(settings, messages, size, failures=2) for size in sizes]
    assert all(sums == bulk[0] for sums in bulk + one_by_one)
