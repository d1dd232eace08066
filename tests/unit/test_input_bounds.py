"""The pure parts of input validation and of never wedging a stream: text, URL and date types,
an event's place read without its model, and which errors are an event's own."""

from datetime import date

import asyncpg
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from events.chain import Place, place_of, stream_of, walk
from events.recommendation import RecommendationIssued
from events.registry import parse_event
from events.topics import Message
from events.types import (
    EARLIEST_BUSINESS_DATE,
    BusinessDate,
    HttpUrlText,
    LongText,
    RecordedLongText,
    ShortText,
    latest_business_date,
)
from projections.apply import belongs_to_event, storable
from services.domain.commands import InvalidCommand
from tests.builders import command
from tests.histories import History
from tests.sealing import TEST_DECIDER_KEYS

SHORT: TypeAdapter[str] = TypeAdapter(ShortText)
LONG: TypeAdapter[str] = TypeAdapter(LongText)
URL: TypeAdapter[str] = TypeAdapter(HttpUrlText)
DAY: TypeAdapter[date] = TypeAdapter(BusinessDate)


def test_prose_keeps_newlines_and_tabs_and_turns_crlf_into_lf() -> None:
    assert LONG.validate_python("one\r\ntwo\n\tthree") == "one\ntwo\n\tthree"
    for text in ("a\rb", "a\x00b", "a\x0bb", "a\x1bb", "a\x7fb", "a\x9bb"):
        with pytest.raises(ValidationError, match="control character"):
            LONG.validate_python(text)
    with pytest.raises(ValidationError):  # a lone surrogate has no UTF-8 encoding at all
        LONG.validate_python("a\ud800b")


def test_one_line_text_refuses_every_control_character_even_newline_and_tab() -> None:
    assert (
        SHORT.validate_python("  Police Scotland — Ünïcode ok  ") == "Police Scotland — Ünïcode ok"
    )
    for text in ("a\nb", "a\tb", "a\x00b", "a\x1fb", "a\x85b"):
        with pytest.raises(ValidationError, match=r"U\+00"):
            SHORT.validate_python(text)


@given(st.text(max_size=40))
def test_text_accepted_at_the_door_is_text_the_event_models_read(text: str) -> None:
    # The decider builds events from commands: what a command accepts, its event must hold.
    try:
        accepted = LONG.validate_python(text)
    except ValidationError:
        return
    assert TypeAdapter(RecordedLongText).validate_python(accepted) == accepted


def test_urls_are_http_or_https_with_a_host_and_kept_as_given() -> None:
    for url in (
        "https://www.hmics.scot/publications/",
        "http://example.org",
        "HTTPS://X.ORG/a?b#c",
    ):
        assert URL.validate_python(url) == url
    refused = {
        "javascript:alert(1)": "scheme",
        "JaVaScRiPt:alert(1)": "scheme",
        "data:text/html,x": "scheme",
        "ftp://example.org/": "scheme",
        "//example.org/": "scheme",
        "https:///path": "no host",
        "https://user:pw@example.org/": "user name",
        "https://exa mple.org/": "spaces",
        "https://example.org:99999/": "Port",
        "https://example.org/\x00": "control character",
    }
    for url, why in refused.items():
        with pytest.raises(ValidationError, match=why):
            URL.validate_python(url)


def test_business_dates_run_from_1900_to_fifty_years_ahead() -> None:
    today = date.today()
    assert DAY.validate_python(EARLIEST_BUSINESS_DATE) == date(1900, 1, 1)
    assert DAY.validate_python(latest_business_date()) == latest_business_date()
    assert latest_business_date(date(2024, 2, 29)) == date(2074, 2, 28)
    assert latest_business_date(date(2024, 6, 1)) == date(2074, 6, 1)
    assert latest_business_date() > today
    for day in (
        date.min,
        date(1899, 12, 31),
        date.fromordinal(latest_business_date().toordinal() + 1),
        date.max,
    ):
        with pytest.raises(ValidationError, match="outside 1900-01-01"):
            DAY.validate_python(day)


def test_a_refused_date_names_its_field_in_the_command() -> None:
    with pytest.raises(InvalidCommand) as refused:
        command(
            "SetTargetDate",
            {
                "recommendation_id": "x/r1",
                "target_date": "9999-12-31",
                "reason": "r",
                "agreed_with_inspectorate": True,
            },
        )
    assert [e["field"] for e in refused.value.errors] == ["data.target_date"]


def test_events_already_in_the_log_stay_readable() -> None:
    # Written before the door was shut: the log is immutable, so the models still read it.
    h = History()
    h.rec(1)
    doc = orjson.loads(h.messages()[0].value)
    doc["data"]["text"] = "nul\x00byte"
    doc["effective_date"] = "0001-01-01"
    doc["actor"]["name"] = "bell\x07"
    envelope = parse_event(orjson.dumps(doc))
    assert isinstance(envelope.data, RecommendationIssued)
    assert envelope.data.text == "nul\x00byte"
    assert envelope.effective_date == date.min


def test_an_events_place_is_read_without_its_model() -> None:
    doc = {
        "stream_id": "a/r1",
        "stream_version": 3,
        "effective_date": "2024-02-03",
        "recorded_at": "2024-09-10T12:00:00Z",
        "data": "anything",
    }
    place = place_of(doc)
    assert (place.stream_id, place.stream_version, place.effective_date) == (
        "a/r1",
        3,
        date(2024, 2, 3),
    )
    assert place.recorded_at is not None and place.recorded_at.utcoffset() is not None
    assert place_of({**doc, "effective_date": "soon", "recorded_at": 5}) == Place(
        "a/r1", 3, None, None
    )
    broken: object
    for broken in (
        [],
        "x",
        {"stream_id": "a"},
        {**doc, "stream_version": "3"},
        {**doc, "stream_version": True},
        {**doc, "stream_id": 7},
    ):
        with pytest.raises(ValueError, match="not an event"):
            stream_of(broken)


def test_the_chain_walk_and_the_projector_agree_on_what_can_be_in_a_chain() -> None:
    h = History()
    h.rec(1)
    doc = orjson.loads(h.messages()[0].value)
    doc["stream_version"] = "1"  # int() would have taken it; the projector does not
    report = walk("t", [Message(0, 0, None, orjson.dumps(doc))], keys=TEST_DECIDER_KEYS)
    assert [b.reason for b in report.unreadable] == ["not an event (unreadable JSON or no stream)"]
    assert not report.breaks


def test_errors_of_an_events_values_are_told_from_errors_of_the_system() -> None:
    assert belongs_to_event(asyncpg.exceptions.UntranslatableCharacterError("\\u0000"))
    assert belongs_to_event(asyncpg.exceptions.UniqueViolationError("duplicate"))
    assert belongs_to_event(asyncpg.exceptions.ProgramLimitExceededError("index row too big"))
    assert belongs_to_event(OverflowError("int too big"))
    assert belongs_to_event(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogate"))
    assert not belongs_to_event(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert not belongs_to_event(asyncpg.exceptions.DeadlockDetectedError("deadlock"))
    assert not belongs_to_event(asyncpg.exceptions.AdminShutdownError("shutdown"))
    assert not belongs_to_event(asyncpg.exceptions.UndefinedColumnError("our bug"))
    assert not belongs_to_event(OSError("network"))


def test_a_reason_quoting_a_nul_can_itself_be_stored() -> None:
    assert storable("a\x00b") == "a\\x00b"
    assert storable("lone \ud800") == "lone \\ud800"
    assert storable("plain — text\n") == "plain — text\n"
