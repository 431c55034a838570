"""Helpers for the console tests: Nexus served on 127.0.0.1 (tests/support), headless Chromium,
small HTTP calls.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright for Python through its
`executable_path`; `playwright install` (which downloads a browser) is never needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.config import Settings
from tests.conftest import JWT_SECRET  # the secret the test app is given
from tests.support.server import serve_node

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
# Generous: two shared cores, and the page polls health and cache every 5 s.
WAIT_MS = 20_000


def token_for(role: Role, sub: str | None = None) -> str:
    """A valid access token for the app the `settings` fixture configures."""
    return issue_token(JWT_SECRET, sub=sub or role.value, role=role)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(token_for(Role.ADMIN))


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Debian's headless Chromium under Playwright, closed afterwards."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A fresh browser tab (its own sessionStorage) and every error its page reported."""

    page: Page
    problems: list[str] = field(default_factory=list)


@asynccontextmanager
async def open_tab(browser: Browser) -> AsyncIterator[Watched]:
    """A tab in a context of its own; script errors and CSP refusals are collected."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        # A refused token is expected to log the failed request; anything else is a fault.
        if message.type == "error" and "status of 40" not in message.text:
            watched.problems.append(message.text)

    def on_page_error(error: Error) -> None:
        watched.problems.append(f"{error.name}: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        yield watched
    finally:
        await context.close()


async def publish(
    http: AsyncClient, event_type: str, payload: dict[str, Any], user_id: str | None = None
) -> str:
    """Publish an event through `POST /events` as an admin; the id the bus gave it."""
    body: dict[str, Any] = {"type": event_type, "payload": payload, "source": "console-test"}
    if user_id is not None:
        body["userId"] = user_id
    response = await http.post("/events", json=body, headers=ADMIN)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["id"]
    return event_id


async def register(http: AsyncClient, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A new user called `name` and the auth header of its token."""
    body = {"email": f"{name}@example.com", "username": name, "password": f"{name}-secret-pw"}
    response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    return answer["user"], bearer(answer["token"])


def created(response: Any) -> dict[str, Any]:
    """The object a create route answered with, after checking it answered 201."""
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def base_url(settings: Settings) -> AsyncIterator[str]:
    """This test's Nexus served over real TCP."""
    async with serve_node(settings) as node:
        yield node.url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[AsyncClient]:
    """An HTTP client of the served app."""
    async with AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the module; each test opens its own context."""
    async with launch_chromium() as launched:
        yield launched


@pytest.fixture
async def tab(browser: Browser, base_url: str) -> AsyncIterator[Watched]:
    """A fresh tab; the test fails if its page logged a script error.

    It needs the server so that it closes first: a page outliving the server would log its
    socket's failed reconnections.
    """
    async with open_tab(browser) as watched:
        yield watched
        assert watched.problems == [], watched.problems
