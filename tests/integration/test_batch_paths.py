"""The bulk fast path and the per-event fallback (project's statements) build the same tables.

One history with every event type, projected in batches of several sizes (so state intervals
and counts cross batch boundaries, and so do the test decider's seals) into a schema per path;
the table checksums must agree. So must they when forged events sit among genuine ones.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
import pytest

from events.committee import CommitteeUpdateRecorded
from events.inspection import InspectionPublished
from events.integrity import seal_document
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
from tests.sealing import TEST_DECIDER_KEYS, sealed, untrusted_sealer

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
                OwnerAssigned(
                    recommendation_id=rid, team="ppcw", team_name="PPCW", owner_role="lead"
                ),
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
                committee="ppc",
                meeting_date=date(2024, i + 6, 12),
                title="Update",
                # Given by its id once, by its name since (schema version 2).
                committee_name="Policing Performance Committee" if i else None,
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
                    conn,
                    RECOMMENDATIONS,
                    "t",
                    messages[start : start + size],
                    keys=TEST_DECIDER_KEYS,
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
    # Seals of 7 events: most batches meet events whose seal came in an earlier batch.
    messages = every_kind_of_event().messages(seal_every=7)
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
            result = await apply_batch(
                conn, RECOMMENDATIONS, "t", h.messages(), keys=TEST_DECIDER_KEYS
            )
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


def _forged_owner(genuine: Message, team: str) -> dict[str, Any]:
    """A forgery as issue 14 made one: the stream's next version (an owner assignment), linked
    to its real head and hashed exactly as events/integrity.py hashes, but by no decider."""
    doc = orjson.loads(genuine.value)
    head = doc.pop("hash")
    doc.pop("seal", None)
    data = {"recommendation_id": doc["stream_id"], "team": team, "owner_role": "o"}
    forged = {
        **doc,
        "event_id": str(uuid.uuid4()),
        "type": "OwnerAssigned",
        "stream_version": doc["stream_version"] + 1,
        "data": data,
    }
    return seal_document(forged, head)


def with_unauthenticated_events() -> tuple[list[Message], int]:
    """A sealed history with forged events in it, each continuing its stream's chain: unsealed,
    sealed by a key nobody trusts, and carrying a genuine seal copied from another event."""
    h = History()
    h.add(
        "auth",
        "2024-01-10",
        InspectionPublished(
            inspection_id="auth", title="A", inspectorate="HMICS", published_on=date(2024, 1, 10)
        ),
    )
    for n in (1, 2, 3):
        rid = h.rec(n)
        h.add(rid, "2024-02-01", OwnerAssigned(recommendation_id=rid, team="ppcw", owner_role="o"))
        h.add(
            rid,
            "2024-05-01",
            InspectorateDecisionRecorded(
                recommendation_id=rid, decision="kept_open", rationale="r"
            ),
        )
    genuine = h.messages(seal_every=4)
    carrier = next(m for m in genuine if b'"seal"' in m.value)
    copied_seal = orjson.loads(carrier.value)["seal"]
    # After each recommendation's issue (versions 1): a forged owner of version 2, before the
    # genuine version 2. The genuine events after it must still project.
    issues = [i for i, m in enumerate(genuine) if orjson.loads(m.value)["stream_version"] == 1][1:]
    forged = [
        orjson.dumps(_forged_owner(genuine[issues[0]], "forged-unsealed")),
        sealed(
            orjson.dumps(_forged_owner(genuine[issues[1]], "forged-untrusted")),
            untrusted_sealer(),
        ),
        orjson.dumps({**_forged_owner(genuine[issues[2]], "forged-copied"), "seal": copied_seal}),
    ]
    values = [m.value for m in genuine]
    for at, value in sorted(zip(issues, forged, strict=True), reverse=True):
        values.insert(at + 1, value)
    return [Message(0, i, b"auth", v) for i, v in enumerate(values)], len(forged)


async def test_events_no_trusted_decider_sealed_are_refused_the_same_way_on_both_paths(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages, forged = with_unauthenticated_events()
    sizes = (1, 3, 4, 1000)
    bulk = [await build(settings, messages, size, failures=forged) for size in sizes]

    async def refuse(*_: object) -> None:
        raise NeedsCare

    monkeypatch.setattr(apply, "apply_in_bulk", refuse)
    one_by_one = [await build(settings, messages, size, failures=forged) for size in sizes]
    assert all(sums == bulk[0] for sums in bulk + one_by_one)

    own = dataclasses.replace(settings, db_schema=f"paths_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(own)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await apply_batch(conn, RECOMMENDATIONS, "t", messages, keys=TEST_DECIDER_KEYS)
            errors = await conn.fetch(
                'SELECT "offset", stream_id, in_chain, reason FROM projection_errors '
                'ORDER BY "offset"'
            )
            owners = await conn.fetch("SELECT DISTINCT owner_team FROM recommendations")
            versions = await conn.fetch("SELECT stream_version FROM stream_heads")
    finally:
        await pool.close()
    assert [e["stream_id"] for e in errors] == ["audit-insp/r1", "audit-insp/r2", "audit-insp/r3"]
    assert not any(e["in_chain"] for e in errors)  # no head moved past a forgery
    reasons = [e["reason"] for e in errors]
    assert all(r.startswith("not authenticated by a decider key: ") for r in reasons), reasons
    assert "in no seal" in reasons[0]
    assert "which is not a trusted decider key" in reasons[1]
    assert "first hash is not the hash of the event that carries it" in reasons[2]
    assert [o["owner_team"] for o in owners] == ["ppcw"]  # the genuine owners, after forgeries
    assert {v["stream_version"] for v in versions} == {1, 3}  # the inspection; each rec's last


async def test_events_whose_seal_came_in_an_earlier_batch_find_it_in_the_table(
    settings: Settings,
) -> None:
    messages = every_kind_of_event().messages(seal_every=7)
    stored = {}
    for size in (5, len(messages)):
        own = dataclasses.replace(settings, db_schema=f"paths_{uuid.uuid4().hex[:8]}")
        pool = await create_pool(own)
        try:
            await migrate(pool)
            async with pool.acquire() as conn:
                for start in range(0, len(messages), size):
                    batch = messages[start : start + size]
                    result = await apply_batch(
                        conn, RECOMMENDATIONS, "t", batch, keys=TEST_DECIDER_KEYS
                    )
                    assert (result.applied, result.failed) == (len(batch), 0)
                stored[size] = await conn.fetchval("SELECT count(*) FROM sealed_events")
        finally:
            await pool.close()
    # Batches of 5 cut most seals of 7 from some of their events: those hashes wait in the
    # table. One batch holds every seal with its events: nothing needs keeping.
    assert stored[5] > 0 and stored[len(messages)] == 0
