"""The outcomes a process may still be asked for, in memory that does not grow with the log."""

from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

from events.outcome import Outcome

KEEP_RECENT = 50_000


class OutcomeBook:
    """The outcomes a process may still be asked for, in memory that does not grow with the log.

    Outcomes of commands this process sent and has not yet collected are held until collected;
    of the others only the most recent `keep_recent` are kept (for status polls).
    """

    def __init__(self, keep_recent: int = KEEP_RECENT) -> None:
        self.keep_recent = keep_recent
        self._expected: set[UUID] = set()
        self._held: dict[UUID, Outcome] = {}
        self._recent: OrderedDict[UUID, Outcome] = OrderedDict()

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
        """Record an outcome; the first one seen for a command stands."""
        cid = outcome.command_id
        if cid in self._held or cid in self._recent:
            return
        if cid in self._expected:
            self._held[cid] = outcome
        else:
            self._remember(cid, outcome)

    def get(self, command_id: UUID) -> Outcome | None:
        """The outcome of a command, if this process knows it."""
        return self._held.get(command_id) or self._recent.get(command_id)

    def known(self, command_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these commands have a known outcome."""
        return {cid for cid in command_ids if cid in self._held or cid in self._recent}

    def forget(self, command_id: UUID) -> None:
        """Drop a known outcome (so a resent command's outcome is awaited afresh)."""
        self._held.pop(command_id, None)
        self._recent.pop(command_id, None)

    def __len__(self) -> int:
        return len(self._held) + len(self._recent)

    def _remember(self, cid: UUID, outcome: Outcome) -> None:
        self._recent[cid] = outcome
        while len(self._recent) > self.keep_recent:
            self._recent.popitem(last=False)
