"""The outcomes a process may still be asked for, in memory that does not grow with the log."""

from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

from events.outcome import Outcome, Principal
from services.domain.idempotency import Claim, answers, is_reuse_answer

KEEP_RECENT = 50_000
# Refusals of a reused id kept per command id (one per principal and digest), beside the id's
# real outcome: bounded, so flooding one id with reuses cannot grow memory.
MAX_REFUSALS_PER_ID = 8


class OutcomeBook:
    """The outcomes a process may still be asked for, in memory that does not grow with the log.

    Outcomes of commands this process sent and has not yet collected are held until collected;
    of the others only those of the most recent `keep_recent` command ids are kept (for status
    polls). One command id may have several: its real outcome, and the `command_id_reused`
    refusals of other senders or payloads that tried it. Each is found only by the claim or the
    principal it answers, so one sender's outcome never answers another's command.
    """

    def __init__(self, keep_recent: int = KEEP_RECENT) -> None:
        self.keep_recent = keep_recent
        self._expected: set[UUID] = set()
        self._held: dict[UUID, tuple[Outcome, ...]] = {}
        self._recent: OrderedDict[UUID, tuple[Outcome, ...]] = OrderedDict()

    def expect(self, command_ids: Iterable[UUID]) -> None:
        """Hold these commands' outcomes, already arrived or to come, until released."""
        for cid in command_ids:
            self._expected.add(cid)
            if cid in self._recent:
                self._held[cid] = self._recent.pop(cid)

    def release(self, command_ids: Iterable[UUID]) -> None:
        """Stop holding these outcomes: they join the recent ones."""
        for cid in command_ids:
            self._expected.discard(cid)
            if cid in self._held:
                self._remember(cid, self._held.pop(cid))

    def add(self, outcome: Outcome) -> None:
        """Record an outcome; for each (principal, digest) the first one seen stands."""
        cid = outcome.command_id
        known = self._outcomes(cid)
        if not known:
            if cid in self._expected:
                self._held[cid] = (outcome,)
            else:
                self._remember(cid, (outcome,))
            return
        claim = (outcome.principal, outcome.command_digest)
        if any((o.principal, o.command_digest) == claim for o in known):
            return
        if is_reuse_answer(outcome) and sum(map(is_reuse_answer, known)) >= MAX_REFUSALS_PER_ID:
            return  # its sender's wait ends without it (202); the id's real outcome is kept
        if cid in self._held:
            self._held[cid] = (*known, outcome)
        else:  # in place: an answer to a late reuse does not make the id recent again
            self._recent[cid] = (*known, outcome)

    def get(self, command_id: UUID, claim: Claim | None = None) -> Outcome | None:
        """The outcome answering the command that made this claim (services/domain/idempotency).

        Without a claim: the command id's real outcome, never a refusal of someone's reuse.
        """
        return next((o for o in self._outcomes(command_id) if answers(o, claim)), None)

    def of_sender(self, command_id: UUID, principal: Principal) -> Outcome | None:
        """The outcome of this principal's command with this id (for status polls)."""
        return next((o for o in self._outcomes(command_id) if o.principal == principal), None)

    def known(self, command_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these commands have a known outcome."""
        return {cid for cid in command_ids if cid in self._held or cid in self._recent}

    def forget(self, command_id: UUID) -> None:
        """Drop a known outcome (so a resent command's outcome is awaited afresh)."""
        self._held.pop(command_id, None)
        self._recent.pop(command_id, None)

    def __len__(self) -> int:
        return len(self._held) + len(self._recent)

    def _outcomes(self, cid: UUID) -> tuple[Outcome, ...]:
        return self._held.get(cid) or self._recent.get(cid) or ()

    def _remember(self, cid: UUID, outcomes: tuple[Outcome, ...]) -> None:
        self._recent[cid] = outcomes
        while len(self._recent) > self.keep_recent:
            self._recent.popitem(last=False)
