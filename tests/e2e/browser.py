"""Driving the pages in Debian's Chromium with Playwright: the browser, signing in, and the
checks every page gets (axe-core's WCAG 2.2 AA rules, a screenshot in test-artifacts/)."""

import re
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page

from tests.e2e.axe import axe_violations

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def signed_in(
    browser: Browser, base_url: str, secret: str, *, javascript: bool = True
) -> tuple[BrowserContext, Page]:
    """A fresh browser context signed in with this API token through the sign-in form."""
    context = await browser.new_context(base_url=base_url, java_script_enabled=javascript)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("API token").fill(secret)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/(\?.*)?$"))
    return context, page


class Pages:
    """Every page a test looks at: axe-checked (with JavaScript on, which axe needs) and
    photographed; violations are kept to be asserted all at once, named by page."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.violations: dict[str, list[object]] = {}
        self.checked: list[str] = []
        ARTIFACTS.mkdir(exist_ok=True)

    async def check(self, page: Page, name: str) -> None:
        """axe-core on the page as it is, and a full-page screenshot."""
        found = await axe_violations(page)
        self.checked.append(f"{name} {page.url}")
        if found:
            self.violations[f"{name} {page.url}"] = list(found)
        await page.screenshot(path=ARTIFACTS / f"{self.prefix}-{name}.png", full_page=True)

    async def photograph(self, page: Page, name: str) -> None:
        """A screenshot only (pages seen with JavaScript off, where axe cannot run)."""
        await page.screenshot(path=ARTIFACTS / f"{self.prefix}-{name}.png", full_page=True)
