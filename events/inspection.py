"""Events of the inspection stream (stream id = inspection id)."""

from datetime import date

from events.envelope import EventData
from events.types import ShortText, Slug


class InspectionPublished(EventData):
    """An inspectorate published an inspection report."""

    inspection_id: Slug
    title: ShortText
    inspectorate: ShortText
    published_on: date
    inspection_type: ShortText | None = None
    url: ShortText | None = None
