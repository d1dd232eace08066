"""What makes two commands under one id "the same command": the digest and the principal."""

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest

from events.envelope import Actor
from events.outcome import Outcome
from services.domain.commands import Command, dump_command, parse_command
from services.domain.idempotency import (
    Claim,
    answers,
    claim_of,
    command_digest,
    principal_of,
    same_command,
)
from tests.builders import ADMIN, INSPECTOR, issue, publish


def variant(command: Command, **changes: Any) -> Command:
    return parse_command({**orjson.loads(dump_command(command)), **changes})


def test_the_digest_ignores_transport_details_and_spelling() -> None:
    cmd = issue("insp-a", 1)
    doc = orjson.loads(dump_command(cmd))
    respelled = {
        **doc,
        "command_id": str(uuid4()),
        "correlation_id": str(uuid4()),
        "actor": ADMIN,  # the principal is compared apart from the payload
        # keys in another order, defaults spelled out, an optional field as explicit null,
        # text with the surrounding whitespace validation strips
        "data": {
            "tracked": True,
            "kind": "recommendation",
            "source": None,
            "text": "  Recommendation 1 ",
            "number": 1,
            "inspection_id": "insp-a",
        },
    }
    assert command_digest(parse_command(respelled)) == command_digest(cmd)


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "PublishInspection"},
        {"effective_date": "2024-01-11"},
        {"expected_version": 0},
        {"data": {"inspection_id": "insp-a", "number": 1, "text": "Other words"}},
        {
            "data": {
                "inspection_id": "insp-a",
                "number": 1,
                "text": "Recommendation 1",
                "source": "s",
            }
        },
    ],
)
def test_the_digest_changes_with_anything_that_changes_what_the_command_does(
    changes: dict[str, Any],
) -> None:
    cmd = issue("insp-a", 1)
    if changes.get("type") == "PublishInspection":  # another type with data of its own
        changes = {**changes, "data": publish("insp-a").data.model_dump(mode="json")}
    assert command_digest(variant(cmd, **changes)) != command_digest(cmd)


def test_the_principal_is_the_actor_and_the_loader() -> None:
    cmd = publish()
    loader = Actor(name="Alex Admin", team="secretariat", role="admin")
    loaded = cmd.model_copy(update={"loaded_by": loader})
    assert claim_of(cmd).principal == principal_of(Actor.model_validate(INSPECTOR))
    assert claim_of(loaded).principal.loaded_by == loader
    assert claim_of(loaded).principal != claim_of(cmd).principal
    assert claim_of(loaded).digest == claim_of(cmd).digest


def _outcome(claim: Claim | None, reason: str | None = None) -> Outcome:
    return Outcome(
        command_id=uuid4(),
        status="rejected" if reason else "accepted",
        reason=reason,
        recorded_at=datetime.now(UTC),
        principal=claim.principal if claim else None,
        command_digest=claim.digest if claim else None,
    )


def test_an_outcome_answers_only_its_own_sender_and_payload() -> None:
    mine = claim_of(publish())
    other_payload = Claim(mine.principal, "0" * 64)
    other_sender = Claim(principal_of(Actor.model_validate(ADMIN)), mine.digest)
    assert answers(_outcome(mine), mine)
    assert not answers(_outcome(other_payload), mine)
    assert not answers(_outcome(other_sender), mine)
    assert not answers(_outcome(None, "invalid_command"), mine)  # names nobody
    assert answers(_outcome(Claim(mine.principal, None)), mine)  # type: ignore[arg-type]
    # Someone following an id it did not send sees the real outcome, never a reuse refusal.
    assert answers(_outcome(other_sender), None)
    assert not answers(_outcome(other_sender, "command_id_reused"), None)


def test_same_command_needs_the_same_principal_and_digest_or_for_old_events_stream() -> None:
    mine = claim_of(publish())
    assert same_command((mine.principal, mine.digest, "s"), mine, "s")
    assert not same_command((mine.principal, "0" * 64, "s"), mine, "s")
    assert not same_command(
        (principal_of(Actor.model_validate(ADMIN)), mine.digest, "s"), mine, "s"
    )
    assert not same_command((None, None, "s"), mine, "s")
    assert same_command((mine.principal, None, "s"), mine, "s")
    assert not same_command((mine.principal, None, "s"), mine, "t")
