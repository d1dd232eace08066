"""Issue 16 in a real browser (Playwright driving Debian's Chromium) on the real stack: forms by
role through the CommandGateway, sessions with CSRF tokens, friendly errors, axe-core at WCAG 2.2
AA on every page, the keyboard alone, and JavaScript off where a person may have it off."""

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, FilePayload, Page, async_playwright, expect

from infra.settings import Settings
from services.web.sessions import COOKIE
from services.web.tokens import token_hash
from tests.e2e.axe import axe_version
from tests.e2e.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Pages, signed_in
from tests.e2e.helpers import signed_in_cookies, token

pytestmark = pytest.mark.integration

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
MB = 1024 * 1024


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


def date_parts(day: date) -> dict[str, str]:
    return {"day": str(day.day), "month": str(day.month), "year": str(day.year)}


async def fill_date(page: Page, name: str, day: date) -> None:
    for part, value in date_parts(day).items():
        field = page.locator(f"#{name}" if part == "day" else f"#{name}-{part}")
        await field.fill(value)


async def focused_id(page: Page) -> str | None:
    return await page.locator(":focus").get_attribute("id")


async def tab_to(page: Page, *, text: str | None = None, element_id: str | None = None) -> None:
    """Press Tab until the focus is on the element with this text or id (at most 60 times)."""
    for _ in range(60):
        await page.keyboard.press("Tab")
        focused = page.locator(":focus")
        if element_id is not None and await focused.get_attribute("id") == element_id:
            return
        if text is not None and (await focused.inner_text()).strip() == text:
            return
    raise AssertionError(f"Tab never reached {text or element_id}")


async def overview_line(page: Page, inspection_id: str) -> tuple[int, ...]:
    row = page.locator(f'#overview tr[data-inspection="{inspection_id}"]')
    return tuple(
        [
            int(await row.locator(f'td[data-count="{k}"]').inner_text())
            for k in ("total", "closed", "ongoing_on_track", "ongoing_delayed")
        ]
    )


async def history_types(settings: Settings, secret: str, recommendation_id: str) -> list[str]:
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=30) as api:
        response = await api.get(
            f"/recommendations/{recommendation_id}/history",
            headers={"Authorization": f"Bearer {secret}"},
        )
    return [e["type"] for e in response.json()]


async def test_forms_by_role_from_publication_to_closure_and_the_paper(
    stack: Settings, pool: asyncpg.Pool, browser: Browser
) -> None:
    uid = uuid.uuid4().hex[:6]
    inspection_id, team, committee = f"web-{uid}", f"improvement-{uid}", f"committee-{uid}"
    r1, r2 = f"{inspection_id}/r1", f"{inspection_id}/r2"
    today = date.today()
    pages = Pages("forms")
    admin_secret = await token(pool, "admin", "secretariat")
    lead_secret = await token(pool, "contributor", team)
    other_secret = await token(pool, "contributor", f"other-{uid}")
    inspector_secret = await token(pool, "inspector", "hmics")
    viewer_secret = await token(pool, "viewer", "public")

    # -- an admin publishes an inspection with the keyboard alone ---------------------------
    admin_ctx, admin = await signed_in(browser, stack.api_url, admin_secret)
    await expect(admin.locator("#signed-in-as")).to_contain_text("admin user (secretariat, admin)")
    await pages.check(admin, "overview-admin")
    await admin.keyboard.press("Tab")
    assert (await admin.locator(":focus").inner_text()).strip() == "Skip to main content"
    await tab_to(admin, text="Publish an inspection")
    await admin.keyboard.press("Enter")
    await admin.wait_for_url(re.compile(r"/ui/inspections/new$"))
    await pages.check(admin, "publish-form")
    await tab_to(admin, element_id="inspection_id")
    await admin.keyboard.type(inspection_id)
    order = ["title", "inspectorate", "published_on", "published_on-month", "published_on-year"]
    typed = ["Web forms thematic inspection", None, "15", "1", "2025"]
    for element_id, text in zip(order, typed, strict=True):
        await admin.keyboard.press("Tab")
        assert await focused_id(admin) == element_id  # the focus follows the form's order
        if text is not None:
            await admin.keyboard.type(text)
    await tab_to(admin, text="Publish")
    await admin.keyboard.press("Enter")
    await admin.wait_for_url(re.compile(rf"/ui/inspections/{inspection_id}$"))
    await expect(admin.locator(".govuk-notification-banner")).to_contain_text("published")
    await pages.check(admin, "inspection-published")

    # -- issues recommendations pasted one per line; a second paste of number 1 is refused --
    await admin.get_by_role("button", name="Issue recommendations").click()
    await pages.check(admin, "issue-form")
    await admin.get_by_label("Recommendations, one per line").fill(
        "Police Scotland should publish its plan.\n\nPolice Scotland should train staff.\n"
        "Police Scotland should report quarterly."
    )
    await admin.get_by_role("button", name="Issue").click()
    await expect(admin.locator("#recommendations tbody tr")).to_have_count(3)
    await admin.get_by_role("button", name="Issue recommendations").click()
    await admin.get_by_label("Number of the first one").fill("1")
    await admin.get_by_label("Recommendations, one per line").fill("A duplicate of number 1.")
    await admin.get_by_role("button", name="Issue").click()
    await expect(admin.locator("#texts-error")).to_contain_text("already exists")
    await expect(admin.locator(".govuk-error-summary")).to_be_visible()
    await pages.check(admin, "issue-refused")

    # -- assigns r1 to the improvement team and sets its target date ------------------------
    await admin.goto(f"/ui/recommendations/{r1}")
    await pages.check(admin, "recommendation-admin")
    await admin.get_by_role("link", name="Assign an owner").click()
    await admin.get_by_label("Team").fill(team)
    await admin.get_by_label("Owner’s role").fill("Improvement lead")
    await admin.get_by_role("button", name="Assign").click()
    await expect(admin.locator("#summary")).to_contain_text(team)
    await admin.get_by_role("link", name="Set the target date").click()
    await admin.get_by_role("button", name="Set the target date").click()  # empty: refused
    await expect(admin.locator("#target_date-error")).to_contain_text("Enter the target date")
    await pages.check(admin, "target-date-refused")
    await fill_date(admin, "target_date", today + timedelta(days=180))
    await admin.get_by_label("Reason").fill("Agreed at the kick-off meeting.")
    await admin.get_by_label("Yes").check()
    await admin.get_by_role("button", name="Set the target date").click()
    await expect(admin.locator(".govuk-notification-banner")).to_contain_text("Target date set")

    # -- records the last committee update and the next one ---------------------------------
    for meeting, title in (
        (today - timedelta(days=1), "Last update"),
        (today + timedelta(days=14), "Next update"),
    ):
        await admin.goto("/ui/committee-updates/new")
        await admin.get_by_label("Committee").fill(committee)
        await fill_date(admin, "meeting_date", meeting)
        await admin.get_by_label("Title").fill(title)
        await admin.get_by_role("button", name="Record the update").click()
        await expect(admin.locator(".govuk-notification-banner")).to_contain_text("recorded")
    await pages.check(admin, "committee-form-done")
    await admin.goto("/ui/committee-updates/new")
    await admin.get_by_label("Committee").fill(committee)
    await fill_date(admin, "meeting_date", today - timedelta(days=1))
    await admin.get_by_label("Title").fill("Twice")
    await admin.get_by_role("button", name="Record the update").click()
    await expect(admin.locator("#meeting_date-error")).to_contain_text("already has an update")
    await pages.check(admin, "committee-refused")

    # -- the improvement lead, with JavaScript off: progress, evidence, closure --------------
    lead_ctx, lead = await signed_in(browser, stack.api_url, lead_secret, javascript=False)
    await expect(lead.locator("#signed-in-as")).to_contain_text(f"({team}, contributor)")
    await lead.goto(f"/ui/recommendations/{r1}")
    await expect(lead.locator("#actions")).to_contain_text("Report progress")
    await lead.get_by_role("link", name="Report progress").click()
    await lead.get_by_role("button", name="Report progress").click()  # nothing chosen
    await expect(lead.locator(".govuk-error-summary")).to_contain_text("Select whether")
    await expect(lead.locator("#position-error")).to_contain_text("Enter the position")
    await pages.photograph(lead, "progress-refused")
    await lead.get_by_label("Delayed").check()
    await lead.get_by_label("Resourcing").check()
    await lead.get_by_label("Position").fill("Two analysts start next month.")
    await lead.get_by_role("button", name="Report progress").click()
    await expect(lead.locator(".govuk-notification-banner")).to_contain_text("Progress reported")
    await expect(lead.locator("#summary")).to_contain_text("Two analysts start next month.")

    before_uploads = await history_types(stack, admin_secret, r1)
    await lead.get_by_role("link", name="Submit evidence").click()
    await lead.get_by_label("Summary").fill("The approved plan.")
    await lead.get_by_label("Files").set_input_files(
        [FilePayload(name="plan.pdf", mimeType="application/pdf", buffer=PDF)]
    )
    await lead.get_by_role("button", name="Submit evidence").click()
    await expect(lead.locator(".govuk-notification-banner")).to_contain_text(
        "Evidence E1 submitted with 1 file"
    )
    await expect(lead.locator("#evidence")).to_contain_text("plan.pdf")
    await pages.photograph(lead, "evidence-submitted")

    # A 30 MB file and a program: a clear error beside the field, and nothing changes.
    with_evidence = await history_types(stack, admin_secret, r1)
    assert with_evidence == [*before_uploads, "EvidenceSubmitted"]
    for name, mime, content, words in (
        ("minutes.pdf", "application/pdf", b"%PDF-1.4\n" + b"0" * (30 * MB), "larger than 25 MB"),
        ("setup.exe", "application/octet-stream", b"MZ\x90\x00" + bytes(512), "is not allowed"),
    ):
        await lead.get_by_role("link", name="Submit evidence").click()
        await lead.get_by_label("Summary").fill("Should not be kept.")
        await lead.get_by_label("Files").set_input_files(
            [FilePayload(name=name, mimeType=mime, buffer=content)]
        )
        await lead.get_by_role("button", name="Submit evidence").click()
        await expect(lead.locator("#documents-error")).to_contain_text(words)
        await expect(lead.locator(".govuk-error-summary")).to_contain_text(name)
        await pages.photograph(lead, f"evidence-refused-{name.split('.')[1]}")
        await lead.goto(f"/ui/recommendations/{r1}")
    assert await history_types(stack, admin_secret, r1) == with_evidence
    async with pool.acquire() as conn:
        stored = {
            r["sha256"]: r["size"] for r in await conn.fetch("SELECT sha256, size FROM documents")
        }
    assert hashlib.sha256(PDF).hexdigest() in stored
    assert not any(size > 25 * MB for size in stored.values())

    # The closure form with its errors, and the owner form, as the admin's browser shows them.
    await admin.goto(f"/ui/recommendations/{r1}/closure")
    await admin.get_by_role("button", name="Propose closure").click()
    await expect(admin.locator("#evidence_ids-error")).to_contain_text("Select the evidence")
    await pages.check(admin, "closure-refused")
    await admin.goto(f"/ui/recommendations/{r2}/owner")
    await pages.check(admin, "owner-form")

    await lead.get_by_role("link", name="Propose closure").click()
    await lead.get_by_label("E1: The approved plan.").check()
    await lead.get_by_label("Why it can be closed").fill("The plan is approved and in use.")
    await lead.get_by_role("button", name="Propose closure").click()
    await expect(lead.locator(".govuk-notification-banner")).to_contain_text("Closure proposed")
    await expect(lead.locator("#closure-proposal")).to_contain_text("E1")

    # The admin's browser sees the lead's forms' pages too (axe needs JavaScript on).
    for slug in ("progress", "evidence"):
        await admin.goto(f"/ui/recommendations/{r2}/{slug}")
        await admin.get_by_role(
            "button", name=re.compile("Report progress|Submit evidence")
        ).click()
        await expect(admin.locator(".govuk-error-summary")).to_be_visible()
        await pages.check(admin, f"{slug}-refused")

    await admin.goto(f"/?as_of={today}")
    before = await overview_line(admin, inspection_id)
    assert before == (3, 0, 2, 1)

    # -- the inspector opens the evidence and closes it ----------------------------------------
    inspector_ctx, inspector = await signed_in(browser, stack.api_url, inspector_secret)
    await inspector.goto(f"/ui/recommendations/{r1}")
    await pages.check(inspector, "recommendation-inspector")
    await inspector.get_by_role("link", name="Record the inspectorate’s decision").click()
    await expect(inspector.locator("#closure-proposal")).to_contain_text("approved and in use")
    await pages.check(inspector, "decision-form")
    async with inspector.expect_download() as downloading:
        await inspector.get_by_role("link", name="plan.pdf").click()
    download = await downloading.value
    assert download.suggested_filename == "plan.pdf"
    assert (await download.path()).read_bytes() == PDF
    await inspector.get_by_label("Close it").check()
    await inspector.get_by_label("Rationale").fill("The plan meets the recommendation.")
    await inspector.get_by_role("button", name="Record the decision").click()
    await expect(inspector.locator(".govuk-notification-banner")).to_contain_text("recorded")
    await expect(inspector.locator("#summary")).to_contain_text("Closed")
    await pages.check(inspector, "recommendation-closed")

    await inspector.goto(f"/?as_of={today}")
    assert await overview_line(inspector, inspection_id) == (3, 1, 2, 0)
    await pages.check(inspector, "overview-after-closure")
    next_meeting = f"{today + timedelta(days=14):%d %B %Y}"
    await (
        inspector.locator("#papers li", has_text=committee)
        .get_by_role("link", name=f"HTML paper for {next_meeting}")
        .click()
    )
    section = await inspector.locator(
        "section", has_text="Web forms thematic inspection"
    ).inner_text()
    closures = section.split("Closures since the last update")[1].split("Progress since")[0]
    assert "Recommendation 1" in closures and "The plan meets the recommendation." in closures
    await pages.check(inspector, "paper-html")

    # -- a contributor of another team: no forms, and a forged POST changes nothing ----------
    other_ctx, other = await signed_in(browser, stack.api_url, other_secret, javascript=False)
    await other.goto(f"/ui/recommendations/{r2}")
    await expect(other.locator("#summary")).to_be_visible()
    assert await other.locator("#actions").count() == 0
    await other.goto(f"/ui/recommendations/{r2}/progress")
    await expect(other.locator("h1")).to_have_text("You cannot do that")
    await pages.photograph(other, "other-team-403")
    own_csrf = await other.locator('input[name="csrf_token"]').first.get_attribute("value")
    before_forgery = await history_types(stack, admin_secret, r2)
    forged = await other.request.post(
        f"/ui/recommendations/{r2}/progress",
        form={
            "csrf_token": own_csrf or "",
            "delivery_status": "on_track",
            "position": "Forged by another team.",
        },
        headers={"Accept": "text/html"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert '<h1 class="govuk-heading-l">You cannot do that</h1>' in await forged.text()

    # -- a form posted without its CSRF token, by the owner itself: refused ------------------
    no_token = await lead.request.post(
        f"/ui/recommendations/{r2}/progress",
        form={"delivery_status": "on_track", "position": "No CSRF token."},
        headers={"Accept": "text/html"},
        max_redirects=0,
    )
    assert no_token.status == 403
    assert "did not come from this service" in await no_token.text()
    wrong_token = await lead.request.post(
        f"/ui/recommendations/{r2}/progress",
        form={"csrf_token": own_csrf or "x", "delivery_status": "on_track", "position": "x"},
        max_redirects=0,
    )
    assert wrong_token.status == 403  # another session's token is no token
    assert await history_types(stack, admin_secret, r2) == before_forgery

    # -- a viewer sees no forms ---------------------------------------------------------------
    viewer_ctx, viewer = await signed_in(browser, stack.api_url, viewer_secret)
    await pages.check(viewer, "overview-viewer")
    assert await viewer.get_by_role("button", name="Publish an inspection").count() == 0
    await viewer.goto(f"/ui/inspections/{inspection_id}")
    assert await viewer.get_by_role("button", name="Issue recommendations").count() == 0
    await viewer.goto(f"/ui/recommendations/{r2}")
    assert await viewer.locator("#actions").count() == 0
    assert await viewer.locator("main form").count() == 0
    await pages.check(viewer, "recommendation-viewer")
    await viewer.goto("/ui/inspections/new")
    await expect(viewer.locator("h1")).to_have_text("You cannot do that")
    await pages.check(viewer, "viewer-403")
    await viewer.goto("/ui/inspections/no-such-inspection")
    await expect(viewer.locator("h1")).to_have_text("Page not found")
    await pages.check(viewer, "not-found")
    await viewer.goto("/api-docs")
    await viewer.wait_for_selector("#swagger-ui .opblock", state="attached")
    await pages.check(viewer, "api-docs")
    await viewer.goto("/accessibility")
    await pages.check(viewer, "accessibility")

    # -- signing out ends the session ---------------------------------------------------------
    cookie = next(c for c in await viewer_ctx.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    await viewer.get_by_role("button", name="Sign out").click()
    await expect(viewer.locator(".govuk-notification-banner")).to_contain_text("signed out")
    await pages.check(viewer, "signed-out")
    async with httpx.AsyncClient(
        base_url=stack.api_url, timeout=30, cookies={COOKIE: cookie["value"]}
    ) as api:
        stale = await api.get("/")
    assert stale.status_code == 303 and stale.headers["location"] == "/login?ended=1"

    for context in (admin_ctx, lead_ctx, inspector_ctx, other_ctx, viewer_ctx):
        await context.close()
    (ARTIFACTS / "axe-forms.txt").write_text(
        f"axe-core {axe_version()}, WCAG 2.2 AA; pages checked:\n"
        + "\n".join(pages.checked)
        + f"\nviolations: {pages.violations}\n"
    )
    assert len(pages.checked) >= 20
    assert pages.violations == {}


async def test_a_session_ends_when_idle_too_old_signed_out_or_its_token_revoked(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    secret = await token(pool, "viewer", "public")

    async def page_status(cookies: dict[str, str]) -> tuple[int, str]:
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, cookies=cookies) as api:
            response = await api.get("/")
        return response.status_code, response.headers.get("location", "")

    ended = (303, "/login?ended=1")
    ages = (
        "UPDATE web_sessions SET last_seen_at = now() - interval '31 minutes' "
        "WHERE session_hash = $1",
        "UPDATE web_sessions SET created_at = now() - interval '9 hours' WHERE session_hash = $1",
    )
    for aged in ages:
        cookies = await signed_in_cookies(stack.api_url, secret)
        assert await page_status(cookies) == (200, "")
        digest = hashlib.sha256(cookies[COOKIE].encode()).hexdigest()
        async with pool.acquire() as conn:
            await conn.execute(aged, digest)
        assert await page_status(cookies) == ended

    cookies = await signed_in_cookies(stack.api_url, secret)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1", token_hash(secret)
        )
    assert await page_status(cookies) == ended
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        refused = await api.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', refused.text)
        assert csrf
        again = await api.post("/login", data={"csrf_token": csrf[1], "token": secret})
    assert again.status_code == 303 and again.headers["location"] == "/login?error=1"
    # The session's row never holds the cookie itself.
    async with pool.acquire() as conn:
        stored = await conn.fetch("SELECT session_hash, csrf_token FROM web_sessions")
    assert cookies[COOKIE] not in {r["session_hash"] for r in stored}
