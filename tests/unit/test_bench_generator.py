"""The synthetic history is deterministic and valid under the lifecycle rules."""

from datetime import date

import orjson

from bench.generate import commands
from services.domain.commands import parse_command_bytes
from tests.world import World


def test_same_seed_same_history_and_every_command_is_accepted() -> None:
    lines = list(commands(2000, seed=7))
    assert lines == list(commands(2000, seed=7))
    assert lines != list(commands(2000, seed=8))
    assert len(lines) == 2000
    world = World()
    world_today = date.today()
    for line in lines:
        cmd = parse_command_bytes(line)
        verdict = world.run(cmd, today=world_today)
        assert verdict.__class__.__name__ == "Accepted", (orjson.loads(line), verdict)
    kinds = {e.type for e in world.log}
    assert {
        "OwnerAssigned",
        "TargetDateSet",
        "ProgressReported",
        "EvidenceSubmitted",
        "ClosureProposed",
        "InspectorateDecisionRecorded",
        "CommitteeUpdateRecorded",
    } <= kinds
