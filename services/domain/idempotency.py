"""When one command id names "the same command": the same sender and the same payload; pure.

A command id is an idempotency key, not a name anyone may take. The decider keeps, for each
command id, the claim of the command that first used it: its principal (who sent it) and its
payload digest (what it says). A later command with that id is the same command only if both
match; it then gets the first outcome back. Otherwise it is refused as `command_id_reused`,
appends nothing, and the first record stands. Whoever uses an id first therefore keeps it:
someone who guesses or learns another's command id in advance (load files carry fixed ids)
can make that command come back `command_id_reused`, which costs its sender only a new id, but
can never make it look applied, refused, or answered with someone else's outcome.
"""

import hashlib
from typing import Any, NamedTuple

import orjson

from events.envelope import Actor
from events.outcome import Outcome, Principal
from services.domain.commands import Command
from services.domain.rejections import Reason


class Claim(NamedTuple):
    """Who sent a command and what it says: what a reused command id is checked against."""

    principal: Principal
    digest: str


def principal_of(actor: Actor, loaded_by: Actor | None = None) -> Principal:
    """The principal of a command (or of the event it became): its actor and its loader."""
    return Principal(name=actor.name, team=actor.team, role=actor.role, loaded_by=loaded_by)


def command_digest(command: Command) -> str:
    """SHA-256 (hex) of the canonical JSON of what a command says.

    Covered: `type`, `data`, `effective_date` and `expected_version`, everything that decides
    what the command does (its event, its stream, its checks). Not covered: `command_id` (the
    key itself), `correlation_id` (tracing only), and `actor` / `loaded_by` (the principal,
    compared apart, so the log's events need to carry only the digest).

    Canonical: the data as its model dumps it in JSON mode without None values (so an explicit
    null and an absent optional field are the same payload, and defaults are spelled out),
    dates in ISO format, keys sorted at every level, no whitespace. Text has already been
    normalised by validation (surrounding whitespace stripped). A new optional field of a
    command keeps old digests only if it defaults to None.
    """
    doc: dict[str, Any] = {
        "type": command.type,
        "data": command.data.model_dump(mode="json", exclude_none=True),
        "effective_date": command.effective_date.isoformat() if command.effective_date else None,
        "expected_version": command.expected_version,
    }
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def claim_of(command: Command) -> Claim:
    """The claim a command makes on its command id."""
    return Claim(principal_of(command.actor, command.loaded_by), command_digest(command))


def is_reuse_answer(outcome: Outcome) -> bool:
    """Whether an outcome only refuses a reused command id (and so records nothing)."""
    return outcome.reason == Reason.COMMAND_ID_REUSED.value


def answers(outcome: Outcome, claim: Claim | None) -> bool:
    """Whether an outcome is the answer to the command that made this claim.

    Without a claim (someone following a command id it did not send), only a real outcome
    answers, never the refusal of another sender's reuse. With one, the outcome must name the
    same principal, and the same digest unless it predates digests.
    """
    if claim is None:
        return not is_reuse_answer(outcome)
    if outcome.principal != claim.principal:
        return False
    return outcome.command_digest is None or outcome.command_digest == claim.digest


def same_command(
    first: tuple[Principal | None, str | None, str | None], claim: Claim, stream_id: str
) -> bool:
    """Whether a command with this claim, on this stream, is the one its id first named.

    `first` is the (principal, digest, stream id) its id's record keeps. A record without a
    principal names no sender, so nothing can prove to be its command. A record without a
    digest (an event appended before digests existed) is matched on its principal and stream.
    """
    principal, digest, first_stream = first
    if principal is None or principal != claim.principal:
        return False
    if digest is None:
        return first_stream == stream_id
    return digest == claim.digest
