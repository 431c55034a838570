"""`/docs` renders in headless Chromium with every request to another origin refused."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Route, expect

from tests.console.console_helpers import WAIT_MS, open_tab

pytestmark = pytest.mark.slow


async def test_docs_render_with_no_network_beyond_the_node(browser: Browser, base_url: str) -> None:
    refused: list[str] = []
    async with open_tab(browser) as watched:
        page = watched.page

        async def only_the_node(route: Route) -> None:
            if route.request.url.startswith(base_url + "/"):
                await route.continue_()
            else:
                refused.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_the_node)
        await page.goto(f"{base_url}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "Azora Nexus", timeout=WAIT_MS
        )
        await expect(page.locator(".opblock-summary-path").first).to_be_visible()
        assert watched.problems == []
    assert refused == []
