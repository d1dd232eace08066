"""Rules every route's path and query parameters share, checked in one place for all routes.

- Text holds no control characters: PostgreSQL cannot store or search for NUL, and no id, slug or
  name needs the others.
- A date or datetime lies between 1900 and 50 years from now: asyncpg cannot encode some (a year
  1 moment at +14:00 is in year 0 in UTC), and none outside that range means anything here.
- One that is no date at all is refused saying why, in the words the CLI uses for its options
  (events/dates.py): `2024-13-45 is not a date (month 13 does not exist); use YYYY-MM-DD`.

`checked_parameters` is an app-wide dependency, so a route added later is covered without a
line of its own. Refusals are 422 naming the parameter, like every other input error.
"""

import types
from datetime import date, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import asyncpg
import structlog
from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from events.dates import NotADate, read_day, read_moment
from events.types import EARLIEST_BUSINESS_DATE, SINGLE_LINE_REFUSED, latest_query_date

log = structlog.get_logger(__name__)

CONTROL = SINGLE_LINE_REFUSED
EARLIEST = EARLIEST_BUSINESS_DATE

Temporal = Literal["date", "datetime"]
_PARSE: dict[Temporal, TypeAdapter[Any]] = {
    "date": TypeAdapter(date),
    "datetime": TypeAdapter(datetime),
}


def latest(today: date | None = None) -> date:
    """The last day a parameter may name (the CLI's options share the bound)."""
    return latest_query_date(today)


def control_character_reason(text: str) -> str | None:
    """Why text is refused, or None."""
    found = CONTROL.search(text)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} is not allowed"


def out_of_range_reason(value: date, today: date | None = None) -> str | None:
    """Why a date (or a datetime's local date) is refused, or None."""
    # A datetime's offset moves it by less than a day; the bounds are far from what Python or
    # PostgreSQL cannot hold, so the local date decides.
    day = value.date() if isinstance(value, datetime) else value
    last = latest(today)
    if EARLIEST <= day <= last:
        return None
    return f"must be between {EARLIEST.isoformat()} and {last.isoformat()}"


def _temporal(annotation: Any) -> Temporal | None:
    if get_origin(annotation) is Annotated:
        return _temporal(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = {_temporal(a) for a in get_args(annotation)} - {None}
        return "datetime" if "datetime" in kinds else next(iter(kinds), None)
    if isinstance(annotation, type) and issubclass(annotation, datetime):
        return "datetime"
    if isinstance(annotation, type) and issubclass(annotation, date):
        return "date"
    return None


def _walk(dependant: Dependant, found: dict[str, Temporal]) -> None:
    for field in [*dependant.path_params, *dependant.query_params]:
        kind = _temporal(field.field_info.annotation)
        if kind is not None:
            found[field.alias] = kind
    for sub in dependant.dependencies:
        _walk(sub, found)


def _temporal_parameters(route: APIRoute) -> dict[str, Temporal]:
    """The route's path and query parameters (its dependencies' too) that are dates.

    Walked per request (a handful of fields; routes are not hashable, so nothing to cache by).
    """
    found: dict[str, Temporal] = {}
    _walk(route.dependant, found)
    return found


def not_a_date_reason(kind: Temporal, text: str, refusal: ValidationError) -> str:
    """Why a parameter's text is no date (or datetime), as the CLI says it for an option; the
    parser's own words for text pydantic refuses and ours would take."""
    try:
        read_day(text) if kind == "date" else read_moment(text)
    except NotADate as exc:
        return str(exc)
    return str(refusal.errors()[0]["msg"])


def _refuse(name: str, reason: str) -> HTTPException:
    return HTTPException(422, [{"field": name, "reason": reason}])


async def checked_parameters(request: Request) -> None:
    """App-wide dependency: every path and query parameter follows the rules above."""
    route = request.scope.get("route")
    temporal = _temporal_parameters(route) if isinstance(route, APIRoute) else {}
    pairs = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in pairs:
        text = str(value)
        reason = control_character_reason(name) or control_character_reason(text)
        if reason is not None:
            # The parameter's name is shown only when it is printable itself.
            raise _refuse(name if control_character_reason(name) is None else "(query)", reason)
        kind = temporal.get(name)
        if kind is None:
            continue
        try:
            parsed = _PARSE[kind].validate_python(text)
        except ValidationError as exc:
            # Why, truly: pydantic says a time with hour 25 has "unexpected extra characters".
            raise _refuse(name, not_a_date_reason(kind, text, exc)) from None
        reason = out_of_range_reason(parsed)
        if reason is not None:
            raise _refuse(name, reason)


async def unusable_value(request: Request, exc: Exception) -> JSONResponse:
    """Backstop: a value PostgreSQL refused (asyncpg DataError) is the caller's input, not a 500.

    The checks above should leave none; one that comes here is logged so the gap is closed.
    """
    log.warning("parameter_refused_by_database", path=request.url.path, error=type(exc).__name__)
    reason = f"a value cannot be used in a query ({type(exc).__name__})"
    return JSONResponse({"detail": [{"field": "(parameters)", "reason": reason}]}, 422)


DATABASE_INPUT_ERRORS = (asyncpg.DataError,)
