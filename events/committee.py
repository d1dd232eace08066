"""Events of a committee's stream (stream id = `committee:{slug}`)."""

from datetime import date

from events.envelope import EventData
from events.types import RecordedShortText, Slug


class CommitteeUpdateRecorded(EventData):
    """A committee received an update: the point "since the last update" starts from."""

    committee: Slug
    meeting_date: date
    title: RecordedShortText
