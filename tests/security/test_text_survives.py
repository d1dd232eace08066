"""Any text a command accepts survives every face: projection, history, the dashboard, the paper.

A property over the whole stack (issue 13): hostile-looking text (HTML, Markdown, shell words,
rich markup, quotes, any script) that the command types accept is stored exactly, read back
exactly through the API, shown escaped (never interpreted) on the dashboard, and every paper
format still renders with it.
"""

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from infra.settings import Settings
from projections.text import markdown_text
from services.domain.commands import InvalidCommand, parse_command
from tests.cli import rectrack

pytestmark = pytest.mark.integration

ADMIN = {"name": "Property Admin", "team": "secretariat", "role": "admin"}
# Years before any other test's data, so the paper for this meeting holds only these inspections
# (and whatever hostile dates other security tests appended, which it must survive too).
PUBLISHED_ON = "1901-01-10"
MEETING = "1901-06-01"

NASTY = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "# heading\n\n- item",
        "$(touch pwned) `id` ; rm -rf /",
        "[bold red]loud[/] [link=http://x]x[/link] [/]",
        "$\\foo$ 50% & 'quotes' \"double\"",
        "Ünïcödé — 日本語 — עברית — 🚓",
        "line one\n\tindented two",
        "\\*not emphasis\\* | pipe | `code`",
    ]
)
TEXT = st.one_of(NASTY, st.text(st.characters(codec="utf-8"), min_size=1, max_size=80))


def _accepted_title(raw: str) -> str | None:
    """The title PublishInspection keeps for this text, or None when it refuses it."""
    try:
        command = parse_command(
            {
                "type": "PublishInspection",
                "actor": ADMIN,
                "data": {
                    "inspection_id": "probe",
                    "title": raw,
                    "inspectorate": "HMICS",
                    "published_on": PUBLISHED_ON,
                },
            }
        )
    except InvalidCommand:
        return None
    return str(command.data.title)  # type: ignore[attr-defined]


def _accepted_text(raw: str) -> str | None:
    """The text IssueRecommendation keeps for this text, or None when it refuses it."""
    try:
        command = parse_command(
            {
                "type": "IssueRecommendation",
                "actor": ADMIN,
                "data": {"inspection_id": "probe", "number": 1, "text": raw},
            }
        )
    except InvalidCommand:
        return None
    return str(command.data.text)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def admin_client(stack: Settings, run_env: dict[str, str]) -> Iterator[httpx.Client]:
    """An API client holding an admin's token, logged in to the dashboard too."""
    created = rectrack(
        run_env,
        "tokens",
        "create",
        "--name",
        "Property",
        "--team",
        "secretariat",
        "--role",
        "admin",
    )
    token = created.stdout.strip().splitlines()[-1]
    with httpx.Client(
        base_url=stack.api_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        form = client.get("/login")  # the sign-in form's CSRF token, and its cookie
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf, form.text[:500]
        login = client.post("/login", data={"csrf_token": csrf[1], "token": token})
        assert login.status_code == 303, login.text
        yield client


def _send(client: httpx.Client, body: dict[str, object]) -> None:
    response = client.post("/commands", json=body)
    assert response.status_code == 201, response.text


def _paper(client: httpx.Client, fmt: str) -> httpx.Response:
    deadline = time.monotonic() + 120
    while True:
        response = client.get("/paper", params={"meeting": MEETING, "format": fmt})
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))


def _projected(client: httpx.Client, recommendation_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(f"/recommendations/{recommendation_id}")
        if response.status_code == 200:
            found: dict[str, object] = response.json()
            return found
        assert time.monotonic() < deadline, f"{recommendation_id} never projected"
        time.sleep(0.2)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(raw_title=TEXT, raw_text=TEXT)
def test_any_text_a_command_accepts_survives_every_face(
    admin_client: httpx.Client, raw_title: str, raw_text: str
) -> None:
    title, text = _accepted_title(raw_title), _accepted_text(raw_text)
    if title is None or text is None:
        return  # refused at the door, naming its field: tested in test_input_and_wedging
    inspection = f"prop-{uuid.uuid4().hex[:12]}"
    rec = f"{inspection}/r1"
    _send(
        admin_client,
        {
            "type": "PublishInspection",
            "effective_date": PUBLISHED_ON,
            "data": {
                "inspection_id": inspection,
                "title": raw_title,
                "inspectorate": "HMICS",
                "published_on": PUBLISHED_ON,
            },
        },
    )
    _send(
        admin_client,
        {
            "type": "IssueRecommendation",
            "effective_date": PUBLISHED_ON,
            "data": {"inspection_id": inspection, "number": 1, "text": raw_text},
        },
    )

    # Projection and history: stored and read back exactly.
    found = _projected(admin_client, rec)
    assert found["handover"]["text"] == text  # type: ignore[index]
    history = admin_client.get(f"/recommendations/{rec}/history").json()
    assert [e["stream_version"] for e in history] == [1]
    inspection_json = admin_client.get(f"/inspections/{inspection}").json()
    assert inspection_json["title"] == title

    # The dashboard shows it escaped, never interpreted.
    page = admin_client.get(f"/ui/recommendations/{rec}", params={"as_of": MEETING})
    assert page.status_code == 200, page.text
    assert str(escape(text)) in page.text
    listing = admin_client.get(f"/ui/inspections/{inspection}", params={"as_of": MEETING})
    assert listing.status_code == 200, listing.text
    assert str(escape(title)) in listing.text

    # Every paper format renders with it: Markdown escaped, HTML escaped, a real PDF.
    markdown = _paper(admin_client, "md")
    assert markdown.status_code == 200, markdown.text
    assert markdown_text(title) in markdown.text
    html = _paper(admin_client, "html")
    assert html.status_code == 200, html.text
    assert str(escape(title)) in html.text
    pdf = _paper(admin_client, "pdf")
    assert pdf.status_code == 200, pdf.text[:500]
    assert pdf.content.startswith(b"%PDF")
