"""Events of the inspection stream (stream id = inspection id)."""

from datetime import date

from events.envelope import EventData
from events.types import RecordedShortText, Slug


class InspectionPublished(EventData):
    """An inspectorate published an inspection report."""

    inspection_id: Slug
    title: RecordedShortText
    inspectorate: RecordedShortText
    published_on: date
    inspection_type: RecordedShortText | None = None
    url: RecordedShortText | None = None
