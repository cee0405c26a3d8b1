"""Every dashboard page scanned by Deque's axe-core (the engine behind Lighthouse's accessibility
audit) in the real Chromium, at desktop and phone widths, signed in with data on the pages: no
serious or critical finding. axe-core is pinned and installed by infra/services.sh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import dashboard_page
from tests.browser.harness import BrowserWallet, Site
from tests.browser.test_dashboard import create_key, sign_in
from tests.conftest import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[2]
AXE = sorted(ROOT.glob(".cache/axe-core-*/node_modules/axe-core/axe.min.js"))
PAGES = ("keys", "credits", "usage", "activity", "playground", "models", "settings", "docs")
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    if AXE:
        return AXE[-1].read_text()
    message = "axe-core is not installed (bash infra/services.sh)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


async def findings(page: Any, source: str) -> list[dict[str, Any]]:
    """axe's violations of impact serious or critical, each with the elements it names."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(source)  # the context bypasses CSP for this, and only this, test
    result = await page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations.map("
        "(v) => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5)})))"
    )
    return [v for v in result if v["impact"] in BLOCKING]


@pytest.mark.parametrize("width", [1280, 390])
async def test_no_serious_accessibility_findings_on_any_page(
    browser: Any, site: Site, wallet: BrowserWallet, width: int
) -> None:
    source = axe_source()
    problems: dict[str, list[dict[str, Any]]] = {}
    viewport = {"width": width, "height": 900}
    async with dashboard_page(
        browser, site.dashboard_url, wallet, viewport=viewport, bypass_csp=True
    ) as page:
        await page.wait_for_selector("main[data-rendered=signin]")
        if found := await findings(page, source):
            problems["signin"] = found
        await sign_in(page)
        await site.grant(wallet.account.address, "3", env="test", ref=f"axe-{width}")
        await create_key(page, "Scanned key")
        for name in PAGES:
            await page.evaluate(f"window.location.hash = '#/{name}'")
            await page.wait_for_selector(f"main[data-rendered={name}]")
            if found := await findings(page, source):
                problems[name] = found
    assert not problems, problems
