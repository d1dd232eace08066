"""Reports as of a date, since an update and as known at a moment, over hand-written histories.

Events are written straight through the projector's batch function into a schema of this test's
own on the real PostgreSQL, so business dates and recorded_at are exactly as written here.
"""

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from events.committee import CommitteeUpdateRecorded
from events.inspection import InspectionPublished
from events.recommendation import (
    ClosureProposed,
    Document,
    EvidenceSubmitted,
    InspectorateDecisionRecorded,
    OwnerAssigned,
    ProgressReported,
    TargetDateSet,
)
from infra.database import create_pool, migrate
from infra.settings import Settings
from projections.recommendations import queries
from projections.status import classify, status_sql
from tests.histories import INSP, T1, History
from tests.projecting import project_messages

pytestmark = pytest.mark.integration

T2, T3 = (datetime(2024, 9, d, 12, tzinfo=UTC) for d in (20, 30))


def close(h: History, rid: str, on: str, decision: str = "closed", evidence: str = "e1") -> None:
    if decision == "closed":
        h.add(
            rid, on, EvidenceSubmitted(recommendation_id=rid, evidence_id=evidence, summary="ESF")
        )
        h.add(
            rid,
            on,
            ClosureProposed(recommendation_id=rid, rationale="met", evidence_ids=(evidence,)),
        )
    h.add(
        rid,
        on,
        InspectorateDecisionRecorded(
            recommendation_id=rid,
            decision=decision,
            rationale=f"{decision} by HMICS",
        ),
    )


def progress(h: History, rid: str, on: str, status: str, recorded: datetime = T1) -> None:
    h.add(
        rid,
        on,
        ProgressReported(
            recommendation_id=rid,
            position=f"{status} on {on}",
            delivery_status=status,
            delay_reason="system" if status == "delayed" else None,
        ),
        recorded,
    )


def handwritten() -> History:
    h = History()
    h.add(
        INSP,
        "2024-01-10",
        InspectionPublished(
            inspection_id=INSP, title="Audit", inspectorate="HMICS", published_on=date(2024, 1, 10)
        ),
    )
    a, b, c, d, e = (h.rec(n) for n in range(1, 6))
    h.rec(6, kind="area_for_development")
    h.rec(7, tracked=False)
    close(h, a, "2024-03-01")
    # b: a proposal kept open, then proposed again and closed after the committee update
    h.add(b, "2024-02-01", EvidenceSubmitted(recommendation_id=b, evidence_id="e1", summary="x"))
    h.add(
        b, "2024-02-01", ClosureProposed(recommendation_id=b, rationale="r", evidence_ids=("e1",))
    )
    h.add(
        b,
        "2024-04-01",
        InspectorateDecisionRecorded(
            recommendation_id=b, decision="kept_open", rationale="evidence of impact needed"
        ),
    )
    close(h, b, "2024-08-01", evidence="e2")
    close(h, c, "2024-05-01", decision="superseded")
    h.add(
        d,
        "2024-02-01",
        TargetDateSet(
            recommendation_id=d,
            target_date=date(2024, 4, 30),
            reason="plan",
            agreed_with_inspectorate=True,
            original_target_date=date(2024, 4, 30),
            revision=0,
        ),
    )
    progress(h, d, "2024-02-01", "on_track")
    progress(h, e, "2024-06-01", "on_track", T1)
    # A correction recorded on T3, effective before the 18 September report date.
    progress(h, e, "2024-07-01", "delayed", T3)
    h.add(
        "committee:ppc",
        "2024-06-12",
        CommitteeUpdateRecorded(committee="ppc", meeting_date=date(2024, 6, 12), title="Update"),
    )
    return h


@pytest.fixture(scope="module")
async def audit_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    own = dataclasses.replace(settings, db_schema=f"audit_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(own)
    await migrate(pool)
    async with pool.acquire() as conn:
        await project_messages(conn, "t", handwritten().messages())
    yield pool
    await pool.close()


async def counts(pool: asyncpg.Pool, as_of: str, **kwargs: Any) -> dict[str, Any]:
    async with pool.acquire() as conn:
        report = await queries.report(conn, as_of=date.fromisoformat(as_of), **kwargs)
    line = report.inspections[0]
    return {
        "counts": (line.total, line.closed, line.ongoing_on_track, line.ongoing_delayed),
        "statuses": {r["number"]: r["status"] for r in line.recommendations},
        "closures": {r["number"]: r["closure"] for r in line.recommendations if r["closure"]},
        "closed_since": line.closed_since,
        "since": report.since,
    }


async def test_before_anything_happened_all_five_are_on_track(audit_pool: asyncpg.Pool) -> None:
    got = await counts(audit_pool, "2024-01-31")
    assert got["counts"] == (5, 0, 5, 0)  # the AFD and the untracked one are not counted


async def test_a_target_date_that_passes_makes_it_delayed(audit_pool: asyncpg.Pool) -> None:
    assert (await counts(audit_pool, "2024-04-30"))["statuses"][4] == "ongoing_on_track"
    assert (await counts(audit_pool, "2024-05-01"))["statuses"][4] == "ongoing_delayed"


async def test_closures_superseded_and_a_reopened_proposal(audit_pool: asyncpg.Pool) -> None:
    mid = await counts(audit_pool, "2024-06-30")
    assert mid["counts"] == (5, 2, 2, 1)  # 2 and 5 on track, 4 past its target date
    assert mid["closures"] == {1: "closed", 3: "superseded"}
    assert mid["statuses"][2] == "ongoing_on_track"  # kept open after its first proposal
    assert mid["since"] == date(2024, 6, 12)


async def test_since_defaults_to_the_last_committee_update(audit_pool: asyncpg.Pool) -> None:
    got = await counts(audit_pool, "2024-09-18")
    assert got["since"] == date(2024, 6, 12)
    assert got["closed_since"] == [2]
    assert got["counts"] == (5, 3, 0, 2)
    earlier = await counts(audit_pool, "2024-09-18", since=date(2024, 1, 1))
    assert earlier["closed_since"] == [1, 2, 3]
    before_update = await counts(audit_pool, "2024-06-12")
    assert before_update["since"] is None  # strictly before the as-of date


async def test_known_at_reproduces_a_past_report_despite_a_backdated_correction(
    audit_pool: asyncpg.Pool,
) -> None:
    now = await counts(audit_pool, "2024-09-18")
    then = await counts(audit_pool, "2024-09-18", known_at=T2)
    assert now["statuses"][5] == "ongoing_delayed"
    assert then["statuses"][5] == "ongoing_on_track"
    assert then["counts"] == (5, 3, 1, 1)
    async with audit_pool.acquire() as conn:
        before_any_record = await queries.report(
            conn, as_of=date(2024, 9, 18), known_at=datetime(2024, 1, 1, tzinfo=UTC)
        )
    assert before_any_record.inspections == []  # nothing was known yet


async def test_each_figure_names_the_event_that_last_changed_it(audit_pool: asyncpg.Pool) -> None:
    h = handwritten()  # same shape; ids differ, so compare by what the event was
    async with audit_pool.acquire() as conn:
        report = await queries.report(conn, as_of=date(2024, 9, 18))
        rows = {
            r["number"]: uuid.UUID(r["last_event_id"])
            for r in report.inspections[0].recommendations
        }
        types = {
            n: await conn.fetchval("SELECT type FROM event_log WHERE event_id = $1", eid)
            for n, eid in rows.items()
        }
    assert len(h.envelopes) > 0
    assert types == {
        1: "InspectorateDecisionRecorded",
        2: "InspectorateDecisionRecorded",
        3: "InspectorateDecisionRecorded",
        4: "ProgressReported",
        5: "ProgressReported",
    }


async def test_history_and_handover_of_a_recommendation_with_three_owners(
    settings: Settings,
) -> None:
    h = History()
    h.add(
        INSP,
        "2024-01-10",
        InspectionPublished(
            inspection_id=INSP, title="Audit", inspectorate="HMICS", published_on=date(2024, 1, 10)
        ),
    )
    rid = h.rec(1)
    for on, team in (("2024-01-15", "team-a"), ("2024-03-01", "team-b"), ("2024-06-01", "team-c")):
        h.add(
            rid,
            on,
            OwnerAssigned(
                recommendation_id=rid,
                team=team,
                owner_role="lead",
                previous_team=None if team == "team-a" else "x",
            ),
        )
    h.add(
        rid,
        "2024-06-10",
        TargetDateSet(
            recommendation_id=rid,
            target_date=date(2024, 12, 31),
            reason="plan",
            agreed_with_inspectorate=True,
            original_target_date=date(2024, 9, 30),
            revision=2,
        ),
    )
    doc = Document(name="esf.pdf", sha256="b" * 64)
    h.add(
        rid,
        "2024-06-15",
        EvidenceSubmitted(
            recommendation_id=rid, evidence_id="esf-1", summary="dashboard", documents=(doc,)
        ),
    )
    h.add(
        rid,
        "2024-06-15",
        ClosureProposed(recommendation_id=rid, rationale="done", evidence_ids=("esf-1",)),
    )
    h.add(
        rid,
        "2024-07-01",
        InspectorateDecisionRecorded(
            recommendation_id=rid,
            decision="more_evidence_requested",
            rationale="HMICS seeking evidence of impact on communities",
        ),
    )
    progress(h, rid, "2024-08-01", "delayed")
    own = dataclasses.replace(settings, db_schema=f"handover_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await project_messages(conn, "t", h.messages())
            entries = await queries.history(conn, rid)
            pack = await queries.handover(conn, rid, as_of=date(2024, 9, 18))
    finally:
        await pool.close()
    assert [e.stream_version for e in entries] == list(range(1, 10))
    assert entries[5].documents == [doc] and entries[5].evidence_ids == ["esf-1"]
    assert entries[7].rationale == "HMICS seeking evidence of impact on communities"
    assert pack is not None
    assert [(o.team, o.from_date, o.to_date) for o in pack.owners] == [
        ("team-a", date(2024, 1, 15), date(2024, 3, 1)),
        ("team-b", date(2024, 3, 1), date(2024, 6, 1)),
        ("team-c", date(2024, 6, 1), None),
    ]
    assert (pack.target_date, pack.original_target_date, pack.target_date_revisions) == (
        date(2024, 12, 31),
        date(2024, 9, 30),
        2,
    )
    assert pack.outstanding_asks and "impact on communities" in pack.outstanding_asks[0]
    assert pack.evidence[0].inspectorate_responses[0].endswith("impact on communities")
    assert pack.last_position is not None and pack.last_position.delivery_status == "delayed"
    assert pack.status == "ongoing_delayed"


async def test_the_sql_status_rule_agrees_with_classify(audit_pool: asyncpg.Pool) -> None:
    as_of = date(2024, 9, 18)
    cases = [
        (decision, status, target)
        for decision in (None, "closed", "superseded", "kept_open", "more_evidence_requested")
        for status in (None, "on_track", "delayed")
        for target in (None, date(2024, 9, 17), as_of, date(2024, 9, 19))
    ]
    expression = status_sql(
        decision="$1::text", delivery_status="$2::text", target_date="$3::date", as_of="$4::date"
    )
    async with audit_pool.acquire() as conn:
        for decision, status, target in cases:
            in_sql = await conn.fetchval(f"SELECT {expression}", decision, status, target, as_of)
            expected = classify(
                as_of=as_of, last_decision=decision, delivery_status=status, target_date=target
            )
            assert in_sql == expected, (decision, status, target)


async def test_counts_always_add_up(audit_pool: asyncpg.Pool) -> None:
    async with audit_pool.acquire() as conn:
        for day in ("2024-01-10", "2024-03-01", "2024-05-01", "2024-08-01", "2024-09-18"):
            for known in (None, T1, T2, T3):
                report = await queries.report(conn, as_of=date.fromisoformat(day), known_at=known)
                for line in report.inspections:
                    assert line.total == len(line.recommendations)
                    assert line.closed + line.ongoing_on_track + line.ongoing_delayed == line.total


async def test_free_text_is_escaped_in_the_report_json(settings: Settings) -> None:
    hostile = 'He said "done" \\ then\nleft\ttabs, a </script> and ünïcødé ✓'
    h = History()
    h.add(
        INSP,
        "2024-01-10",
        InspectionPublished(
            inspection_id=INSP,
            title='An "audit" \\ of\nthings',
            inspectorate="HMICS",
            published_on=date(2024, 1, 10),
        ),
    )
    rid = h.rec(1)
    h.add(rid, "2024-02-01", OwnerAssigned(recommendation_id=rid, team='team "q"', owner_role="o"))
    h.add(
        rid,
        "2024-02-02",
        ProgressReported(recommendation_id=rid, position=hostile, delivery_status="on_track"),
    )
    own = dataclasses.replace(settings, db_schema=f"escape_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await project_messages(conn, "t", h.messages())
            doc = orjson.loads(await queries.report_json(conn, as_of=date(2024, 9, 18)))
    finally:
        await pool.close()
    (inspection,) = doc["inspections"]
    assert inspection["title"] == 'An "audit" \\ of\nthings'
    (line,) = inspection["recommendations"]
    assert (line["latest_position"], line["owner"]) == (hostile, 'team "q"')
    assert (line["number"], line["recommendation_id"], line["closure"]) == (1, rid, None)
    assert line["status"] == "ongoing_on_track"
    assert doc["as_of"] == "2024-09-18"
    assert doc["since"] is None
