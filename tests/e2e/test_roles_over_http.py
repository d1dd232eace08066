"""Every command type × every role over HTTP: the actor comes from the token, rules hold."""

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from infra.settings import Settings
from services.decider.gateway import CommandGateway
from tests.builders import ADMIN, command, issue, publish, rec_command
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.integration

# (role, team) of each caller; "outsider" is a contributor of a team that owns nothing here.
CALLERS = {
    "admin": ("admin", "secretariat"),
    "inspector": ("inspector", "hmics"),
    "contributor": ("contributor", "team-a"),
    "outsider": ("contributor", "team-b"),
    "viewer": ("viewer", "team-a"),
}
ALLOWED = {
    "PublishInspection": {"admin", "inspector"},
    "IssueRecommendation": {"admin", "inspector"},
    "AssignOwner": {"admin"},
    "SetTargetDate": {"admin", "contributor"},
    "ReportProgress": {"admin", "contributor"},
    "SubmitEvidence": {"admin", "contributor"},
    "ProposeClosure": {"admin", "contributor"},
    "RecordInspectorateDecision": {"admin", "inspector"},
    "RecordCommitteeUpdate": {"admin"},
}


def bodies(inspection_id: str, rec: str, tag: str) -> list[dict[str, Any]]:
    """One command of each type, in an order in which each is valid when allowed."""
    return [
        {
            "type": "PublishInspection",
            "data": {
                "inspection_id": f"{inspection_id}-new",
                "title": "t",
                "inspectorate": "HMICS",
                "published_on": "2024-01-10",
            },
        },
        {
            "type": "IssueRecommendation",
            "data": {"inspection_id": inspection_id, "number": 2, "text": "another"},
        },
        {
            "type": "AssignOwner",
            "data": {"recommendation_id": rec, "team": "team-a", "owner_role": "lead"},
        },
        {
            "type": "SetTargetDate",
            "data": {
                "recommendation_id": rec,
                "target_date": "2027-06-30",
                "reason": "plan",
                "agreed_with_inspectorate": True,
            },
        },
        {
            "type": "ReportProgress",
            "data": {"recommendation_id": rec, "position": "p", "delivery_status": "on_track"},
        },
        {
            "type": "SubmitEvidence",
            "data": {"recommendation_id": rec, "evidence_id": "e2", "summary": "s"},
        },
        {
            "type": "ProposeClosure",
            "data": {"recommendation_id": rec, "rationale": "r", "evidence_ids": ["e1"]},
        },
        {
            "type": "RecordInspectorateDecision",
            "data": {"recommendation_id": rec, "decision": "kept_open", "rationale": "impact?"},
        },
        {
            "type": "RecordCommitteeUpdate",
            "data": {"committee": f"committee-{tag}", "meeting_date": "2024-09-18", "title": "t"},
        },
    ]


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_every_command_type_for_every_role(
    caller: str, stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    tag = uuid.uuid4().hex[:8]
    insp = publish(f"roles-{tag}")
    rec = issue(insp.stream_id, 1)
    await gateway.submit([insp, rec], timeout=30)
    setup = [
        rec_command("AssignOwner", rec.stream_id, team="team-a", owner_role="lead"),
        command(
            "SubmitEvidence",
            {"recommendation_id": rec.stream_id, "evidence_id": "e1", "summary": "s"},
            actor=ADMIN,
            effective_date=None,
        ),
    ]
    outcomes = await gateway.submit(setup, timeout=30)
    assert {o.status for o in outcomes.values()} == {"accepted"}

    role, team = CALLERS[caller]
    got: dict[str, int] = {}
    async with httpx.AsyncClient(
        base_url=stack.api_url, timeout=30, headers=await bearer(pool, role, team)
    ) as api:
        for body in bodies(insp.stream_id, rec.stream_id, tag):
            response = await api.post("/commands", json=body)
            got[body["type"]] = response.status_code
            if response.status_code == 403:
                assert response.json()["reason"] == "forbidden"
    expected = {t: 201 if caller in allowed else 403 for t, allowed in ALLOWED.items()}
    assert got == expected
