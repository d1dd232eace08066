"""The decider's answer to one command, published on `rectrack.outcomes`."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Outcome(BaseModel):
    """Accepted with the appended event ids, or rejected with a stable reason code."""

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
