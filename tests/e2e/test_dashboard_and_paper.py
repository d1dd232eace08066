"""The dashboard in a real browser (Playwright driving Debian's Chromium) and the paper files."""

from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, async_playwright
from pypdf import PdfReader

from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from tests.cli import rectrack
from tests.e2e.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.e2e.helpers import token

pytestmark = pytest.mark.integration


async def json_report(settings: Settings, secret: str, as_of: str) -> dict[str, tuple[int, ...]]:
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=30) as api:
        doc = (
            await api.get(
                "/report", params={"as_of": as_of}, headers={"Authorization": f"Bearer {secret}"}
            )
        ).json()
    return {
        line["title"]: (
            line["total"],
            line["closed"],
            line["ongoing_on_track"],
            line["ongoing_delayed"],
        )
        for line in doc["inspections"]
    }


async def overview_counts(page: Page) -> dict[str, tuple[int, ...]]:
    counts: dict[str, tuple[int, ...]] = {}
    for row in await page.locator("#overview tbody tr").all():
        title = (await row.locator("th").inner_text()).strip()
        cells = [
            await row.locator(f'td[data-count="{k}"]').inner_text()
            for k in ("total", "closed", "ongoing_on_track", "ongoing_delayed")
        ]
        counts[title] = tuple(int(c) for c in cells)
    return counts


async def test_the_dashboard_shows_the_report_and_the_timeline_in_a_browser(
    demo_loaded: Settings, pool: asyncpg.Pool
) -> None:
    await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=60)
    secret = await token(pool, "viewer")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = await browser.new_page()
        await page.goto(demo_loaded.api_url + "/")
        assert page.url.endswith("/login")
        await page.get_by_label("API token").fill(secret)
        await page.get_by_role("button", name="Sign in").click()

        await page.get_by_label("As at").fill("2024-09-18")
        await page.get_by_role("button", name="Show").click()
        on_paper_day = await overview_counts(page)
        assert on_paper_day == await json_report(demo_loaded, secret, "2024-09-18")
        await page.screenshot(path=ARTIFACTS / "overview-2024-09-18.png", full_page=True)

        await page.get_by_label("As at").fill("2022-06-30")
        await page.get_by_role("button", name="Show").click()
        earlier = await overview_counts(page)
        assert earlier == await json_report(demo_loaded, secret, "2022-06-30")
        assert earlier != on_paper_day

        await page.goto(demo_loaded.api_url + "/ui/inspections/hate-crime-2021?as_of=2024-09-18")
        await page.get_by_label("Status").select_option("ongoing_delayed")
        await page.get_by_role("button", name="Filter").click()
        assert await page.locator("#recommendations tbody tr").count() == 5
        await page.screenshot(path=ARTIFACTS / "inspection-hate-crime.png", full_page=True)

        await page.locator("#recommendations tbody tr a").nth(3).click()  # recommendation 10
        await page.wait_for_selector("#timeline")
        assert await page.locator("#timeline tbody tr").count() >= 5
        assert "seeking evidence" in (await page.content())
        await page.screenshot(path=ARTIFACTS / "recommendation-timeline.png", full_page=True)
        await browser.close()


def markdown_tables(text: str) -> dict[str, tuple[int, ...]]:
    """Title -> (total, closed, on track, delayed) from the paper's Markdown."""
    tables: dict[str, tuple[int, ...]] = {}
    title = ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            title = line[3:].strip()
        if line.startswith("| Total |"):
            tables[title] = tuple(int(c) for c in lines[i + 2].strip("| ").split(" | "))
    return tables


async def test_the_paper_for_18_september_2024_matches_the_report_and_renders(
    demo_loaded: Settings, run_env: dict[str, str], pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await wait_until_projected(demo_loaded, RECOMMENDATIONS, timeout=60)
    expected = await json_report(demo_loaded, await token(pool, "viewer"), "2024-09-18")
    md = tmp_path / "paper.md"
    rectrack(run_env, "paper", "--meeting", "2024-09-18", "--format", "md", "-o", str(md))
    text = md.read_text()
    assert markdown_tables(text) == expected
    assert "Closures since the last update" in text and "Challenges and risks" in text
    assert len(list((tmp_path / "paper-charts").glob("*.svg"))) == len(expected)
    rebuild = text.rsplit("`", 2)[1]
    assert rebuild.startswith("rectrack paper --meeting 2024-09-18 --known-at ")
    (tmp_path / "again").mkdir()
    again = tmp_path / "again" / "paper.md"
    rectrack(run_env, *rebuild.split()[1:], "--format", "md", "-o", str(again))
    assert again.read_text().split("\n---\n")[0] == text.split("\n---\n")[0]
    # A moment typed without an offset is local time, and is compared with recorded times
    # (which have one) without a TypeError: everything was known by then.
    later = tmp_path / "later.md"
    when = ("--known-at", "2070-01-01T00:00")
    rectrack(run_env, "paper", "--meeting", "2024-09-18", *when, "--format", "md", "-o", str(later))
    assert markdown_tables(later.read_text()) == expected

    pdf = tmp_path / "paper.pdf"
    rectrack(run_env, "paper", "--meeting", "2024-09-18", "--format", "pdf", "-o", str(pdf))
    reader = PdfReader(pdf)
    assert len(reader.pages) >= 2
    first: Any = reader.pages[0].extract_text()
    assert "Improvement Update" in first
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "paper-2024-09-18.pdf").write_bytes(pdf.read_bytes())
