"""Named aliases shared by the contract.

Two kinds of text type, on purpose:

- what a command may bring in (`ShortText`, `LongText`, `HttpUrlText`, `BusinessDate`) is strict:
  no control characters, http(s) URLs only, dates within sane bounds, each refusal naming the
  field (pydantic puts the field in the error's location);
- what an event holds once appended (`RecordedShortText`, `RecordedLongText`) keeps the
  constraints events were written under. The log is immutable: an event accepted before a rule
  was tightened must stay readable, or the decider would fold around it (and could, say, issue
  the same recommendation number twice) and the history would lose it. Only the decider
  writes events, and it builds them from commands, so new events are as clean as the commands.
"""

import re
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, HttpUrl, StringConstraints, TypeAdapter
from pydantic_core import PydanticCustomError

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
Role = Literal["admin", "contributor", "inspector", "viewer"]
Kind = Literal["recommendation", "area_for_development"]
DeliveryStatus = Literal["on_track", "delayed"]
DelayReason = Literal["legislation", "system", "resourcing", "dependency", "other"]
Decision = Literal["closed", "kept_open", "more_evidence_requested", "superseded"]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

SHORT_TEXT_MAX = 500
LONG_TEXT_MAX = 20_000

# --- Text as it is recorded in the log (read back as it was written; see the module docstring).
RecordedShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SHORT_TEXT_MAX)
]
RecordedLongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LONG_TEXT_MAX)
]

# --- Text a command may bring in.
# C0 controls, DEL and C1 controls (U+009B is a terminal's CSI). NUL is the one PostgreSQL
# cannot store at all; the others corrupt terminals, CSV, Markdown and logs downstream. (Lone
# surrogates, which have no UTF-8 encoding, pydantic's str already refuses.)
SINGLE_LINE_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f]")
# Multi-line text keeps newline (U+000A) and tab (U+0009).
_MULTI_LINE_REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _refuse(pattern: re.Pattern[str], value: str, allowed: str) -> str:
    found = pattern.search(value)
    if found is not None:
        raise PydanticCustomError(
            "control_character",
            "control character {character} at position {position} is not allowed ({allowed})",
            {
                "character": f"U+{ord(found.group()):04X}",
                "position": found.start(),
                "allowed": allowed,
            },
        )
    return value


def single_line(value: str) -> str:
    """The value, if it holds no control character at all (names, titles, ids)."""
    return _refuse(SINGLE_LINE_REFUSED, value, "single-line text")


def multi_line(value: str) -> str:
    """The value, if its only control characters are newline and tab."""
    return _refuse(_MULTI_LINE_REFUSED, value, "only newline and tab")


def _unix_newlines(value: object) -> object:
    # Text pasted from Windows or posted from an HTML textarea ends lines with CR LF; keeping
    # the line break is the intent, so CR LF becomes LF. A lone CR is still refused.
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


# The same rules in the published schemas, so generated clients and fuzzers know them.
_SINGLE_LINE_SCHEMA = Field(json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"})
_MULTI_LINE_SCHEMA = Field(
    json_schema_extra={"pattern": "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"}
)

ShortText = Annotated[RecordedShortText, AfterValidator(single_line), _SINGLE_LINE_SCHEMA]
"""One line of text (names, titles, teams, ids): no control characters, at most 500."""

LongText = Annotated[
    RecordedLongText,
    BeforeValidator(_unix_newlines),
    AfterValidator(multi_line),
    _MULTI_LINE_SCHEMA,
]
"""Prose (text, positions, rationales): newlines and tabs allowed, no other control character."""

_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def http_url(value: str) -> str:
    """The value, if it is an absolute http or https URL with a host and no credentials.

    The text is kept as given (pydantic's HttpUrl would normalise it, for example by adding a
    trailing slash); HttpUrl is only the final judge of its syntax.
    """
    single_line(value)
    if any(c.isspace() for c in value):
        raise PydanticCustomError("url_parsing", "a URL cannot contain spaces")
    try:
        parts = urlsplit(value)
        scheme, host, user = parts.scheme.lower(), parts.hostname, parts.username
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise PydanticCustomError(
            "url_parsing", "not a valid URL: {error}", {"error": str(exc)}
        ) from exc
    if scheme not in ("http", "https"):
        raise PydanticCustomError(
            "url_scheme",
            "URL scheme must be http or https, not {scheme}",
            {"scheme": f"{scheme}:" if scheme else "none"},
        )
    if not host:
        raise PydanticCustomError("url_parsing", "URL has no host")
    if user is not None:
        # https://trusted.example@elsewhere.example reads as one site and opens another.
        raise PydanticCustomError("url_parsing", "URL must not carry a user name or password")
    try:
        _HTTP_URL.validate_python(value)
    except ValueError as exc:
        raise PydanticCustomError("url_parsing", "not a valid http(s) URL") from exc
    return value


HttpUrlText = Annotated[ShortText, AfterValidator(http_url)]
"""A link a person may follow: http or https only, kept as given, at most 500 characters."""

# --- Business dates a command may bring in.
EARLIEST_BUSINESS_DATE = date(1900, 1, 1)
BUSINESS_YEARS_AHEAD = 50


def latest_business_date(today: date | None = None) -> date:
    """The last business date a command may name: today (by default the clock's) + 50 years."""
    today = today or date.today()
    try:
        return today.replace(year=today.year + BUSINESS_YEARS_AHEAD)
    except ValueError:  # 29 February, in a year that has none
        return today.replace(year=today.year + BUSINESS_YEARS_AHEAD, day=28)


def latest_query_date(today: date | None = None) -> date:
    """The last day a query may name (a report's as-of, a known-at): the end of the year of the
    latest business date. The API and the CLI refuse later ones, and earlier than 1900."""
    return date(latest_business_date(today).year, 12, 31)


def business_date(value: date) -> date:
    """The date, if it lies between 1900-01-01 and today + 50 years.

    Outside that range a date is a typing slip or an attack: PostgreSQL stores date.min and
    date.max as -infinity and infinity, and every report, chart and paper built on them breaks.
    The upper bound only grows with time, so a command valid when the API checked it is still
    valid when the decider parses it again.
    """
    latest = latest_business_date()
    if not EARLIEST_BUSINESS_DATE <= value <= latest:
        raise PydanticCustomError(
            "date_out_of_range",
            "date {value} is outside {earliest} .. {latest}",
            {
                "value": value.isoformat(),
                "earliest": EARLIEST_BUSINESS_DATE.isoformat(),
                "latest": latest.isoformat(),
            },
        )
    return value


BusinessDate = Annotated[date, AfterValidator(business_date)]
"""A date a command names (publication, target, meeting, effective): 1900 to today + 50 years."""
