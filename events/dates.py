"""Dates and moments as people type them (the CLI's options, the API's query parameters):
read, or refused saying truly what is wrong.

`2024-13-45 is not a date (month 13 does not exist); use YYYY-MM-DD`, where a date library
says it "does not match the format", or that a time with hour 25 has "unexpected extra
characters". The reason never names the option or parameter: its caller puts that first.

A date lies between 1900-01-01 and the end of the year fifty years on (`latest_query_date`):
outside that, it is a typing slip.
"""

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone

from events.types import EARLIEST_BUSINESS_DATE, latest_query_date


class NotADate(ValueError):
    """Text that names no date or moment (or one out of range); the message says why."""


DAY = "YYYY-MM-DD"
MOMENT = "YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]"  # seconds may have a fraction too

# ASCII digits only: int() would take other scripts' digits too.
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
# ISO 8601 as people type it and as rectrack prints it (the paper's "rebuild exactly" command
# gives `datetime.isoformat()`: microseconds and an offset).
_MOMENT = re.compile(
    r"(?P<day>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    r"(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE | re.ASCII,
)
_SHOWN_AS_IS = re.compile(r"[\w:+./-]{1,40}")


def _shown(text: str) -> str:
    """The value as the message shows it: as typed, or quoted when that would hide something
    (blank, spaces, odd characters, or too long to be a date)."""
    return text if _SHOWN_AS_IS.fullmatch(text) else repr(text[:40])


def _day_problem(year: int, month: int, day: int) -> str | None:
    """Why this year, month and day name no day of the calendar, or None."""
    if not 1 <= month <= 12:
        return f"month {month} does not exist"
    # calendar.monthrange refuses year 0; isleap does not, and the range check comes after.
    days = (31, 29 if calendar.isleap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if day == 0:
        return "day 0 does not exist"
    if day > days[month - 1]:
        return f"{calendar.month_name[month]} {year} has {days[month - 1]} days"
    return None


def _range_problem(year: int, month: int, day: int, today: date | None) -> str | None:
    """Why a day of the calendar is refused (too early or too late), or None. Compared as
    numbers: year 0 is no `date`."""
    first, last = EARLIEST_BUSINESS_DATE, latest_query_date(today)
    if first.timetuple()[:3] <= (year, month, day) <= last.timetuple()[:3]:
        return None
    return f"use a date from {first.isoformat()} to {last.isoformat()}"


def read_day(text: str, *, bounded: bool = True, today: date | None = None) -> date:
    """The date `text` names, as YYYY-MM-DD; NotADate saying why it names none.

    `bounded`: between 1900-01-01 and the end of the year fifty years on (a caller with
    bounds of its own, such as a meeting's, checks them itself)."""
    found = _DAY.fullmatch(text.strip())
    if found is None:
        raise NotADate(f"{_shown(text)} is not a date; use {DAY}")
    year, month, day = (int(part) for part in found.groups())
    problem = _day_problem(year, month, day)
    if problem is not None:
        raise NotADate(f"{_shown(text)} is not a date ({problem}); use {DAY}")
    if bounded and (problem := _range_problem(year, month, day, today)) is not None:
        raise NotADate(f"{_shown(text)} is out of range; {problem}")
    return date(year, month, day)


def _offset(text: str) -> timezone | str:
    """The offset `Z`, `+HH`, `+HHMM` or `+HH:MM` names, or why it names none."""
    if text.upper() == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return f"offset {text}: offsets go up to ±23:59"
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def read_moment(text: str, *, today: date | None = None) -> datetime:
    """The moment `text` names (a date alone is its first moment); NotADate saying why it
    names none.

    Always with its offset: one without is this machine's local time, as PostgreSQL would be
    told anyway (asyncpg reads a naive datetime as local time), so the moment can be compared
    with the recorded times it filters."""
    found = _MOMENT.fullmatch(text.strip())
    wrong = f"{_shown(text)} is not a date or a time"
    if found is None:
        raise NotADate(f"{wrong}; use {MOMENT}")
    year, month, day = (int(part) for part in found["day"].split("-"))
    parts = {name: int(found[name] or 0) for name in ("hour", "minute", "second")}
    problem = _day_problem(year, month, day) or next(
        (
            f"{name} {parts[name]}: {name}s go up to {limit}"
            for name, limit in (("hour", 23), ("minute", 59), ("second", 59))
            if parts[name] > limit
        ),
        None,
    )
    zone: timezone | None = None
    if found["offset"]:
        offset = _offset(found["offset"])
        if isinstance(offset, str):
            problem = problem or offset
        else:
            zone = offset
    if problem is not None:
        raise NotADate(f"{wrong} ({problem}); use {MOMENT}")
    if (problem := _range_problem(year, month, day, today)) is not None:
        raise NotADate(f"{_shown(text)} is out of range; {problem}")
    moment = datetime(
        year,
        month,
        day,
        parts["hour"],
        parts["minute"],
        parts["second"],
        int((found["fraction"] or "0").ljust(6, "0")),
        tzinfo=zone,
    )
    return moment if zone is not None else moment.astimezone()
