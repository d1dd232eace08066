"""What the decider derives from a command and its state before the append; pure."""

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from events.envelope import CommandSignature, Envelope
from events.registry import current_version, event_type_name
from events.streams import inspection_of
from services.domain.commands import Command
from services.domain.decide import Accepted
from services.domain.state import AnyState, InspectionState


def inspection_for(
    streams: Mapping[str, AnyState], command: Command, stream_id: str
) -> InspectionState | None:
    """The inspection a command's rules look at: its stream's, or the one its data names."""
    inspection_id = inspection_of(stream_id) or getattr(command.data, "inspection_id", None)
    found = streams.get(inspection_id) if inspection_id else None
    return found if isinstance(found, InspectionState) else None


def new_envelope(
    command: Command,
    stream_id: str,
    verdict: Accepted,
    stream: AnyState | None,
    *,
    event_id: UUID,
    recorded_at: datetime,
    command_digest: str | None = None,
    command_signature: CommandSignature | None = None,
) -> Envelope:
    """The accepted command's event, at its stream's next version; not yet sealed.

    `command_digest` (services/domain/idempotency.py) goes into the event so that a decider
    rebuilt from the log still knows what payload the command id was first used with;
    `command_signature` (events/signing.py), so that anyone can later prove who asked for it.
    """
    event_type = event_type_name(verdict.event)
    return Envelope(
        event_id=event_id,
        type=event_type,
        schema_version=current_version(event_type),
        stream_id=stream_id,
        stream_version=(stream.version if stream else 0) + 1,
        effective_date=verdict.effective_date,
        recorded_at=recorded_at,
        command_id=command.command_id,
        correlation_id=command.correlation_id or command.command_id,
        actor=command.actor,
        loaded_by=command.loaded_by,
        command_digest=command_digest,
        command_signature=command_signature,
        data=verdict.event,
    )
