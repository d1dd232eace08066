"""Events of a committee's stream (stream id = `committee:{id}`)."""

from datetime import date
from typing import Any

from events.envelope import EventData
from events.types import RecordedShortText, Slug


class CommitteeUpdateRecorded(EventData):
    """A committee received an update: the point "since the last update" starts from.

    Schema version 2 added `committee_name`: the committee as the command gave it (a name such
    as "Policing Performance Committee", or its id); `committee` is the id derived from it
    (`events.names.derive_id`). Version 1 events had only the id: their name is None.
    """

    committee: Slug
    meeting_date: date
    title: RecordedShortText
    committee_name: RecordedShortText | None = None


def committee_name_not_recorded(data: dict[str, Any]) -> dict[str, Any]:
    """Upcast CommitteeUpdateRecorded 1 -> 2: version 1 recorded only the committee's id."""
    return {"committee_name": None, **data}
