"""Connection state recovery in headless Chromium: the stock socket.io-client (the bundle the
console serves) and the console itself, whose feed relies on it after a transport loss."""

from __future__ import annotations

import re
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Page, WebSocketRoute, expect
from redis.asyncio import Redis

from azora_nexus.auth.tokens import Role
from azora_nexus.config import Settings
from azora_nexus.realtime.recovery import PREFIX
from tests.console.console_helpers import WAIT_MS, Watched, publish, token_for
from tests.console.test_console_browser import feed_ids, feed_row, sign_in, until_subscribed
from tests.support.waiting import eventually

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

# A stock client in the page: `window.io` from the console's own vendored socket.io-client.
OPEN_SOCKET = """([token]) => new Promise((resolve) => {
  const seen = (window.seen = { connects: [], events: [], acks: 0 });
  const socket = (window.socket = io({ auth: { token }, transports: ["websocket"] }));
  socket.on("connect", () => {
    seen.connects.push(socket.recovered);
    if (seen.connects.length === 1) {
      socket.emit("subscribe", { types: ["system.alert"] }, () => { seen.acks += 1; resolve(); });
    }
  });
  socket.onAny((name, event, offset) => seen.events.push([event.id, offset]));
})"""


async def seen(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate("() => window.seen")
    return found


async def wait_seen(page: Page, predicate: str) -> None:
    """Poll `predicate` (a function source) in the page: the console's CSP forbids `eval`,
    which `wait_for_function` with a string uses."""

    async def holds() -> bool:
        return bool(await page.evaluate(predicate))

    await eventually(holds, timeout_s=WAIT_MS / 1000)


async def alerts(http: AsyncClient, count: int, tag: str) -> list[str]:
    return [await publish(http, "system.alert", {"m": f"{tag}{n}"}) for n in range(count)]


async def test_stock_client_in_chromium_recovers_every_missed_event_once_in_order(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    page = tab.page
    await page.goto(f"{base_url}/console")  # the page that serves the client bundle
    await page.evaluate(OPEN_SOCKET, [token_for(Role.USER, "u1")])
    before = await alerts(http, 5, "before")
    await wait_seen(page, "() => window.seen.events.length === 5")
    # The transport is lost; held until the 5 events below are published meanwhile.
    await page.evaluate("() => { socket.io.reconnection(false); socket.io.engine.close(); }")
    await wait_seen(page, "() => !window.socket.connected")
    away = await alerts(http, 5, "away")
    await page.evaluate("() => { socket.io.reconnection(true); socket.connect(); }")
    await wait_seen(page, "() => window.seen.connects.length === 2")
    after = await alerts(http, 5, "after")
    await wait_seen(page, "() => window.seen.events.length >= 15")
    found = await seen(page)
    assert found["connects"] == [False, True]
    assert found["acks"] == 1
    ids = before + away + after
    assert found["events"] == [[i, i] for i in ids]


async def cut(connections: list[tuple[WebSocketRoute, WebSocketRoute]]) -> None:
    page_side, server_side = connections[-1]
    await page_side.close()
    await server_side.close()


async def routed(page: Page) -> list[tuple[WebSocketRoute, WebSocketRoute]]:
    """Every Socket.IO websocket of the page goes through the test, to cut one."""
    connections: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    def pass_through(page_side: WebSocketRoute) -> None:
        connections.append((page_side, page_side.connect_to_server()))

    await page.route_web_socket(re.compile(r"/socket\.io/"), pass_through)
    return connections


async def live_feed_with_typed_filter(
    page: Page, base_url: str, http: AsyncClient
) -> tuple[list[tuple[WebSocketRoute, WebSocketRoute]], str]:
    """An admin's console, its feed live (its websockets routed through the test) with one
    event in it, and a filter typed in the box but not applied; the routes and the event."""
    connections = await routed(page)
    await sign_in(page, base_url, token_for(Role.ADMIN))
    await until_subscribed(page)
    first = await publish(http, "system.alert", {"message": "before the cut"})
    await expect(feed_row(page, first)).to_have_count(1, timeout=WAIT_MS)
    await page.get_by_label("More types or domain.* patterns").fill("typed.but.not.applied")
    return connections, first


async def test_the_console_recovers_its_feed_after_a_cut_without_subscribing_again(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    page = tab.page
    connections, first = await live_feed_with_typed_filter(page, base_url, http)
    await cut(connections)
    away = await publish(http, "system.alert", {"message": "while cut"})
    await expect(page.locator("#filter-status")).to_contain_text("Recovered", timeout=WAIT_MS)
    await expect(page.locator("#socket-status")).to_have_text("live")
    await expect(feed_row(page, away)).to_have_count(1, timeout=WAIT_MS)
    later = await publish(http, "system.alert", {"message": "after the reconnect"})
    await expect(feed_row(page, later)).to_have_count(1, timeout=WAIT_MS)
    assert await feed_ids(page) == [later, away, first]
    assert len(connections) == 2


async def test_the_console_subscribes_again_with_the_applied_filter_when_not_recovered(
    tab: Watched, base_url: str, http: AsyncClient, settings: Settings
) -> None:
    """Recovery refused (the session expired): a fresh connect, and the feed resubscribes
    with the filter it had applied (not text typed meanwhile) and `after` its last id."""
    page = tab.page
    connections, first = await live_feed_with_typed_filter(page, base_url, http)
    redis = Redis.from_url(settings.redis_url or "")
    try:
        keys = [key async for key in redis.scan_iter(match=PREFIX + "*")]
        assert len(keys) == 1
        await redis.delete(*keys)  # what the TTL does
    finally:
        await redis.aclose()
    await cut(connections)
    await expect(page.locator("#filter-status")).to_contain_text(
        f"(resumed after {first})", timeout=WAIT_MS
    )
    second = await publish(http, "system.alert", {"message": "after the reconnect"})
    await expect(feed_row(page, second)).to_have_count(1, timeout=WAIT_MS)
    assert await feed_ids(page) == [second, first]
