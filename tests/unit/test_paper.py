"""The paper's pure parts (escaping, bounds, charts) and its bounded, cached worker pool."""

import asyncio
import html
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.recommendations.report import InspectionLine
from projections.text import markdown_text, printable
from services.look import day
from services.paper import render as render_module
from services.paper.assemble import (
    CHART_COMMITTEE_DATES,
    CHART_POINTS,
    InspectionSection,
    Paper,
    chart_dates,
    check_meeting,
)
from services.paper.render import PaperFormat, charts, rebuild_command, render
from services.paper.service import PaperBusy, PaperKey, PaperService


def paper(title: str = "Hate Crime", committee: str | None = "spa-ppc", **kw: object) -> Paper:
    line = InspectionLine.model_construct(
        inspection_id="insp",
        title=title,
        total=2,
        closed=1,
        ongoing_on_track=1,
        ongoing_delayed=0,
        closed_since=[],
        recommendations=[],
    )
    series = [(date(2024, 1, 1), 0, 2), (date(2024, 6, 1), 1, 1)]
    fields: dict[str, object] = {
        "meeting": date(2024, 9, 18),
        "committee": committee,
        "since": None,
        "known_at": None,
        "sections": [InspectionSection(line=line, closures=[], progress=[], chart=series)],
        "risks": [],
        "committee_dates": [date(2024, 3, 12)],
        "log_events": 7,
        "log_last_recorded_at": datetime(2024, 9, 10, 12, tzinfo=UTC),
        **kw,
    }
    return Paper.model_validate(fields)


def unescape(markdown: str) -> str:
    """What a Markdown renderer shows for an inline run; fails on an unescaped metacharacter."""
    shown, chars = [], iter(markdown)
    for char in chars:
        if char == "\\":
            shown.append(next(chars))
            continue
        assert char not in "`*_[]#|~$<>", f"unescaped {char!r} in {markdown!r}"
        shown.append(char)
    return html.unescape("".join(shown))


@given(st.text())
def test_markdown_text_shows_exactly_its_text_on_one_line(text: str) -> None:
    out = markdown_text(text)
    assert len(out.splitlines()) <= 1
    assert unescape(out) == printable(" ".join(text.splitlines()).strip())


def test_markdown_text_cannot_open_a_block_or_raw_html() -> None:
    assert markdown_text("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"
    assert markdown_text("ok\n# Injected") == "ok \\# Injected"
    assert markdown_text("- item") == "\\- item"
    assert markdown_text("12. item") == "12\\. item"
    assert markdown_text("![x](file:///etc/passwd)") == "!\\[x\\](file:///etc/passwd)"
    assert markdown_text("Hate Crime (2021)") == "Hate Crime (2021)"  # plain text stays plain
    assert markdown_text("a\x1b[31mb") == "a\ufffd\\[31mb"  # no terminal escape either


def test_dates_render_as_words_or_a_dash_never_infinity() -> None:
    assert day(date(2024, 9, 18)) == "18 September 2024"
    assert day(date.min) == "01 January 0001"
    assert day(date.max) == "31 December 9999"
    assert day("infinity") == day("-infinity") == day(None) == "–"
    assert day("2024-03-12") == "12 March 2024"


def test_the_chart_series_is_bounded_whatever_the_dates() -> None:
    meeting = date(2024, 9, 18)
    updates = [date(2000 + i // 12, i % 12 + 1, 5) for i in range(300)]
    points = chart_dates(date.min, meeting, [*updates, date.min, date.max])
    assert len(points) <= CHART_POINTS + CHART_COMMITTEE_DATES + 1
    assert points[-1] == meeting and points[0] >= date(1999, 9, 1)
    # A short span keeps every month start, as the paper always had.
    short = chart_dates(date(2024, 1, 10), meeting, [date(2024, 3, 12)])
    assert short[0] == date(2024, 1, 10) and date(2024, 3, 12) in short
    assert [d for d in short if d.day == 1] == [date(2024, m, 1) for m in range(2, 10)]


def test_meetings_are_bounded() -> None:
    assert check_meeting(date(2024, 9, 18)) == date(2024, 9, 18)
    for bad in (date(1899, 12, 31), date(2100, 1, 1), date.min, date.max):
        with pytest.raises(ValueError, match="meeting"):
            check_meeting(bad, today=date(2024, 9, 18))


def test_the_rebuild_command_quotes_its_words_and_the_committee_is_a_slug() -> None:
    assert rebuild_command(paper()) == (
        "rectrack paper --meeting 2024-09-18 --committee spa-ppc "
        "--known-at 2024-09-10T12:00:00+00:00"
    )
    with pytest.raises(ValueError, match="committee"):
        paper(committee="$(touch pwned)")


def test_chart_text_is_not_mathtext_and_a_failing_chart_is_contained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svg = charts(paper(title="$\\foo$"))["insp"]
    assert svg is not None and "<svg" in svg

    def broken_chart(*args: object) -> str:
        raise ValueError("this chart cannot be drawn")

    monkeypatch.setattr(render_module, "chart_svg", broken_chart)
    assert charts(paper()) == {"insp": None}
    page = render(paper(), PaperFormat.html).decode()
    assert "could not be drawn" in page and "Hate Crime" in page


def slow_render(paper: Paper, fmt: PaperFormat) -> bytes:
    """A stand-in renderer run in the worker process: slow enough to overlap requests."""
    time.sleep(0.8)
    return f"{paper.meeting} {fmt.value} {paper.sections[0].line.title}".encode()


def key(meeting: date, events: int = 7) -> PaperKey:
    return PaperKey(meeting, "spa-ppc", PaperFormat.md, events, None)


def build_for(meeting: date, builds: list[date]) -> Callable[[], Awaitable[Paper]]:
    async def build() -> Paper:
        builds.append(meeting)
        return paper(meeting=meeting, log_events=7, log_last_recorded_at=None)

    return build


async def test_the_pool_shares_caches_and_refuses_beyond_its_slots() -> None:
    service = PaperService(1, queue=1, wait=30, renderer=slow_render)
    service.start()
    builds: list[date] = []
    try:
        first, second = date(2024, 1, 1), date(2024, 2, 1)
        same = await asyncio.gather(
            service.get(key(first), build_for(first, builds)),
            service.get(key(first), build_for(first, builds)),
            service.get(key(second), build_for(second, builds)),
            service.get(key(date(2024, 3, 1)), build_for(date(2024, 3, 1), builds)),
            return_exceptions=True,
        )
        assert same[0] == same[1] == b"2024-01-01 md Hate Crime"
        assert same[2] == b"2024-02-01 md Hate Crime"
        assert isinstance(same[3], PaperBusy)  # two slots: the third distinct paper waits outside
        assert builds == [first, second]  # identical requests shared one build and one render
        started = time.perf_counter()
        assert await service.get(key(first), build_for(first, builds)) == same[0]
        assert time.perf_counter() - started < 0.2 and builds == [first, second]  # cached
    finally:
        await service.stop()


def dying_render(paper: Paper, fmt: PaperFormat) -> bytes:
    """A worker that dies (as if killed or out of memory) on the paper for 1 January 2024."""
    if paper.meeting == date(2024, 1, 1):
        os._exit(3)
    return slow_render(paper, fmt)


async def test_a_slow_paper_answers_busy_but_keeps_rendering_into_the_cache() -> None:
    service = PaperService(1, wait=0.2, renderer=slow_render)
    service.start()
    builds: list[date] = []
    try:
        meeting = date(2024, 4, 1)
        with pytest.raises(PaperBusy):
            await service.get(key(meeting), build_for(meeting, builds))
        # The render carries on without its requester: a later request gets its result, and the
        # paper was built once. (Polled, not slept: a spawned worker starts slowly on a busy
        # machine.)
        deadline = time.monotonic() + 60
        while True:
            try:
                paper = await service.get(key(meeting), build_for(meeting, builds))
                break
            except PaperBusy:
                assert time.monotonic() < deadline, "the render never finished into the cache"
                await asyncio.sleep(0.5)
        assert paper == b"2024-04-01 md Hate Crime"
        assert builds == [meeting]
    finally:
        await service.stop()


async def test_a_dead_worker_is_replaced_and_the_next_paper_renders() -> None:
    service = PaperService(1, wait=30, renderer=dying_render)
    service.start()
    builds: list[date] = []
    try:
        dead, alive = date(2024, 1, 1), date(2024, 5, 1)
        with pytest.raises(PaperBusy, match="restarted"):
            await service.get(key(dead), build_for(dead, builds))
        assert await service.get(key(alive), build_for(alive, builds)) == (
            b"2024-05-01 md Hate Crime"
        )
    finally:
        await service.stop()
