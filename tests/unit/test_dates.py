"""Dates and moments as people type them: read, or refused saying truly why (events/dates.py),
in the words the CLI's options and the API's query parameters both use."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import pytest
import typer

from events.dates import NotADate, read_day, read_moment
from services.cli.dates import day_option, moment_option
from services.cli.failures import InvalidOption, explain
from services.cli.main import app
from tests.cli import command_functions

TODAY = date(2024, 9, 18)
USE_DAY = "; use YYYY-MM-DD"
USE_MOMENT = "; use YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]"
RANGE = "is out of range; use a date from 1900-01-01 to 2074-12-31"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("2024-13-45", "2024-13-45 is not a date (month 13 does not exist)" + USE_DAY),
        ("2024-00-01", "2024-00-01 is not a date (month 0 does not exist)" + USE_DAY),
        ("2024-02-30", "2024-02-30 is not a date (February 2024 has 29 days)" + USE_DAY),
        ("2023-02-29", "2023-02-29 is not a date (February 2023 has 28 days)" + USE_DAY),
        ("2024-04-31", "2024-04-31 is not a date (April 2024 has 30 days)" + USE_DAY),
        ("2024-04-00", "2024-04-00 is not a date (day 0 does not exist)" + USE_DAY),
        ("18/09/2024", "18/09/2024 is not a date" + USE_DAY),
        ("2024-9-18", "2024-9-18 is not a date" + USE_DAY),
        ("2024-09-18T10:00", "2024-09-18T10:00 is not a date" + USE_DAY),
        ("yesterday", "yesterday is not a date" + USE_DAY),
        ("", "'' is not a date" + USE_DAY),
        ("18 Sep 2024", "'18 Sep 2024' is not a date" + USE_DAY),
        (
            "\u0662\u0660\u0662\u0664-09-18",
            "\u0662\u0660\u0662\u0664-09-18 is not a date" + USE_DAY,
        ),
        ("1899-12-31", f"1899-12-31 {RANGE}"),
        ("0000-01-01", f"0000-01-01 {RANGE}"),
        ("2075-01-01", f"2075-01-01 {RANGE}"),
    ],
)
def test_a_day_that_is_none_says_why(text: str, said: str) -> None:
    with pytest.raises(NotADate) as refused:
        read_day(text, today=TODAY)
    assert str(refused.value) == said


def test_a_day_is_read_within_its_bounds_or_without() -> None:
    assert read_day("2024-09-18", today=TODAY) == date(2024, 9, 18)
    assert read_day(" 2024-02-29 ", today=TODAY) == date(2024, 2, 29)
    assert read_day("1900-01-01", today=TODAY) == date(1900, 1, 1)
    assert read_day("2074-12-31", today=TODAY) == date(2074, 12, 31)
    assert read_day("1800-01-01", bounded=False) == date(1800, 1, 1)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("2024-09-18T25:00", "(hour 25: hours go up to 23)"),
        ("2024-09-18T10:60", "(minute 60: minutes go up to 59)"),
        ("2024-09-18T10:00:61", "(second 61: seconds go up to 59)"),
        ("2024-09-18T10:00+24:00", "(offset +24:00: offsets go up to ±23:59)"),
        ("2024-13-18T10:00", "(month 13 does not exist)"),
        ("2024-09-18T10", ""),
        ("2024-09-18+01:00", ""),
        ("now", ""),
    ],
)
def test_a_moment_that_is_none_says_why(text: str, said: str) -> None:
    with pytest.raises(NotADate) as refused:
        read_moment(text, today=TODAY)
    because = f" {said}" if said else ""
    assert str(refused.value) == f"{text} is not a date or a time{because}{USE_MOMENT}"


def test_a_moment_is_read_with_its_offset_or_as_local_time() -> None:
    # What the paper's "rebuild exactly" command prints (datetime.isoformat()) reads back.
    printed = datetime(2024, 9, 18, 10, 11, 12, 123456, tzinfo=UTC)
    assert read_moment(printed.isoformat()) == printed
    assert read_moment("2024-09-18T10:11:12.5Z") == printed.replace(second=12, microsecond=500000)
    east = timezone(timedelta(hours=5, minutes=30))
    assert read_moment("2024-09-18T10:00+0530") == datetime(2024, 9, 18, 10, tzinfo=east)
    assert read_moment("2024-09-18 10:00-01") == datetime(2024, 9, 18, 11, tzinfo=UTC)
    # Without an offset, this machine's local time (as asyncpg reads a naive one), never naive:
    # the paper compares it with recorded times, which have one.
    local = read_moment("2024-09-18")
    assert local.tzinfo is not None
    assert local == datetime(2024, 9, 18).astimezone()
    assert read_moment("2024-09-18T10:11") == datetime(2024, 9, 18, 10, 11).astimezone()
    with pytest.raises(NotADate, match=RANGE.replace("2074", "20[0-9][0-9]")):
        read_moment("1899-12-31T23:00Z")


def test_an_options_parser_names_the_option_and_is_one_line() -> None:
    with pytest.raises(InvalidOption) as refused:
        day_option("--as-of")("2024-13-45")
    said = "--as-of: 2024-13-45 is not a date (month 13 does not exist); use YYYY-MM-DD"
    assert str(refused.value) == said
    assert explain(refused.value) == said  # `rectrack` prints it as `error: …` and exits 1
    # Not a ValueError: click would make it a usage box of its own words.
    assert not isinstance(refused.value, ValueError)
    with pytest.raises(InvalidOption, match=r"^--known-at: 2024-09-18T25:00 is not a date"):
        moment_option("--known-at")("2024-09-18T25:00")
    assert day_option("--meeting", bounded=False)("1800-01-01") == date(1800, 1, 1)


def _date_options() -> dict[str, Callable[..., Any] | None]:
    """Every option or argument of every `rectrack` command that takes a date or a time, with
    the parser typer is given for it (None: typer's own)."""
    found: dict[str, Callable[..., Any] | None] = {}
    for command, function in command_functions(app).items():
        for name, hint in get_type_hints(function, include_extras=True).items():
            if get_origin(hint) is not Annotated:
                continue
            kind, info = get_args(hint)[:2]
            kinds = set(get_args(kind)) if get_origin(kind) in (Union, UnionType) else {kind}
            if any(isinstance(k, type) and issubclass(k, date) for k in kinds):
                assert isinstance(info, typer.models.ParameterInfo)
                declared = getattr(info, "param_decls", None) or (f"--{name.replace('_', '-')}",)
                found[f"{command} {declared[0]}"] = info.parser
    return found


def test_every_date_option_of_the_cli_says_why_a_value_is_none() -> None:
    """Read from the typer app: no option is left to typer's own date parsing, whose refusal
    says a value "does not match the formats" it matches, in a usage box."""
    options = _date_options()
    assert set(options) >= {  # the reading works: these are all there are today
        "report --as-of",
        "report --since",
        "report --known-at",
        "handover --as-of",
        "paper --meeting",
        "paper --known-at",
    }
    ours = {day_option("-").__qualname__, moment_option("-").__qualname__}
    assert {o: p for o, p in options.items() if p is None or p.__qualname__ not in ours} == {}
