"""The HTTP face's guards without a broker or database: cursors, buckets, links, parameters,
headers and body limits (the app is driven in memory; routes needing resources are not used,
except to provoke a 500)."""

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from infra.settings import Settings
from services.domain.commands import MAX_COMMAND_BYTES
from services.web.app import create_app
from services.web.feed import MAX_OFFSET, MAX_PAIRS, BadCursor, Cursor
from services.web.links import is_web_url
from services.web.pages import templates
from services.web.params import control_character_reason, latest, out_of_range_reason
from services.web.ratelimit import TokenBuckets, retry_after


@pytest.mark.parametrize(
    "text",
    [
        "0-99999999999999999999",  # the probe's cursor: beyond a signed 64-bit offset
        f"0-{MAX_OFFSET + 1}",
        "99999999999-0",
        "0-1.0-2",  # a partition twice
        "0-1." * MAX_PAIRS + "0-1",
        "-1-0",
        "0--1",
        "+1-0",
        " 1-0",
        "1_0-0",
        "\u0661-0",  # an Arabic-Indic digit, which int() would take
        "0-1.",
        "garbage",
    ],
)
def test_a_cursor_out_of_bounds_or_form_is_refused(text: str) -> None:
    with pytest.raises(BadCursor):
        Cursor.parse(text)


def test_a_cursor_round_trips_and_names_only_partitions_the_topic_has() -> None:
    cursor = Cursor.parse(f"2-3.0-{MAX_OFFSET}")
    assert cursor.offsets == ((0, MAX_OFFSET), (2, 3))
    assert Cursor.parse(str(cursor)) == cursor
    assert Cursor.parse("") == Cursor()
    cursor.check_partitions([0, 1, 2])
    with pytest.raises(BadCursor, match="partition 2"):
        cursor.check_partitions([0, 1])


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    now = [100.0]
    buckets = TokenBuckets(rate=2, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0  # another token has its own bucket
    now[0] += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
    assert retry_after(0.01) == "1" and retry_after(1.2) == "2"


def test_full_buckets_are_forgotten_when_there_are_many() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=1, burst=1, clock=lambda: now[0], max_keys=2)
    buckets.take("a")
    buckets.take("b")
    now[0] += 5  # both refilled
    assert buckets.take("c") == 0
    assert buckets.take("a") == 0  # forgotten, so full again: as it would be anyway


@pytest.mark.parametrize(
    ("url", "web"),
    [
        ("https://www.hmics.scot/publications/report", True),
        ("HTTP://example.org/a?b=c", True),
        ("javascript:fetch('/inspections')", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox", False),
        ("//evil.example/x", False),
        ("https:///nohost", False),
        ("https://exa mple.org", False),
        ("https://example.org/\x00", False),
        ("http://[::1", False),
        (None, False),
    ],
)
def test_only_web_addresses_become_links(url: str | None, web: bool) -> None:
    assert is_web_url(url) is web


def test_parameter_rules() -> None:
    assert control_character_reason("hate-crime-2021/r1") is None
    assert control_character_reason("a\x00b") == "control character U+0000 is not allowed"
    assert control_character_reason("a\x85") is not None
    today = date(2024, 9, 18)
    assert latest(today) == date(2074, 12, 31)
    assert out_of_range_reason(date(2024, 9, 18), today) is None
    assert out_of_range_reason(date(1, 1, 1), today) is not None
    assert out_of_range_reason(date(9999, 12, 31), today) is not None
    assert out_of_range_reason(datetime.fromisoformat("0001-01-01T00:00:00+14:00")) is not None


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings.from_env({"RECTRACK_HOME": str(tmp_path)}))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def _headers_hold(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_login_page_has_the_headers_and_the_papers_style_is_allowed_by_hash(
    api: httpx.AsyncClient,
) -> None:
    page = await api.get("/login")
    assert page.status_code == 200
    _headers_hold(page)
    # The pages link the app's own stylesheet and hold no inline style at all ...
    assert '<link rel="stylesheet" href="/static/rectrack.css">' in page.text
    assert "<style" not in page.text and " style=" not in page.text
    # ... while the HTML paper, a standalone file, keeps its inline style, allowed by hash.
    html = templates().get_template("base.html.j2").render()
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert styles
    for css in styles:
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/inspections/%00", "inspection_id"),
        ("/recommendations/a%00b/history", "recommendation_id"),
        ("/ui/recommendations/a%1bb", "recommendation_id"),
        ("/report?as_of=2024-09-18&inspection=x%00", "inspection"),
        ("/report?as_of=2024-09-18&known_at=0001-01-01T00:00:00%2B14:00", "known_at"),
        ("/report?as_of=9999-12-31", "as_of"),
        ("/report?as_of=2024-09-18&since=0001-01-01", "since"),
        ("/ui/inspections/x?as_of=0001-01-01", "as_of"),
    ],
)
async def test_parameters_are_checked_before_anything_else(
    api: httpx.AsyncClient, path: str, field: str
) -> None:
    response = await api.get(path)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field
    _headers_hold(response)


@pytest.mark.parametrize(
    ("path", "field", "reason"),
    [
        (
            "/report?as_of=2024-13-45",
            "as_of",
            "2024-13-45 is not a date (month 13 does not exist); use YYYY-MM-DD",
        ),
        (
            "/report?as_of=2024-09-18&since=2024-02-30",
            "since",
            "2024-02-30 is not a date (February 2024 has 29 days); use YYYY-MM-DD",
        ),
        (
            # pydantic's own words were "unexpected extra characters at the end of the input"
            "/report?as_of=2024-09-18&known_at=2024-09-18T25:00",
            "known_at",
            "2024-09-18T25:00 is not a date or a time (hour 25: hours go up to 23); "
            "use YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]",
        ),
        ("/paper?meeting=18/09/2024", "meeting", "18/09/2024 is not a date; use YYYY-MM-DD"),
        (
            "/recommendations/x/handover?as_of=2024-04-31",
            "as_of",
            "2024-04-31 is not a date (April 2024 has 30 days); use YYYY-MM-DD",
        ),
    ],
)
async def test_a_date_parameter_that_is_no_date_is_422_naming_it_and_why(
    api: httpx.AsyncClient, path: str, field: str, reason: str
) -> None:
    """The same words as the CLI's options (events/dates.py), before any token is asked for."""
    response = await api.get(path)
    assert response.status_code == 422
    assert response.json()["detail"] == [{"field": field, "reason": reason}]


async def test_an_unhandled_error_is_a_bare_500_with_the_headers(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")  # no pool without the lifespan: AttributeError
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    _headers_hold(response)


async def test_bodies_over_the_limit_are_refused(api: httpx.AsyncClient) -> None:
    declared = await api.post("/commands", content=b"{" * (MAX_COMMAND_BYTES + 1))
    assert declared.status_code == 413
    _headers_hold(declared)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"token=" + b"a" * 1000

    form = {"content-type": "application/x-www-form-urlencoded"}
    streamed = await api.post("/login", content=chunks(), headers=form)
    assert streamed.status_code == 413
    assert streamed.json()["detail"][0]["field"] == "(body)"


def test_the_write_rate_setting() -> None:
    assert Settings.from_env({}).write_rate == 50
    custom = Settings.from_env({"RECTRACK_WRITE_RATE": "2.5:7"})
    assert (custom.write_rate, custom.write_burst) == (2.5, 7)
    assert Settings.from_env({"RECTRACK_WRITE_RATE": "10"}).write_burst == 10
    for bad in ("fast", "1:0", "-1", "nan", "1:x"):
        with pytest.raises(ValueError, match="RECTRACK_WRITE_RATE"):
            Settings.from_env({"RECTRACK_WRITE_RATE": bad})
