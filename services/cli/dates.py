"""Dates and moments given on the command line, refused with what is wrong with them.

typer's own date handling answers `--as-of 2024-13-45` with a usage box in its own words and
exit 2 (once saying the value "does not match the formats '%Y-%m-%d'", which it does). Each
option here has a parser of its own, which knows the option's name: a value that is not a date
is one line naming the option, the value and why (events/dates.py, as the API says it), with
exit 1 like every other refusal (services/cli/failures.py):

    error: --as-of: 2024-13-45 is not a date (month 13 does not exist); use YYYY-MM-DD
"""

from collections.abc import Callable
from datetime import date, datetime

from events.dates import DAY, MOMENT, NotADate, read_day, read_moment
from services.cli.failures import InvalidOption

__all__ = ["DAY", "MOMENT", "day_option", "moment_option"]


def day_option(option: str, *, bounded: bool = True) -> Callable[[str], date]:
    """typer's `parser=` for a date option named `option` (`bounded`: 1900 to fifty years on;
    an option with bounds of its own, such as a meeting's, checks them itself)."""

    def parse(text: str) -> date:
        try:
            return read_day(text, bounded=bounded)
        except NotADate as exc:
            raise InvalidOption(f"{option}: {exc}") from None

    return parse


def moment_option(option: str) -> Callable[[str], datetime]:
    """typer's `parser=` for a date-and-time option named `option`: always with an offset
    (none given: this machine's local time)."""

    def parse(text: str) -> datetime:
        try:
            return read_moment(text)
        except NotADate as exc:
            raise InvalidOption(f"{option}: {exc}") from None

    return parse
