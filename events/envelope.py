"""The envelope every event on `rectrack.events` carries around its data."""

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from events.types import RecordedShortText, Role, Sha256


class Actor(BaseModel):
    """Who caused an event: a person or system, their team and their role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RecordedShortText
    team: RecordedShortText
    role: Role


class CommandSignature(BaseModel):
    """The signed command an event came from: who asked for it, provably (events/signing.py).

    The payload exactly as signed and sent, the signing key's id and the signature (base64).
    With the key's registration in the log (`SigningKeyRegistered`, stream `key:<key_id>`)
    anyone can check, years later, that the key's principal asked for this command.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    payload: str
    signature: str


class EventData(BaseModel):
    """Base of every event's data; subclasses name the fact in the past tense."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str | None = Field(default=None, max_length=500)


class Envelope(BaseModel):
    """One immutable fact of one stream, as appended to the log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    type: str
    schema_version: int = Field(default=1, ge=1)
    stream_id: str
    stream_version: int = Field(ge=1)
    effective_date: date
    recorded_at: datetime
    command_id: UUID
    correlation_id: UUID
    actor: Actor
    loaded_by: Actor | None = None
    # SHA-256 of the command's payload (services/domain/idempotency.py), so a decider rebuilt
    # from the log can tell a resent command from another one reusing its id. Left out of the
    # JSON when None: events written before it existed dump, and so hash, exactly as they did.
    command_digest: Sha256 | None = Field(default=None, exclude_if=lambda value: value is None)
    # The command's signature (events/signing.py), left out of the JSON when None like
    # command_digest: events written before commands were signed hash as they did. A later
    # signature of the decider over the event itself would be a field of its own beside it.
    command_signature: CommandSignature | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    data: SerializeAsAny[EventData]
    # The chain (events/integrity.py): the previous event of this stream, and this one's hash.
    prev_hash: str | None = None
    hash: str = ""
