"""The gateway's outcome book: held outcomes are never dropped, the others are bounded."""

import uuid
from datetime import UTC, datetime

from events.envelope import Actor
from events.outcome import Outcome
from services.decider.outcome_book import MAX_REFUSALS_PER_ID, OutcomeBook
from services.domain.commands import Command
from services.domain.idempotency import Claim, claim_of, principal_of
from tests.builders import ADMIN, command, publish

VIEWER = {"name": "Viewer Test", "team": "hmics", "role": "viewer"}


def outcome(status: str = "accepted", cid: uuid.UUID | None = None) -> Outcome:
    return Outcome(command_id=cid or uuid.uuid4(), status=status, recorded_at=datetime.now(UTC))


def command_as(actor: dict[str, str]) -> Command:
    return command("PublishInspection", publish().data.model_dump(mode="json"), actor=actor)


def claimed(cid: uuid.UUID, claim: Claim, status: str, reason: str | None = None) -> Outcome:
    return Outcome(
        command_id=cid,
        status=status,
        reason=reason,
        recorded_at=datetime.now(UTC),
        principal=claim.principal,
        command_digest=claim.digest,
    )


def test_outcomes_nobody_awaits_are_bounded_to_the_most_recent() -> None:
    book = OutcomeBook(keep_recent=3)
    seen = [outcome() for _ in range(5)]
    for o in seen:
        book.add(o)
    assert len(book) == 3
    assert book.known(o.command_id for o in seen) == {o.command_id for o in seen[2:]}


def test_expected_outcomes_are_held_however_many_arrive_until_released() -> None:
    book = OutcomeBook(keep_recent=2)
    awaited = [outcome() for _ in range(10)]
    book.expect(o.command_id for o in awaited)
    for o in [*awaited, *(outcome() for _ in range(10))]:
        book.add(o)
    assert book.known(o.command_id for o in awaited) == {o.command_id for o in awaited}
    book.release(o.command_id for o in awaited)
    assert len(book) == 2


def test_an_outcome_already_arrived_is_held_once_expected() -> None:
    book = OutcomeBook(keep_recent=1)
    early = outcome()
    book.add(early)
    book.expect([early.command_id])
    book.add(outcome())
    assert book.get(early.command_id) == early


def test_the_first_outcome_of_a_command_stands_until_forgotten() -> None:
    book = OutcomeBook()
    cid = uuid.uuid4()
    first, second = outcome("accepted", cid), outcome("rejected", cid)
    book.add(first)
    book.add(second)
    assert book.get(cid) == first
    book.forget(cid)
    book.add(second)
    assert book.get(cid) == second


def test_each_sender_finds_only_its_own_outcome_under_a_shared_id() -> None:
    genuine, squatter = claim_of(publish()), claim_of(command_as(VIEWER))
    cid = uuid.uuid4()
    book = OutcomeBook()
    book.add(claimed(cid, squatter, "rejected", "forbidden"))
    book.expect([cid])
    assert book.get(cid, genuine) is None  # the viewer's refusal is not the inspector's answer
    book.add(claimed(cid, genuine, "rejected", "command_id_reused"))
    book.add(claimed(cid, genuine, "rejected", "forbidden"))  # its first outcome stands
    answer = book.get(cid, genuine)
    assert answer is not None and answer.reason == "command_id_reused"
    first = book.get(cid, squatter)
    assert first is not None and first.reason == "forbidden"
    book.release([cid])
    polled = book.of_sender(cid, genuine.principal)
    assert polled is not None and polled.reason == "command_id_reused"
    assert book.of_sender(cid, principal_of(Actor.model_validate(ADMIN))) is None


def test_refusals_of_reuses_are_bounded_per_id_and_never_crowd_out_its_outcome() -> None:
    cid = uuid.uuid4()
    book = OutcomeBook()
    real = claimed(cid, claim_of(publish()), "accepted")
    refusals = [
        claimed(
            cid, claim_of(command_as({**VIEWER, "name": f"V{n}"})), "rejected", "command_id_reused"
        )
        for n in range(MAX_REFUSALS_PER_ID + 5)
    ]
    for refusal in refusals:
        book.add(refusal)
    assert book.get(cid) is None  # a refusal of a reuse never stands for the id
    book.add(real)
    assert book.get(cid) == real
    kept = [r for r in refusals if r.principal and book.of_sender(cid, r.principal)]
    assert kept == refusals[:MAX_REFUSALS_PER_ID]
