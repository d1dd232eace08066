"""The decider's answer to one command, published on `rectrack.outcomes`."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from events.envelope import Actor
from events.types import RecordedShortText, Role, Sha256


class Principal(BaseModel):
    """Who sent a command, as its idempotency record keeps it.

    The actor (over HTTP: the bearer token's name, team and role) and, for a command loaded
    from a file, the loader. A small value: it is hashed and compared for every repeated
    command id, and one instance is shared by every command of the same sender.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RecordedShortText
    team: RecordedShortText
    role: Role
    loaded_by: Actor | None = None


class Outcome(BaseModel):
    """Accepted with the appended event ids, or rejected with a stable reason code.

    `principal` and `command_digest` say whose command, with which payload, this outcome
    answers (services/domain/idempotency.py). Both are None on outcomes written before they
    existed and on outcomes of messages too malformed, or not authenticated enough, to name a
    sender. `key_id` names the key whose signature the decider verified.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: UUID
    correlation_id: UUID | None = None
    status: Literal["accepted", "rejected"]
    command_type: str | None = None
    stream_id: str | None = None
    stream_version: int | None = None
    event_ids: tuple[UUID, ...] = ()
    reason: str | None = None
    detail: str | None = None
    recorded_at: datetime
    principal: Principal | None = None
    command_digest: Sha256 | None = None
    # The key that signed the command (events/signing.py), when its signature verified.
    key_id: str | None = None
