"""Property-based: random command sequences keep the lifecycle's invariants."""

from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.recommendation import InspectorateDecisionRecorded
from projections.status import classify
from services.domain.commands import Command
from services.domain.decide import Accepted
from services.domain.state import RecommendationState
from tests.builders import ADMIN, INSPECTOR, command, contributor, issue, publish
from tests.world import TODAY, World

INSP = "prop-insp"
RECS = [f"{INSP}/r{n}" for n in (1, 2, 3)]
ACTORS = [ADMIN, INSPECTOR, contributor("team-a"), contributor("team-b")]
START = date(2024, 1, 10)


def _data(kind: str, rec: str, n: int) -> tuple[str, dict[str, Any]]:
    table: dict[str, tuple[str, dict[str, Any]]] = {
        "owner": ("AssignOwner", {"team": "team-a", "owner_role": "lead"}),
        "target": (
            "SetTargetDate",
            {
                "target_date": str(START + timedelta(days=30 * n)),
                "reason": "plan",
                "agreed_with_inspectorate": True,
            },
        ),
        "on_track": ("ReportProgress", {"position": "p", "delivery_status": "on_track"}),
        "delayed": (
            "ReportProgress",
            {"position": "p", "delivery_status": "delayed", "delay_reason": "system"},
        ),
        "evidence": ("SubmitEvidence", {"evidence_id": f"e{n % 3}", "summary": "s"}),
        "propose": ("ProposeClosure", {"rationale": "r", "evidence_ids": [f"e{n % 3}"]}),
        "close": ("RecordInspectorateDecision", {"decision": "closed", "rationale": "r"}),
        "keep": ("RecordInspectorateDecision", {"decision": "kept_open", "rationale": "r"}),
        "more": (
            "RecordInspectorateDecision",
            {"decision": "more_evidence_requested", "rationale": "r"},
        ),
        "supersede": ("RecordInspectorateDecision", {"decision": "superseded", "rationale": "r"}),
    }
    type_, data = table[kind]
    return type_, {"recommendation_id": rec, **data}


step = st.tuples(
    st.sampled_from(
        [
            "owner",
            "target",
            "on_track",
            "delayed",
            "evidence",
            "propose",
            "close",
            "keep",
            "more",
            "supersede",
        ]
    ),
    st.sampled_from(RECS),
    st.sampled_from(ACTORS),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=5),
)


def _commands(steps: list[tuple[str, str, dict[str, str], int, int]]) -> list[Command]:
    day = START
    commands = []
    for kind, rec, actor, n, gap in steps:
        day = min(day + timedelta(days=gap), TODAY)
        type_, data = _data(kind, rec, n)
        commands.append(command(type_, data, actor=actor, effective_date=day))
    return commands


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=60))
def test_random_histories_keep_the_invariants(
    steps: list[tuple[str, str, dict[str, str], int, int]],
) -> None:
    world = World().given([publish(INSP, "2024-01-10"), *(issue(INSP, n) for n in (1, 2, 3))])
    for cmd in _commands(steps):
        before = dict(world.streams)
        verdict = world.run(cmd)
        if not isinstance(verdict, Accepted):
            assert world.streams == before  # a rejection changes nothing

    by_stream: dict[str, list[int]] = {}
    for envelope in world.log:
        by_stream.setdefault(envelope.stream_id, []).append(envelope.stream_version)
    for versions in by_stream.values():
        assert versions == list(range(1, len(versions) + 1))  # contiguous, from 1

    for rec in RECS:
        events = [e for e in world.log if e.stream_id == rec]
        ends = [
            i
            for i, e in enumerate(events)
            if isinstance(e.data, InspectorateDecisionRecorded)
            and e.data.decision in ("closed", "superseded")
        ]
        assert not ends or ends[0] == len(events) - 1  # nothing follows a closure

    statuses = []
    for rec in RECS:
        state = world.streams[rec]
        assert isinstance(state, RecommendationState)
        statuses.append(
            classify(
                as_of=TODAY,
                last_decision=state.last_decision,
                delivery_status=state.delivery_status,
                target_date=state.target_date,
            )
        )
        assert (statuses[-1] == "closed") == state.finished
    assert all(s in ("closed", "ongoing_on_track", "ongoing_delayed") for s in statuses)
