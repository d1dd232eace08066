"""axe-core in the browser tests: the npm package's own axe.min.js (pinned in package-lock.json,
installed by `make assets`), evaluated in the page through the DevTools protocol, so the pages'
Content-Security-Policy (no script) stays as it is."""

import functools
import json
from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.2 AA and everything it includes (2.0 and 2.1, A and AA).
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


@functools.cache
def axe_source() -> str:
    """axe-core's script; `make assets` (npm ci) installs it."""
    if not AXE_JS.is_file():
        raise FileNotFoundError(f"{AXE_JS} is missing: run `make assets`")
    return AXE_JS.read_text()


def axe_version() -> str:
    """The axe-core version the tests run."""
    package = AXE_JS.parent / "package.json"
    return str(json.loads(package.read_text())["version"])


async def axe_violations(page: Page, *, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA violations of the page as it is now (rule id, impact, help and
    the offending nodes' selectors)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source())
    result: dict[str, Any] = await page.evaluate(
        """async ([tags, exclude]) => await window.axe.run(
               {exclude: exclude.map((s) => [s])},
               {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})""",
        [WCAG_22_AA, exclude or []],
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]
