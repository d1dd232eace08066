"""The one table of which roles may ever send which command type, and decide's use of it."""

from datetime import date
from typing import get_args

import pytest

from events.types import Role
from services.domain.commands import CommandType
from services.domain.decide import Rejected, decide
from services.domain.permissions import ROLES_FOR, refusal
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
