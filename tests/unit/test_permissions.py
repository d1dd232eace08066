"""The one table of which roles may ever send which command type, and decide's use of it."""

from datetime import date
from typing import get_args

import pytest

from events.types import Role
from services.domain.commands import CommandType
from services.domain.decide import Rejected, decide
from services.domain.permissions import EVIDENCE_READERS, ROLES_FOR, may_read_evidence, refusal
from tests.builders import command

ROLES: tuple[Role, ...] = get_args(Role)


def test_every_command_type_has_its_roles_and_a_viewer_has_none() -> None:
    assert set(ROLES_FOR) == set(get_args(CommandType))
    assert all(refusal("viewer", t) is not None for t in ROLES_FOR)
    assert all(refusal("admin", t) is None for t in ROLES_FOR)
    assert refusal("admin", "DropTables") == "DropTables is not a command type"


@pytest.mark.parametrize("role", ROLES)
def test_decide_refuses_what_the_table_refuses_before_any_rule_of_state(role: Role) -> None:
    # A committee update on an empty world: the table alone decides whether it is forbidden.
    cmd = command(
        "RecordCommitteeUpdate",
        {"committee": "spa-ppc", "meeting_date": "2024-09-18", "title": "t"},
        actor={"name": "n", "team": "t", "role": role},
    )
    verdict = decide(cmd, stream=None, inspection=None, today=date(2024, 9, 18))
    if refusal(role, "RecordCommitteeUpdate") is None:
        assert not isinstance(verdict, Rejected)
    else:
        assert isinstance(verdict, Rejected)
        assert verdict.reason == "forbidden"
        assert verdict.detail == "RecordCommitteeUpdate needs role admin"


@pytest.mark.parametrize(
    ("role", "team", "may"),
    [
        ("admin", "secretariat", True),
        ("inspector", "hmics", True),
        ("contributor", "team-a", True),  # owns it now
        ("viewer", "team-a", True),  # the owning team, whatever the role
        ("contributor", "team-old", True),  # submitted it, before a handover
        ("contributor", "team-b", False),
        ("viewer", "secretariat", False),
    ],
)
def test_who_may_read_an_evidence_document(role: str, team: str, may: bool) -> None:
    assert may_read_evidence(role, team, owner_team="team-a", submitted_by_team="team-old") is may
    assert {"admin", "inspector"} == EVIDENCE_READERS


def test_nobody_but_the_inspectorate_and_admins_reads_evidence_of_an_unowned_recommendation() -> (
    None
):
    assert not may_read_evidence("contributor", "team-a", owner_team=None, submitted_by_team="x")


def test_a_team_reads_its_evidence_whether_its_token_names_it_by_name_or_by_id() -> None:
    owner = "partnerships-prevention-and-community-wellbeing"
    for team in (owner, "Partnerships, Prevention & Community Wellbeing"):
        assert may_read_evidence("contributor", team, owner_team=owner, submitted_by_team="x")
    assert not may_read_evidence(
        "contributor", "Partnerships and Prevention", owner_team=owner, submitted_by_team="x"
    )
