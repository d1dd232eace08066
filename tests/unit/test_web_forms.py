"""The browser face without a broker or database: who gets which form, refusals in plain words
beside their fields, evidence files judged by their content, session settings and cookies, and
errors as pages for browsers but JSON for the API."""

import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from starlette.requests import Request

from events.envelope import Actor
from infra.settings import Settings
from projections.recommendations.handover import (
    EvidenceDocument,
    EvidenceItem,
    HandoverPack,
    OwnerPeriod,
)
from services.domain.commands import InvalidCommand, parse_command
from services.domain.rejections import Reason
from services.web import actions
from services.web.app import STATIC_DIR, create_app
from services.web.form_errors import FORM, REASON_WORDS, rejection_errors, validation_errors
from services.web.sessions import LOGIN_COOKIE, Lifetimes, csrf_matches, secure_cookies

# -- who gets which form ------------------------------------------------------------------------


def pack(
    *, team: str | None = "crime-registrars", evidence: int = 0, pending: bool = False
) -> HandoverPack:
    return HandoverPack(
        recommendation_id="audit/r1",
        number=1,
        text="Do it.",
        issued_on=date(2024, 1, 1),
        as_of=date(2024, 9, 18),
        status="ongoing_on_track",
        closure=None,
        target_date=None,
        original_target_date=None,
        target_date_revisions=0,
        owners=[
            OwnerPeriod(
                team=team,
                owner_role="lead",
                from_date=date(2024, 1, 2),
                to_date=None,
                assigned_by="admin",
                note=None,
            )
        ]
        if team
        else [],
        evidence=[
            EvidenceItem(
                evidence_id=f"E{n + 1}",
                submitted_on=date(2024, 2, 1),
                submitted_by="lead",
                summary="plan",
                documents=[
                    EvidenceDocument(
                        name="plan.pdf", sha256="a" * 64, size=None, media_type=None, href=None
                    )
                ],
                inspectorate_responses=[],
            )
            for n in range(evidence)
        ],
        decisions=[],
        closure_pending=pending,
        outstanding_asks=[],
        last_position=None,
    )


def slugs(actor: Actor | None, p: HandoverPack) -> list[str]:
    return [a.slug for a in actions.available(actor, p)]


def test_forms_follow_the_deciders_table_and_the_owning_team() -> None:
    owner = Actor(name="lead", team="crime-registrars", role="contributor")
    other = Actor(name="someone", team="elsewhere", role="contributor")
    inspector = Actor(name="insp", team="hmics", role="inspector")
    admin = Actor(name="adm", team="secretariat", role="admin")
    viewer = Actor(name="v", team="public", role="viewer")
    assert slugs(owner, pack()) == ["progress", "evidence", "target-date"]
    assert slugs(owner, pack(evidence=1)) == ["progress", "evidence", "closure", "target-date"]
    assert "closure" not in slugs(owner, pack(evidence=1, pending=True))  # once at a time
    assert slugs(other, pack(evidence=1)) == []
    assert slugs(owner, pack(team=None)) == []  # nobody owns it yet
    assert slugs(viewer, pack(evidence=1)) == []
    assert slugs(None, pack(evidence=1)) == []
    assert slugs(inspector, pack(evidence=1, pending=True)) == ["decision"]
    assert slugs(admin, pack(evidence=1)) == [
        "progress",
        "evidence",
        "closure",
        "target-date",
        "decision",
        "owner",
    ]
    closed = pack(evidence=1).model_copy(update={"status": "closed"})
    assert slugs(admin, closed) == [] and slugs(owner, closed) == []
    assert actions.may_publish(inspector) and actions.may_publish(admin)
    assert not actions.may_publish(owner) and not actions.may_publish(viewer)
    assert actions.may_record_committee_update(admin)
    assert not actions.may_record_committee_update(inspector)


# -- refusals in plain words, beside their fields ---------------------------------------------


def test_every_rejection_a_form_can_meet_has_plain_words() -> None:
    machine_only = {
        Reason.INVALID_COMMAND,  # the form validates first, naming fields
        Reason.UNAUTHENTICATED,  # the gateway signs every command
        Reason.ACTOR_MISMATCH,
        Reason.KEY_ALREADY_REGISTERED,
        Reason.KEY_NOT_FOUND,
        Reason.KEY_ALREADY_REVOKED,
    }
    assert set(Reason) - machine_only <= set(REASON_WORDS)
    for reason in Reason:
        errors = rejection_errors("ReportProgress", reason, "the detail")
        assert len(errors) == 1 and all(errors.values())


@pytest.mark.parametrize(
    ("command_type", "reason", "field"),
    [
        ("SubmitEvidence", Reason.EVIDENCE_ID_TAKEN, "evidence_id"),
        ("ProposeClosure", Reason.EVIDENCE_NOT_FOUND, "evidence_ids"),
        ("RecordInspectorateDecision", Reason.NO_CLOSURE_PROPOSED, "decision"),
        ("IssueRecommendation", Reason.RECOMMENDATION_NUMBER_TAKEN, "texts"),
        ("PublishInspection", Reason.INSPECTION_ALREADY_PUBLISHED, "inspection_id"),
        ("RecordCommitteeUpdate", Reason.COMMITTEE_UPDATE_EXISTS, "meeting_date"),
        ("ReportProgress", Reason.RECOMMENDATION_CLOSED, FORM),
        ("ProposeClosure", Reason.CLOSURE_ALREADY_PROPOSED, FORM),
    ],
)
def test_a_rejection_is_shown_beside_the_field_it_concerns(
    command_type: str, reason: Reason, field: str
) -> None:
    assert list(rejection_errors(command_type, reason, "detail")) == [field]


def test_a_forbidden_rejection_says_why_and_an_unknown_one_quotes_the_decider() -> None:
    forbidden = rejection_errors("ReportProgress", Reason.FORBIDDEN, "needs the owning team")
    assert forbidden == {FORM: "You cannot do this: needs the owning team"}
    assert "a new rule" in rejection_errors("ReportProgress", "new_reason", "a new rule")[FORM]


def test_validation_errors_name_the_forms_fields() -> None:
    actor = Actor(name="lead", team="t", role="contributor")
    with pytest.raises(InvalidCommand) as caught:
        parse_command(
            {
                "type": "SubmitEvidence",
                "data": {
                    "recommendation_id": "a/r1",
                    "evidence_id": "E1",
                    "summary": "x" * 20_001,
                    "documents": [{"name": "bad\x07name.pdf", "sha256": "a" * 64}],
                },
                "actor": actor,
            }
        )
    labels = {"evidence_id": "Reference", "summary": "Summary", "documents": "Files"}
    errors = validation_errors(caught.value.errors, labels)
    assert set(errors) == {"summary", "documents"}
    assert errors["summary"].startswith("Summary: ")
    assert "U+0007" in errors["documents"]
    assert validation_errors([{"field": "data", "reason": "whole"}], labels) == {FORM: "Whole"}


# -- evidence files, judged by their content ----------------------------------------------------


class Upload:
    def __init__(self, filename: str, content: bytes) -> None:
        self.filename = filename
        self.file: BinaryIO = io.BytesIO(content)


def office(main_part: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr(main_part, "<x/>")
    return out.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
JPEG = b"\xff\xd8\xff\xe0" + bytes(32)
PDF = b"%PDF-1.7\n%%EOF\n"


# -- sessions: settings, cookies, tokens ---------------------------------------------------------


def test_session_lifetimes_come_from_settings_with_defaults() -> None:
    default = Settings.from_env({})
    assert (default.session_idle_minutes, default.session_hours) == (30, 8)
    assert not default.secure_cookies
    lifetimes = Lifetimes.of(
        Settings.from_env({"RECTRACK_SESSION_IDLE_MINUTES": "5", "RECTRACK_SESSION_HOURS": "1"})
    )
    assert lifetimes.idle.total_seconds() == 300 and lifetimes.absolute.total_seconds() == 3600
    for name in ("RECTRACK_SESSION_IDLE_MINUTES", "RECTRACK_SESSION_HOURS"):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: "0"})


def test_csrf_tokens_are_compared_exactly() -> None:
    assert csrf_matches("abc", "abc")
    for given in ("abd", "", None, ["abc"], "abc "):
        assert not csrf_matches("abc", given)


@pytest.mark.parametrize(
    ("scheme", "setting", "secure"),
    [("http", "", False), ("https", "", True), ("http", "1", True)],
)
def test_cookies_are_secure_over_tls_or_when_the_settings_say_so(
    scheme: str, setting: str, secure: bool
) -> None:
    app = create_app(Settings.from_env({"RECTRACK_SECURE_COOKIES": setting}))
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": ("rectrack.example", 443 if scheme == "https" else 80),
        "path": "/",
        "headers": [],
        "app": app,
    }
    assert secure_cookies(Request(scope)) is secure


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings.from_env({"RECTRACK_HOME": str(tmp_path)}))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def test_the_sign_in_form_carries_a_token_bound_to_its_own_cookie(
    api: httpx.AsyncClient,
) -> None:
    form = await api.get("/login")
    cookie = form.headers["set-cookie"]
    assert cookie.startswith(f"{LOGIN_COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/login", "Max-Age=3600"):
        assert attribute.lower() in cookie.lower()
    token = api.cookies[LOGIN_COOKIE]
    assert f'name="csrf_token" value="{token}"' in form.text
    # Without the form's token, or with another, nothing is even looked up: 403.
    api.cookies.clear()
    refused = await api.post("/login", data={"csrf_token": token, "token": "rt_x"}, headers=HTML)
    assert refused.status_code == 403
    assert "did not come from this service" in refused.text and "<h1" in refused.text
    as_json = await api.post("/login", data={"csrf_token": "x", "token": "rt_x"})
    assert as_json.status_code == 403 and "did not come" in as_json.json()["detail"]


async def test_errors_are_pages_for_browsers_and_json_for_the_api(
    api: httpx.AsyncClient,
) -> None:
    missing = await api.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text and 'href="/login"' in missing.text
    assert (await api.get("/no-such-page")).json() == {"detail": "Not Found"}
    # An API route stays JSON for a browser too; a page answers JSON to whoever asks for it.
    api_route = await api.get("/inspections/x", headers=HTML)
    assert api_route.status_code == 401 and api_route.json()["detail"]
    bad_page = await api.get("/ui/inspections/x?as_of=0001-01-01", headers=HTML)
    assert bad_page.status_code == 422 and "as_of" in bad_page.text and "<h1" in bad_page.text
    assert (await api.get("/ui/inspections/x?as_of=0001-01-01")).json()["detail"][0]["field"]
    # A page needs a session: a browser without one is sent to sign in.
    assert (await api.get("/ui/inspections/x")).headers["location"] == "/login"


async def test_the_api_page_runs_only_this_apps_own_script(api: httpx.AsyncClient) -> None:
    moved = await api.get("/docs")
    assert moved.status_code == 308 and moved.headers["location"] == "/api-docs"
    docs = await api.get("/api-docs")
    csp = docs.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    )
    assert '<script src="/static/swagger-ui/swagger-ui-bundle.js">' in docs.text
    assert "<script>" not in docs.text
    assert (
        "script-src 'none'" in (await api.get("/accessibility")).headers["content-security-policy"]
    )


def test_the_assets_are_built_and_refer_to_nothing_outside_the_app() -> None:
    css = (STATIC_DIR / "rectrack.css").read_text()
    assert "govuk-" in css and "GDS Transport" not in css
    urls = re.findall(r"url\(([^)]*)\)", css)
    assert urls and all(u.strip("\"'").startswith("/static/") for u in urls), urls
    assert "@import" not in css
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "api-docs.js", "api-docs.css"):
        assert (STATIC_DIR / "swagger-ui" / name).is_file(), f"{name}: run `make assets`"
    assert "validatorUrl: null" in (STATIC_DIR / "swagger-ui" / "api-docs.js").read_text()


async def test_an_upload_over_the_whole_bound_is_a_page_for_a_browser(tmp_path: Path) -> None:
    app = create_app(
        Settings.from_env(
            {"RECTRACK_HOME": str(tmp_path), "RECTRACK_MAX_DOCUMENT_BYTES": str(2**20)}
        )
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        too_big = await client.post(
            "/ui/recommendations/audit/r1/evidence",
            content=b"x" * (12 * 1024 * 1024),
            headers={**HTML, "Content-Type": "multipart/form-data; boundary=x"},
        )
        for_the_api = await client.post(
            "/ui/recommendations/audit/r1/evidence",
            content=b"x" * (12 * 1024 * 1024),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
    # 10 files' worth of the largest file, and 1 MB for the form's fields.
    assert too_big.status_code == 413 and "larger than 11 MB" in too_big.text
    assert "Each file may be up to 1 MB" in too_big.text and "<h1" in too_big.text
    assert for_the_api.status_code == 413 and for_the_api.json()["detail"][0]["field"] == "(body)"
