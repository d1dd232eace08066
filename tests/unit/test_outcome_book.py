"""The gateway's outcome book: held outcomes are never dropped, the others are bounded."""

import uuid
from datetime import UTC, datetime

from events.outcome import Outcome
from services.decider.outcome_book import OutcomeBook


def outcome(status: str = "accepted", cid: uuid.UUID | None = None) -> Outcome:
    return Outcome(command_id=cid or uuid.uuid4(), status=status, recorded_at=datetime.now(UTC))


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
